"""A burst of slash commands: every one is acknowledged at once, while at most POST_ACK_CONCURRENCY
answers are in progress and the rest wait their turn (none is lost) — but no longer than SLOT_WAIT,
and a form opens at once whatever the answers in progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.sandbox.standin.payloads import slash_form
from bot.sandbox.standin.server import serve_asgi
from bot.sandbox.standin.workspace import TEAM_ID
from bot.slack.post_ack import POST_ACK_CONCURRENCY, SLOT_WAIT
from tests.support.bot import BotHarness

# An answer that needs the database (and the responders' check), so it always comes after the
# acknowledgement; `/freeze list` is usually answered in the acknowledgement itself (from the snapshot).
ANSWERED_AFTER_ACK = "cancel #99"


class SlowResponseUrls:
    """response_urls whose posts are held until released; counts how many are in progress at once."""

    def __init__(self, expected: int) -> None:
        self.in_progress = self.most = 0
        self.answered: list[str] = []
        self.expected = expected
        self.release, self.bound_reached, self.all_answered = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.app = Starlette(routes=[Route("/respond/{n}", self.respond, methods=["POST"])])

    async def respond(self, request: Request) -> Response:
        self.in_progress += 1
        self.most = max(self.most, self.in_progress)
        if self.in_progress >= POST_ACK_CONCURRENCY:
            self.bound_reached.set()
        try:
            await self.release.wait()
        finally:
            self.in_progress -= 1
        self.answered.append(request.path_params["n"])
        if len(self.answered) == self.expected:
            self.all_answered.set()
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        async with serve_asgi(self.app) as url:
            yield url


async def held_answers(bot: BotHarness, sink: SlowResponseUrls, url: str, count: int) -> None:
    for n in range(count):
        form = slash_form(
            "/freeze",
            ANSWERED_AFTER_ACK,
            team_id=TEAM_ID,
            user_id=f"U0USER{n}",
            user_name=f"user{n}",
            channel_id="C0GENERAL",
            channel_name="general",
            trigger_id=f"{n}.trigger",
            response_url=f"{url}/respond/{n}",
        )
        response = await bot.slack.raw(urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200
    await asyncio.wait_for(sink.bound_reached.wait(), 10)  # every slot holds an answer Slack does not take


async def test_answers_held_up_delay_neither_a_form_nor_the_next_answer_for_long(bot: BotHarness) -> None:
    fake = bot.fake
    sink = SlowResponseUrls(POST_ACK_CONCURRENCY)
    async with sink.serve() as url:
        await held_answers(bot, sink, url, POST_ACK_CONCURRENCY)
        loop = asyncio.get_running_loop()
        mark, started = fake.mark(), loop.time()
        await bot.slack.slash("/freeze", "new", user_id="U0CAROL")
        opened = await fake.wait_for("views.open", timeout=2.5, after=mark)  # its trigger_id lives 3 s
        assert opened.error is None and loop.time() - started < 2.5

        mark = fake.mark()
        await bot.slack.slash("/freeze", ANSWERED_AFTER_ACK, user_id="U0CAROL")
        post = await fake.wait_for_response(lambda p: p.name == "freeze", timeout=SLOT_WAIT + 5, after=mark)
        assert post.text == "There is no freeze window #99 (see `/freeze list`)."
        assert sink.in_progress == POST_ACK_CONCURRENCY and not sink.answered  # answered beyond the bound
        sink.release.set()
        await asyncio.wait_for(sink.all_answered.wait(), 10)


async def test_a_burst_of_commands_is_acknowledged_while_answers_wait_their_turn(bot: BotHarness) -> None:
    burst = 3 * POST_ACK_CONCURRENCY
    sink = SlowResponseUrls(burst)
    async with sink.serve() as url:

        async def command(n: int) -> int:
            form = slash_form(
                "/freeze",
                ANSWERED_AFTER_ACK,
                team_id=TEAM_ID,
                user_id=f"U0USER{n}",
                user_name=f"user{n}",
                channel_id="C0GENERAL",
                channel_name="general",
                trigger_id=f"{n}.trigger",
                response_url=f"{url}/respond/{n}",
            )
            response = await bot.slack.raw(
                urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
            )
            return response.status_code

        assert await asyncio.gather(*(command(n) for n in range(burst))) == [200] * burst  # all acknowledged
        await asyncio.wait_for(sink.bound_reached.wait(), 10)  # the first answers are held at the response_urls
        await asyncio.sleep(0.2)  # an absence cannot be awaited: room for answers beyond the bound to arrive
        assert sink.most == POST_ACK_CONCURRENCY
        sink.release.set()
        await asyncio.wait_for(sink.all_answered.wait(), 10)
    assert sorted(map(int, sink.answered)) == list(range(burst))
