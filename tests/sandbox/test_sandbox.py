"""`guardrail sandbox` end to end without a browser: the page's backend is Slack to the real bot.

Each test starts the sandbox on the shipped playbooks (SQLite, a real Redis database, the local
fakes), acts through the page's own HTTP routes, and waits on the stand-in for what the bot did.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sandbox.page import KEEPALIVE_SECONDS
from bot.sandbox.run import Sandbox, SandboxOptions, running_sandbox
from bot.sandbox.standin import blocks_text
from bot.sandbox.standin.recorder import Call

ROOT = Path(__file__).parent.parent.parent
CAROL, DAVE, ALICE = "U0CAROL", "U0DAVE", "U0ALICE"  # two responders (one through @sre) and a bystander
GENERAL, DEPLOYS = "C0GENERAL", "C0DEPLOYS"


@pytest.fixture
async def sandbox(redis_url: str, tmp_path: Path) -> AsyncIterator[Sandbox]:
    options = SandboxOptions(config_dir=ROOT / "playbooks", port=0, redis_url=redis_url, db=tmp_path / "g.db")
    async with running_sandbox(options, say=lambda _: None) as running:
        yield running


@pytest.fixture
async def page(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=20) as http:
        yield http


async def post(page: httpx.AsyncClient, path: str, **body: Any) -> dict[str, Any]:
    answer = await page.post(path, json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result.get("status", 200) == 200, result
    return result


def text_of(call: Call) -> str:
    return str(call.args.get("text") or "") + blocks_text(call.args.get("blocks") or [])


def button_ts(sandbox: Sandbox, channel: str, action_id: str) -> str:
    for message in reversed(sandbox.fake.messages_in(channel)):
        if action_id in json.dumps(message.get("blocks") or []):
            return str(message["ts"])
    raise AssertionError(f"no message in {channel} has a button {action_id}")


async def declare(sandbox: Sandbox, page: httpx.AsyncClient) -> str:
    """With the API down, ask "are we down?" and click the answer's declare button; the incident channel."""
    if sandbox.world.services["api"].state == "up":
        await post(page, "/sandbox/drill", kind="service", name="api", state="down")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/say", user=CAROL, channel=GENERAL, text="are we down?")
    await sandbox.fake.wait_for(
        "chat.postMessage", lambda c: c.args.get("thread_ts") is not None, after=mark, timeout=15
    )
    ts = button_ts(sandbox, GENERAL, "health.declare_incident")
    await post(page, "/sandbox/click", user=CAROL, channel=GENERAL, ts=ts, action_id="health.declare_incident")
    created = await sandbox.fake.wait_for("conversations.create", after=mark, timeout=15)
    channel = str(created.response["channel"]["id"])
    await sandbox.fake.wait_for(
        "chat.postMessage", lambda c: "incident.step.run:verify" in json.dumps(c.args), after=mark, timeout=15
    )
    return channel


async def test_the_page_is_served_with_its_script_and_the_manifest_hints(page: httpx.AsyncClient) -> None:
    index = await page.get("/")
    assert index.status_code == 200 and "/sandbox/static/sandbox.js" in index.text
    assert (await page.get("/sandbox/static/sandbox.js")).headers["content-type"].startswith("text/javascript")
    assert (await page.get("/sandbox/static/secrets.txt")).status_code == 404
    state = (await page.get("/sandbox/state", params={"user": ALICE})).json()
    assert [(p["name"], p["responder"]) for p in state["people"]] == [("carol", True), ("dave", True), ("alice", False)]
    assert {c["name"] for c in state["channels"]} >= {"general", "deploys", "alerts"}
    freeze = next(c for c in state["commands"] if c["command"] == "/freeze")
    assert "for 2h Demo Day" in freeze["usage_hint"]


