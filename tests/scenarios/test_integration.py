"""The features together, as the incident story goes: a deploy, a freeze, "are we down?", the
Declare button, and a real Heroku step (against the fake Heroku API) run during the freeze and undone."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bot.sandbox.fakes.heroku import TOKEN as HEROKU_TOKEN
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.standin.blocks import blocks_text
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import API_TOKEN, running_bot, write_config
from tests.support.clock import FakeClock
from tests.support.incidents import text_of, value_of
from tests.support.ports import free_port

PLAYBOOK = """\
services:
  - name: api
    tcp: {{host: 127.0.0.1, port: {port}}}
    timeout: 1s
playbooks:
  - name: production-incident
    steps:
      - id: disable-worker
        label: Disable worker
        changes_production: true
        action:
          heroku: {{scale: {{app: acme-prod, process: worker, quantity: 0}}}}
"""


async def test_are_we_down_to_incident_to_heroku_step_and_undo(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    heroku = FakeHeroku()
    heroku.add_app("acme-prod", formation={"web": 2, "worker": 3})
    config_dir = write_config(tmp_path / "config", PLAYBOOK.format(port=free_port()))
    fake_slack.usergroups["S0SRE"] = ["U0ERIN"]
    async with (
        heroku.serve() as heroku_url,
        running_bot(
            database_url=database_url,
            config_dir=config_dir,
            fake=fake_slack,
            clock=clock,
            heroku_api_token=HEROKU_TOKEN,
            heroku_api_url=heroku_url,
        ) as bot,
    ):
        # CI records a deploy, then someone freezes production for the demo.
        async with httpx.AsyncClient(base_url=bot.url) as http:
            deployed = await http.post(
                "/api/v1/deploys",
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                json={"environment": "production", "service": "api", "version": "v1.4.2", "actor": "ci"},
            )
        assert deployed.status_code == 201, deployed.text
        await bot.slack.slash("/freeze", "for 2h Demo Day", user_id="U0CAROL")
        await fake_slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.args.get("channel") == "C0DEPLOYS"
                and "Demo Day" in text_of(c) + blocks_text(c.args.get("blocks") or [])
            ),
        )

        # "Are we down?" is answered in the thread with the facts.
        await bot.slack.message("are we down?", user="U0ALICE", channel="C0GENERAL", ts="1700000000.000200")
        answer = await fake_slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == "1700000000.000200")
        text = blocks_text(answer.args["blocks"])
        assert answer.args["text"] == "api is down"
        assert "Demo Day" in text  # the active freeze
        assert "v1.4.2" in text and "ci" in text  # the last deploy

        # The Declare button starts the incident, pre-filled with what is down.
        fresh = fake_slack.mark()
        declare_value = next(
            e["value"]
            for b in answer.args["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "health.declare_incident"
        )
        assert json.loads(declare_value)["services"] == ["api"]
        await bot.slack.block_action(
            "health.declare_incident",
            declare_value,
            user_id="U0CAROL",
            channel_id="C0GENERAL",
            message_ts=answer.response["ts"],
        )
        created = await fake_slack.wait_for("conversations.create", after=fresh)
        channel = str(created.response["channel"]["id"])
        await fake_slack.wait_for(
            "chat.postMessage",
            lambda c: c.args.get("channel") == channel and "Disable worker" in blocks_text(c.args.get("blocks") or []),
        )

        # The production step asks for the freeze override, then really scales the worker to 0.
        await bot.slack.block_action(
            "incident.step.run:disable-worker",
            value_of(bot, channel, "incident.step.run:disable-worker"),
            user_id="U0CAROL",
            channel_id=channel,
        )
        override = await fake_slack.wait_for_response(lambda r: "frozen" in str(r.text))
        button = override.body["blocks"][-1]["elements"][0]
        fresh = fake_slack.mark()
        await bot.slack.block_action(button["action_id"], button["value"], user_id="U0CAROL", channel_id=channel)
        await fake_slack.wait_for("chat.postMessage", lambda c: "succeeded" in text_of(c), after=fresh)
        assert heroku.apps["acme-prod"].formation["worker"]["quantity"] == 0
        assert any("freeze_override" in e.action for e in await bot.runtime.audit.latest(30))

        # Undo scales back to what the run remembered (still under the freeze: confirmed again).
        undo_value = value_of(bot, channel, "incident.step.undo:disable-worker")
        await bot.slack.block_action(
            "incident.step.undo:disable-worker", undo_value, user_id="U0ERIN", channel_id=channel
        )
        override = await fake_slack.wait_for_response(lambda r: "dynos to 3" in str(r.body.get("blocks")))
        button = override.body["blocks"][-1]["elements"][0]
        fresh = fake_slack.mark()
        await bot.slack.block_action(button["action_id"], button["value"], user_id="U0ERIN", channel_id=channel)
        await fake_slack.wait_for(
            "chat.postMessage", lambda c: "Undo of" in text_of(c) and "succeeded" in text_of(c), after=fresh
        )
        assert heroku.apps["acme-prod"].formation["worker"]["quantity"] == 3
        assert (await bot.runtime.audit.verify()).ok
