"""`LOG_FORMAT=json`: one JSON object a line, each carrying the id of the request it was logged for."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.logs import JsonFormatter
from bot.sandbox.fakes.targets import target_server
from bot.sandbox.standin.fake_slack import FakeSlack
from tests.support.bot import running_bot, write_config
from tests.support.clock import FakeClock

SECRET = "hunter2-very-secret-token-value"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def json_lines(caplog: pytest.LogCaptureFixture) -> Iterator[Lines]:
    caplog.set_level(logging.INFO)
    handler = Lines()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


async def test_a_request_logs_json_lines_with_its_request_id_and_slack_retry_headers(
    sqlite_url: str, config_dir: Path, fake_slack: FakeSlack, json_lines: Lines
) -> None:
    async with running_bot(database_url=sqlite_url, config_dir=config_dir, fake=fake_slack) as bot:
        first = await bot.slack.message("just chatting")
        assert bot.slack.last_event_id is not None
        retried = await bot.slack.retry(bot.slack.last_event_id, retry_num=1)
    assert first.status_code == retried.status_code == 200
    request_id = retried.headers["x-request-id"]
    assert request_id != first.headers["x-request-id"]
    dropped = [line for line in json_lines.parsed() if "dropping redelivered event" in str(line["message"])]
    assert len(dropped) == 1
    line = dropped[0]
    assert line["request_id"] == request_id
    assert line["level"] == "INFO" and line["logger"] == "bot.slack.app"
    assert line["slack_retry_num"] == "1" and line["slack_retry_reason"] == "http_timeout"
    assert line["path"] == "/slack/events" and str(line["time"]).endswith("+00:00")


async def test_a_secret_in_a_url_httpx_logs_is_redacted_in_json_lines(
    sqlite_url: str, tmp_path: Path, fake_slack: FakeSlack, clock: FakeClock, json_lines: Lines
) -> None:
    async with target_server() as targets:
        targets.set("/api")
        config = write_config(
            tmp_path / "config",
            f"""
            services:
              - name: api
                http: {{url: "{targets.url}/api?token={SECRET}"}}
        """,
        )
        async with running_bot(database_url=sqlite_url, config_dir=config, fake=fake_slack, clock=clock) as bot:
            report = await bot.runtime.health.report("api")
    assert report.results[0].status == "up"
    requests = [line for line in json_lines.parsed() if line["logger"] == "httpx"]
    assert requests and "HTTP Request: GET" in str(requests[0]["message"])
    assert not any(SECRET in line for line in json_lines.lines)
