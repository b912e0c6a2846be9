"""End to end: a real `http` step whose URL and body carry a token, pressed through the Slack stand-in.
The hook gets the token; the confirm dialog, the thread, the preview and the audit log never show it."""

from __future__ import annotations

from pathlib import Path

from bot.actions import build_action
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.clock import FakeClock
from tests.support.fake_hook import FakeHook
from tests.support.incidents import declare, incident_bot, incident_config, text_of

BODY_TOKEN = "s3cr3t-body-0a1b2c3d4e5f"
QUERY_TOKEN = "qs3cr3t"
USER_TOKEN = "us3cr3t"
PATH_SECRET = "Pz9y8x7w6v5u4t3s2r1q0pOn"


async def test_tokens_in_an_http_step_never_reach_slack_or_the_audit_log(
    database_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    hook = FakeHook()
    async with hook.serve() as url:
        target = url.replace("http://", f"http://{USER_TOKEN}@") + f"/services/T01/B02/{PATH_SECRET}"
        playbook = f"""\
            playbooks:
              - name: production-incident
                steps:
                  - id: rollback
                    label: Roll back last deploy
                    action: {{http: {{url: "{target}?token={QUERY_TOKEN}",
                                      json: {{service: api, token: "{BODY_TOKEN}"}}}}}}
            """
        config = incident_config(tmp_path, playbook)
        async with incident_bot(
            database_url=database_url, config_dir=config, fake=fake_slack, clock=clock, build_action=build_action
        ) as ibot:
            channel = await declare(ibot.bot)
            await ibot.bot.slack.block_action("incident.step.preview:rollback", user_id="U0CAROL", channel_id=channel)
            await ibot.fake.wait_for_response(lambda r: "Preview of Roll back last deploy" in str(r.text))
            fresh = ibot.fake.mark()
            await ibot.bot.slack.block_action("incident.step.run:rollback", user_id="U0CAROL", channel_id=channel)
            await ibot.fake.wait_for("chat.postMessage", lambda c: "* succeeded after" in text_of(c), after=fresh)
            audit = await ibot.bot.runtime.audit.latest(50)
            seen_in_slack = repr([c.args for c in ibot.fake.calls]) + repr([r.body for r in ibot.fake.responses])
    [request] = hook.requests
    assert request.body == {"service": "api", "token": BODY_TOKEN}  # the real values were sent
    assert request.query == f"token={QUERY_TOKEN}" and request.path.endswith(PATH_SECRET)
    assert "token ***" in seen_in_slack and "/services/T01/B02/***" in seen_in_slack
    for secret in (BODY_TOKEN, QUERY_TOKEN, USER_TOKEN, PATH_SECRET):
        assert secret not in seen_in_slack, secret
        assert secret not in repr(audit), secret
