"""parse_duration / format_duration and the Duration field type."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import ConfigInvalid, HealthSettings, format_duration, load_config, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("10s", timedelta(seconds=10)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("65h", timedelta(hours=65)),
        (" 7d ", timedelta(days=7)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5x", "", "10", "h", "1h30", "ten seconds", "1h-30m", "5 minutes"])
def test_parse_duration_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: use a number followed by ms, s, m, h or d"):
        parse_duration(text)


def test_parse_duration_message_is_exact() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("5x")
    assert str(info.value) == "'5x' is not a duration: use a number followed by ms, s, m, h or d, e.g. 10s, 5m, 2h"


@pytest.mark.parametrize("text", ["0s", "0ms", "0h0m", "-5m"])
def test_parse_duration_rejects_zero_and_negative(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=10), "10s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=1, minutes=30), "1h 30m"),
        (timedelta(hours=65), "65h"),
        (timedelta(days=7), "7d"),
        (timedelta(seconds=90), "1m 30s"),
        (timedelta(seconds=1, milliseconds=500), "1s 500ms"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text
    if td > timedelta(0):
        assert parse_duration(text) == td


def test_duration_field_accepts_strings_and_dumps_them_back() -> None:
    settings = HealthSettings.model_validate({"cache_ttl": "1h30m"})
    assert settings.cache_ttl == timedelta(minutes=90)
    assert settings.model_dump(mode="json") == {"cache_ttl": "1h 30m"}


@pytest.mark.parametrize("value", [30, 1.5])
def test_duration_field_refuses_bare_numbers(value: float) -> None:
    with pytest.raises(ValidationError) as info:
        HealthSettings.model_validate({"cache_ttl": value})
    error = info.value.errors()[0]
    assert "bare number" in error["msg"]
    assert error["ctx"]["hint"] == f"add a unit, e.g. {value}s or {value}m"


@pytest.mark.parametrize("text", ["99999999999d", "3651d", "999999999999999999999h"])
def test_absurdly_long_durations_are_refused_not_crashed(text: str) -> None:
    with pytest.raises(ValueError, match="too long a duration: at most 3650 days"):
        parse_duration(text)


def test_an_absurd_max_duration_is_a_config_problem(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("channels: {deploys: C0DEPLOYS}\nfreeze: {max_duration: 99999999999d}\n")
    with pytest.raises(ConfigInvalid) as raised:
        load_config(tmp_path, {})
    assert "freeze.max_duration" in str(raised.value) and "too long" in str(raised.value)


def test_a_health_check_timeout_is_at_most_thirty_seconds(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(
        "channels: {deploys: C0DEPLOYS}\nservices: [{name: api, tcp: {host: 127.0.0.1, port: 1}, timeout: 10m}]\n"
    )
    with pytest.raises(ConfigInvalid) as raised:
        load_config(tmp_path, {})
    assert "services[0]" in str(raised.value) and "timeout is at most 30s" in str(raised.value)