async def test_are_we_down_is_answered_in_the_thread_and_starts_the_stopwatch(
    sandbox: Sandbox, page: httpx.AsyncClient
) -> None:
    sandbox.world.set_service("api", "down")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/say", user=CAROL, channel=GENERAL, text="are we down?")
    answer = await sandbox.fake.wait_for("chat.postMessage", after=mark, timeout=15)
    question = sandbox.fake.messages_in(GENERAL)[0]
    assert answer.args["thread_ts"] == question["ts"]
    assert "api" in text_of(answer) and "down" in text_of(answer)
    state = (await page.get("/sandbox/state", params={"user": CAROL})).json()
    general = next(c for c in state["channels"] if c["id"] == GENERAL)
    assert general["messages"][0]["reply_count"] == 1
    assert state["stopwatch"]["started"] is not None and state["stopwatch"]["stopped"] is None


async def test_declare_then_verify_through_the_playbook_stops_the_stopwatch(
    sandbox: Sandbox, page: httpx.AsyncClient
) -> None:
    channel = await declare(sandbox, page)
    ts = button_ts(sandbox, channel, "incident.step.run:verify")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/click", user=DAVE, channel=channel, ts=ts, action_id="incident.step.run:verify")
    await sandbox.fake.wait_for(
        "chat.postMessage",
        lambda c: "✅ Step *Verify database and queue* succeeded" in text_of(c),
        after=mark,
        timeout=20,
    )
    # The playbook message itself is edited in place: running, then succeeded.
    await sandbox.fake.wait_for(
        "chat.update", lambda c: c.args.get("ts") == ts and "✅ succeeded" in text_of(c), after=mark, timeout=20
    )
    assert "✅ succeeded" in blocks_text(sandbox.fake.find_message(channel, ts)["blocks"])  # type: ignore[index]
    watch = (await page.get("/sandbox/state", params={"user": DAVE})).json()["stopwatch"]
    assert watch["stopped"] is not None and watch["clicks"] == 2  # declare, verify


async def test_a_non_responder_is_refused_and_nothing_is_rolled_back(sandbox: Sandbox, page: httpx.AsyncClient) -> None:
    channel = await declare(sandbox, page)
    hits = sum(n for path, n in sandbox.world.targets.hits.items() if path.startswith("/deploy-hook"))
    ts = button_ts(sandbox, channel, "incident.step.run:rollback")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/click", user=ALICE, channel=channel, ts=ts, action_id="incident.step.run:rollback")
    refusal = await sandbox.fake.wait_for_response(
        lambda r: "responder" in str(r.body.get("text")), after=mark, timeout=15
    )
    assert refusal.response_type == "ephemeral"
    mine = (await page.get("/sandbox/state", params={"user": ALICE})).json()
    shown = [m for c in mine["channels"] for m in c["messages"] if m.get("ephemeral")]
    assert any("responder" in m["text"] for m in shown)  # only alice sees it
    theirs = (await page.get("/sandbox/state", params={"user": CAROL})).json()
    assert not [m for c in theirs["channels"] for m in c["messages"] if m.get("ephemeral")]
    assert sum(n for path, n in sandbox.world.targets.hits.items() if path.startswith("/deploy-hook")) == hits


async def test_a_freeze_is_announced_in_deploys_and_listed_by_audit(sandbox: Sandbox, page: httpx.AsyncClient) -> None:
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/say", user=CAROL, channel=GENERAL, text="/freeze for 1h Demo")
    announced = await sandbox.fake.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == DEPLOYS, after=mark, timeout=15
    )
    assert "Demo" in text_of(announced)
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/say", user=CAROL, channel=GENERAL, text="/audit")
    listed = await sandbox.fake.wait_for_response(after=mark, timeout=15)
    assert "freeze" in (listed.text or "").lower() + blocks_text(listed.blocks or []).lower()
    state = (await page.get("/sandbox/state", params={"user": CAROL})).json()
    general = next(c for c in state["channels"] if c["id"] == GENERAL)
    assert any(m.get("ephemeral") and "freeze" in json.dumps(m).lower() for m in general["messages"])


