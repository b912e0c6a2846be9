"""Rendering limits: many services still make a message Slack accepts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.checks.base import CheckResult, Status
from bot.services.health import HealthReport
from bot.slack.health_view import ago, incident_value, render_report

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_ago() -> None:
    cases = {0: "just now", 45: "45 s ago", 240: "4 min ago", 3 * 3600 + 5: "3 h ago", 2 * 86400: "2 d ago"}
    for seconds, text in cases.items():
        assert ago(timedelta(seconds=seconds)) == text


def test_a_hundred_services_fit_slacks_limits() -> None:
    results = [
        CheckResult(
            f"service-{i:03d}",
            Status.DOWN if i % 3 else Status.UP,
            1234.5,
            "no answer within 2s" + " really" * 10,
            NOW,
            down_since=NOW - timedelta(minutes=5),
        )
        for i in range(100)
    ]
    report = HealthReport(results=results, checked_at=NOW, age=timedelta(0), reused=False, environment="production")
    text, blocks = render_report(report, ZoneInfo("Europe/Berlin"), NOW, timedelta(seconds=10))
    assert text.startswith("66 of 100 down: service-001, service-002")
    assert len(blocks) <= 50
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(s) <= 3000 for s in sections)
    assert sum(s.count("service-") for s in sections[1:]) == 100  # every service is listed
    button = blocks[-1]["elements"][0]
    assert button["action_id"] == "health.declare_incident"
    assert json.loads(button["value"])["services"] == report.down


def test_the_incident_button_value_stays_valid_json_when_names_do_not_fit() -> None:
    names = [f"a-very-long-service-name-number-{i:04d}" for i in range(200)]
    value = incident_value(names)
    assert len(value) <= 2000
    kept = json.loads(value)["services"]
    assert 0 < len(kept) < 200 and kept == names[: len(kept)]
