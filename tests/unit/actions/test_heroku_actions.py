"""Heroku rollback and scale against a fake Platform API speaking the real wire format."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.actions import ActionContext, StepAction, build_undo
from bot.resilience import Breakers
from bot.sandbox.fakes.heroku import TOKEN, FakeHeroku
from tests.support.actions import FAST_READS, FAST_SET, FAST_WRITE, action_from, make_ctx, step_from
from tests.support.clock import FakeClock

ROLLBACK = {"heroku": {"rollback": {"app": "acme-prod"}}}
SCALE = {"heroku": {"scale": {"app": "acme-prod", "process": "worker", "quantity": 0}}}


@pytest.fixture
async def heroku() -> AsyncIterator[tuple[FakeHeroku, str]]:
    fake = FakeHeroku()
    fake.add_app("acme-prod", releases=3, formation={"web": 2, "worker": 3})
    async with fake.serve() as url:
        yield fake, url


def ctx_for(url: str, *, token: str = TOKEN, **kwargs: Any) -> ActionContext:
    return make_ctx(secrets={"heroku_api_token": token} if token else {}, endpoints={"heroku_api_url": url}, **kwargs)


def fast(step: StepAction) -> StepAction:
    """The same action with test-sized timeouts and backoffs (the attempt counts are the real ones)."""
    write = FAST_SET if hasattr(step, "quantity") else FAST_WRITE
    return dataclasses.replace(step, reads=FAST_READS, write=write)  # type: ignore[type-var]


Heroku = tuple[FakeHeroku, str]


async def test_scale_remembers_the_previous_quantity_and_undo_restores_it(heroku: Heroku) -> None:
    fake, url = heroku
    step = action_from(SCALE)
    assert step.describe() == "Scale acme-prod worker dynos to 0"
    progress: list[str] = []
    outcome = await step.run(ctx_for(url, progress=progress))
    assert outcome.ok, outcome.summary
    assert outcome.summary == "Scaled acme-prod worker dynos from 3 to 0"
    assert outcome.remembered == {"app": "acme-prod", "process": "worker", "previous_quantity": 3}
    assert progress == ["Scaling acme-prod worker from 3 to 0"]
    assert fake.apps["acme-prod"].formation["worker"]["quantity"] == 0
    get, patch = fake.requests
    assert (get.method, get.path) == ("GET", "/apps/acme-prod/formation/worker")
    assert (patch.method, patch.path, patch.body) == ("PATCH", "/apps/acme-prod/formation/worker", {"quantity": 0})
    assert patch.headers["accept"] == "application/vnd.heroku+json; version=3"
    assert patch.headers["authorization"] == f"Bearer {TOKEN}"

    undo = build_undo(step_from({"action": SCALE}), outcome.remembered)
    assert undo is not None and undo.describe() == "Scale acme-prod worker dynos to 3"
    assert (await undo.run(ctx_for(url))).ok
    assert fake.apps["acme-prod"].formation["worker"]["quantity"] == 3


async def test_the_steps_own_undo_wins(heroku: Heroku) -> None:
    step = step_from(
        {"action": SCALE, "undo": {"heroku": {"scale": {"app": "acme-prod", "process": "worker", "quantity": 1}}}}
    )
    undo = build_undo(step, {"previous_quantity": 3})
    assert undo is not None and undo.describe() == "Scale acme-prod worker dynos to 1"
    assert build_undo(step_from({"action": {"checks": ["api"]}}), {}) is None


async def test_scale_preview_reads_but_changes_nothing(heroku: Heroku) -> None:
    fake, url = heroku
    outcome = await action_from(SCALE).preview(ctx_for(url))
    assert outcome.ok
    assert outcome.summary == (
        'Would scale acme-prod worker dynos from 3 to 0: PATCH /apps/acme-prod/formation/worker {"quantity": 0}'
    )
    assert fake.writes() == []
    assert fake.apps["acme-prod"].formation["worker"]["quantity"] == 3


async def test_scaling_an_unknown_process_type_shows_herokus_message(heroku: Heroku) -> None:
    fake, url = heroku
    step = action_from({"heroku": {"scale": {"app": "acme-prod", "process": "clock", "quantity": 0}}})
    outcome = await step.run(ctx_for(url))
    assert not outcome.ok
    assert outcome.summary == (
        "Did not scale acme-prod clock: Heroku answered 404 to GET "
        "/apps/acme-prod/formation/clock: Couldn't find that formation."
    )
    assert fake.writes() == []


async def test_without_a_token_nothing_is_called(heroku: Heroku) -> None:
    fake, url = heroku
    outcome = await action_from(SCALE).run(ctx_for(url, token=""))
    assert outcome.summary == "HEROKU_API_TOKEN is not set, so guardrail cannot call Heroku"
    assert fake.requests == []
    wrong = await action_from(SCALE).run(ctx_for(url, token="nope"))
    assert wrong.summary.endswith("401 to GET /apps/acme-prod/formation/worker: Invalid credentials provided.")


async def test_rollback_targets_the_release_before_the_current_one(heroku: Heroku) -> None:
    fake, url = heroku
    app = fake.apps["acme-prod"]
    v2 = app.releases[1]
    step = action_from(ROLLBACK)
    assert step.describe() == "Roll back Heroku app acme-prod to the release before the current one"
    preview = await step.preview(ctx_for(url))
    assert preview.summary == (
        f"Would roll back acme-prod from v3 (Deploy 0000003) to v2 (Deploy 0000002): "
        f'POST /apps/acme-prod/releases {{"release": "{v2["id"]}"}}'
    )
    assert fake.writes() == []
    listing = fake.requests[0]
    assert listing.headers["range"] == "version ..; order=desc, max=10"

    outcome = await step.run(ctx_for(url))
    assert outcome.ok, outcome.summary
    assert outcome.summary == ("Rolled acme-prod back from v3 (Deploy 0000003) to v2 (Deploy 0000002) (new release v4)")
    [post] = fake.writes()
    assert post.body == {"release": v2["id"]}
    assert app.current["description"] == "Rollback to v2"
    assert app.current["slug"] == v2["slug"]

    # Undo rolls forward to the release that was current before (v3), whatever is current now.
    undo = build_undo(step_from({"action": ROLLBACK}), outcome.remembered)
    assert undo is not None and undo.describe() == "Roll back Heroku app acme-prod to release v3"
    assert (await undo.run(ctx_for(url))).ok
    assert app.current["description"] == "Rollback to v3"
    # The undo pressed a second time: already there, nothing sent.
    again = await undo.run(ctx_for(url))
    assert again.ok and again.summary == (
        "acme-prod already runs v3 (Deploy 0000003) (current release v5 (Rollback to v3)); nothing sent"
    )
    assert len(fake.writes()) == 2


async def test_skips_failed_releases(heroku: Heroku) -> None:
    fake, url = heroku
    fake.apps["acme-prod"].add_release("Deploy broken", status="failed")
    outcome = await action_from(ROLLBACK).preview(ctx_for(url))
    assert "from v3 (Deploy 0000003) to v2 (Deploy 0000002)" in outcome.summary


async def test_a_rollback_post_answering_503_is_never_retried(heroku: Heroku) -> None:
    fake, url = heroku
    fake.faults.fail(503, methods={"POST"})
    outcome = await fast(action_from(ROLLBACK)).run(ctx_for(url))
    assert not outcome.ok
    assert "answered 503" in outcome.summary
    assert outcome.summary.endswith("The current release is still v3 (Deploy 0000003); not retried automatically.")
    assert len(fake.writes()) == 1
    assert fake.apps["acme-prod"].current["version"] == 3


async def test_a_lost_answer_is_resolved_by_re_reading_not_by_sending_again(heroku: Heroku) -> None:
    fake, url = heroku
    fake.faults.apply_then_fail(503, methods={"POST"})
    outcome = await fast(action_from(ROLLBACK)).run(ctx_for(url))
    assert outcome.ok, outcome.summary
    assert outcome.summary.startswith(
        "Rolled acme-prod back to v2 (Deploy 0000002) (new release v4); the API answered badly"
    )
    assert len(fake.writes()) == 1
    assert [r["version"] for r in fake.apps["acme-prod"].releases] == [1, 2, 3, 4]


async def test_a_hanging_rollback_times_out_once_and_reports_the_state(heroku: Heroku) -> None:
    fake, url = heroku
    step = fast(action_from(ROLLBACK))
    ctx = ctx_for(url)
    fake.faults.hang()
    outcome = await step.run(ctx)
    assert not outcome.ok
    assert "did not answer within 0.5s" in outcome.summary
    # The first read hung three times (reads are retried, bounded); nothing was written.
    assert [r.method for r in fake.requests] == ["GET", "GET", "GET"]


async def test_reads_are_retried_a_bounded_number_of_times(heroku: Heroku) -> None:
    fake, url = heroku
    fake.faults.fail(503, times=2, methods={"GET"})
    outcome = await fast(action_from(SCALE)).run(ctx_for(url))
    assert outcome.ok, outcome.summary
    assert [(r.method, r.answered) for r in fake.requests] == [("GET", 503), ("GET", 503), ("GET", 200), ("PATCH", 200)]


async def test_the_heroku_breaker_opens_and_stops_all_calls(heroku: Heroku) -> None:
    fake, url = heroku
    fake.faults.fail(503)
    clock = FakeClock()
    ctx = ctx_for(url, breakers=Breakers(failure_threshold=5, recovery_timeout=30, clock=clock))
    step = fast(action_from(SCALE))
    first = await step.run(ctx)
    assert not first.ok and len(fake.requests) == 3  # one logical read: 3 bounded attempts
    second = await step.run(ctx)
    assert len(fake.requests) == 5  # the 5th consecutive failure opens the breaker
    assert second.summary.endswith("is failing since 09:00:00 UTC; calls paused until 09:00:30 UTC")
    third = await fast(action_from(ROLLBACK)).run(ctx)  # same target, other action: not called either
    assert "calls paused" in third.summary
    assert len(fake.requests) == 5


async def test_a_lost_progress_line_does_not_stop_the_action(heroku: Heroku) -> None:
    fake, url = heroku

    async def slack_is_down(_: str) -> None:
        raise ConnectionError("slack.com unreachable")

    ctx = dataclasses.replace(ctx_for(url), progress=slack_is_down)
    outcome = await action_from(SCALE).run(ctx)
    assert outcome.ok, outcome.summary
    assert fake.apps["acme-prod"].formation["worker"]["quantity"] == 0


async def test_a_slow_api_within_the_timeout_is_fine_and_beyond_it_is_not(heroku: Heroku) -> None:
    fake, url = heroku
    fake.faults.delay(0.1)
    assert (await fast(action_from(SCALE)).preview(ctx_for(url))).ok
    fake.faults.delay(0.7)  # FAST_READS: 0.5 s per attempt, 3 attempts
    slow = await fast(action_from(SCALE)).preview(ctx_for(url))
    assert slow.summary.endswith("did not answer within 0.5s")
    assert len(fake.requests) == 4 and fake.writes() == []


async def test_the_fake_pages_releases_like_heroku(heroku: Heroku) -> None:
    import httpx

    _, url = heroku
    headers = {"Accept": "application/vnd.heroku+json; version=3", "Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        page = await client.get("/apps/acme-prod/releases", headers={"Range": "version ..; order=desc, max=2"})
        assert page.status_code == 206
        assert [r["version"] for r in page.json()] == [3, 2]
        assert page.headers["Next-Range"] == "]2..; order=desc, max=2"
        missing = await client.get("/apps/nope/releases")
        assert (missing.status_code, missing.json()) == (404, {"id": "not_found", "message": "Couldn't find that app."})
        unversioned = await client.get("/apps/acme-prod/releases", headers={"Accept": "application/json"})
        assert unversioned.status_code == 400


class OddAnswerHeroku(FakeHeroku):
    """Creates the release, then answers the POST with a body that is not a release."""

    async def _create_release(self, request: Request, body: Any) -> Response:
        created = await super()._create_release(request, body)
        return JSONResponse({"unexpected": "shape"}, status_code=created.status_code)


async def test_an_odd_answer_to_the_rollback_post_is_resolved_by_re_reading() -> None:
    fake = OddAnswerHeroku()
    fake.add_app("acme-prod", releases=3)
    async with fake.serve() as url:
        outcome = await fast(action_from(ROLLBACK)).run(ctx_for(url))
    assert outcome.ok, outcome.summary
    assert outcome.summary.startswith(
        "Rolled acme-prod back to v2 (Deploy 0000002) (new release v4); the API "
        "answered badly (Heroku accepted the rollback but answered an unexpected "
        "body (KeyError))"
    )
    assert outcome.remembered["previous_version"] == 3 and outcome.details["new_version"] == 4
    assert len(fake.writes()) == 1