async def test_the_freeze_modal_shows_the_bots_field_errors_and_closes_when_valid(
    sandbox: Sandbox, page: httpx.AsyncClient
) -> None:
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/say", user=DAVE, channel=GENERAL, text="/freeze new")
    await sandbox.fake.wait_for("views.open", after=mark, timeout=15)
    view = (await page.get("/sandbox/state", params={"user": DAVE})).json()["view"]
    assert view["title"]["text"] == "New freeze window"
    assert (await page.get("/sandbox/state", params={"user": CAROL})).json()["view"] is None  # dave's, not carol's
    values = {
        b["block_id"]: {b["element"]["action_id"]: _initial(b["element"])}
        for b in view["blocks"]
        if b["type"] == "input"
    }
    reason = next(k for k in values if "reason" in k)
    end_time = next(k for k in values if "end" in k and "time" in k)
    values[end_time][end_time] = {"type": "timepicker", "selected_time": "08:00"}  # ends before it starts
    errors = (await post(page, "/sandbox/submit", user=DAVE, view_id=view["id"], values=values))["errors"]
    assert errors, "an end before the start must be refused in the modal"
    assert (await page.get("/sandbox/state", params={"user": DAVE})).json()["view"]["errors"] == errors
    values[end_time][end_time] = {"type": "timepicker", "selected_time": "23:00"}
    values[reason][reason] = {"type": "plain_text_input", "value": "Demo Day"}
    mark = sandbox.fake.mark()
    assert (await post(page, "/sandbox/submit", user=DAVE, view_id=view["id"], values=values))["errors"] == {}
    assert (await page.get("/sandbox/state", params={"user": DAVE})).json()["view"] is None


def _initial(element: dict[str, Any]) -> dict[str, Any]:
    kind = element["type"]
    if kind == "static_select":
        option = element.get("initial_option") or element["options"][0]
        return {"type": kind, "selected_option": {"value": option["value"], "text": option["text"]}}
    if kind == "datepicker":
        return {"type": kind, "selected_date": element["initial_date"]}
    if kind == "timepicker":
        return {"type": kind, "selected_time": element["initial_time"]}
    return {"type": kind, "value": None}


async def test_drill_switches_change_what_the_service_answers(sandbox: Sandbox, page: httpx.AsyncClient) -> None:
    url = sandbox.world.environment["API_URL"] + "/healthz"
    async with httpx.AsyncClient(timeout=1.5) as http:
        await post(page, "/sandbox/drill", kind="service", name="api", state="down")
        assert (await http.get(url)).status_code == 503
        await post(page, "/sandbox/drill", kind="service", name="api", state="slow")
        slow = await http.get(url)
        assert slow.status_code == 200 and slow.elapsed.total_seconds() > 0.5  # the check's slow_after
        await post(page, "/sandbox/drill", kind="service", name="api", state="hanging")
        with pytest.raises(httpx.ReadTimeout):
            await http.get(url)
        await post(page, "/sandbox/drill", kind="service", name="api", state="up")
        assert (await http.get(url)).status_code == 200
    panel = (await page.get("/sandbox/state")).json()["drills"]
    assert next(s for s in panel["services"] if s["name"] == "api")["state"] == "up"
    assert [t["name"] for t in panel["targets"]] == ["deploy-hook"]
    assert panel["heroku"] == {"acme-prod": {"web": 2, "worker": 3}}
    assert panel["kubernetes"] == {"prod/api-consumer": 3}


async def test_bad_drill_input_is_one_clear_sentence(page: httpx.AsyncClient) -> None:
    cases = [
        ({"kind": "service", "name": "api", "state": "melted"}, "state must be one of up, slow, down, hanging"),
        ({"kind": "service", "name": "nope", "state": "up"}, "no service named 'nope'"),
        ({"kind": "service", "name": "database", "state": "down"}, "cannot be switched here"),
        ({"kind": "target", "name": "deploy-hook", "state": "418"}, "state must be one of 200, 503, hang"),
        ({"kind": "failed-jobs", "count": 0}, "count must be a whole number"),
        ({"kind": "weather"}, "kind must be"),
    ]
    for body, message in cases:
        answer = await page.post("/sandbox/drill", json=body)
        assert answer.status_code == 400 and message in answer.json()["error"], (body, answer.text)
    assert (await page.post("/sandbox/say", content=b"{nope")).json() == {"error": "the body must be JSON"}
    stranger = await page.post("/sandbox/say", json={"user": "U0NOBODY", "channel": GENERAL, "text": "hi"})
    assert stranger.status_code == 400 and stranger.json() == {"error": "unknown user 'U0NOBODY'"}


async def test_a_deploy_target_answering_503_fails_the_rollback_step(sandbox: Sandbox, page: httpx.AsyncClient) -> None:
    channel = await declare(sandbox, page)
    await post(page, "/sandbox/drill", kind="target", name="deploy-hook", state="503")
    ts = button_ts(sandbox, channel, "incident.step.run:rollback")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/click", user=CAROL, channel=channel, ts=ts, action_id="incident.step.run:rollback")
    failed = await sandbox.fake.wait_for(
        "chat.postMessage", lambda c: "❌ Step *Roll back last deploy* failed" in text_of(c), after=mark, timeout=30
    )
    assert "503" in text_of(failed)


async def test_demo_day_sets_the_scene_and_the_rollback_mends_the_api(
    sandbox: Sandbox, page: httpx.AsyncClient, redis_url: str
) -> None:
    import redis
    from rq import Queue

    mark = sandbox.fake.mark()
    await post(page, "/sandbox/drill", kind="demo-day")
    deploy = await sandbox.fake.wait_for("chat.postMessage", lambda c: "v142" in text_of(c), after=mark, timeout=15)
    assert deploy.args["channel"] == DEPLOYS
    assert any("SHARED_DB_POOL_SIZE" in m["text"] for m in sandbox.fake.messages_in(DEPLOYS))
    assert sandbox.world.services["api"].state == "down"
    assert Queue("default", connection=redis.Redis.from_url(redis_url)).failed_job_registry.count == 5
    channel = await declare(sandbox, page)
    ts = button_ts(sandbox, channel, "incident.step.run:rollback")
    mark = sandbox.fake.mark()
    await post(page, "/sandbox/click", user=CAROL, channel=channel, ts=ts, action_id="incident.step.run:rollback")
    await sandbox.fake.wait_for(
        "chat.postMessage", lambda c: "✅ Step *Roll back last deploy* succeeded" in text_of(c), after=mark, timeout=30
    )
    assert sandbox.world.services["api"].state == "up"  # type: ignore[comparison-overlap]  # narrowed before the click


async def test_the_page_hears_the_bots_answer_live(sandbox: Sandbox, page: httpx.AsyncClient) -> None:
    """Server-Sent Events: the bot's answer (a Web API call the stand-in records) is a new version at
    once, not at the next keep-alive."""
    sandbox.world.set_service("api", "down")
    async with page.stream("GET", "/sandbox/events") as events:
        lines = events.aiter_lines()
        await anext(lines)
        mark = sandbox.fake.mark()
        await post(page, "/sandbox/say", user=CAROL, channel=GENERAL, text="are we down?")
        asked = (await page.get("/sandbox/state")).json()["version"]
        await sandbox.fake.wait_for("chat.postMessage", after=mark, timeout=15)

        async def next_version() -> int:
            async for line in lines:
                if line.startswith("data: ") and int(line.removeprefix("data: ")) > asked:
                    return int(line.removeprefix("data: "))
            raise AssertionError("the event stream ended")

        version = await asyncio.wait_for(next_version(), timeout=KEEPALIVE_SECONDS - 5)
    state = (await page.get("/sandbox/state")).json()
    assert state["version"] >= version
    assert next(c for c in state["channels"] if c["id"] == GENERAL)["messages"][0]["reply_count"] == 1
