"""Human-written durations ("500ms", "10s", "5m", "2h", "1d", "1h30m").

People type durations into YAML and read them back in Slack messages, so both
directions live here: `parse_duration` for input, `format_duration` for output,
and `Duration`, the pydantic field type the config models use. A bare number is
refused on purpose: "timeout: 30" is ambiguous (seconds? minutes?).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

from bot.config.problems import custom_error

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
# Ten years: longer is a typo, and datetimes near year 9999 overflow when a duration is added.
MAX_DURATION = timedelta(days=3650)
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_USAGE = "use a number followed by ms, s, m, h or d, e.g. 10s, 5m, 2h"


def parse_duration(text: str) -> timedelta:
    """Parse "10s", "1h30m" or "1h 30m" into a positive timedelta.

    Raises ValueError with a message that says what a duration looks like.
    """
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration: {_USAGE}")
    stripped = text.strip()
    if stripped.startswith("-"):
        raise ValueError(f"'{text}' is not a duration: durations must be positive, {_USAGE}")
    total = timedelta()
    pos = 0
    try:
        for match in _PART.finditer(stripped):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2).lower()]
            pos = match.end()
    except OverflowError:
        raise ValueError(f"'{text}' is too long a duration: at most {MAX_DURATION.days} days") from None
    if not stripped or pos != len(stripped):
        raise ValueError(f"'{text}' is not a duration: {_USAGE}")
    if total > MAX_DURATION:
        raise ValueError(f"'{text}' is too long a duration: at most {MAX_DURATION.days} days")
    if total <= timedelta():
        raise ValueError(f"'{text}' is not a duration: it must be longer than zero")
    return total


def format_duration(td: timedelta) -> str:
    """Render a timedelta the way a person would write it: "2h", "1h 30m", "65h", "500ms".

    Whole days are shown as "7d"; anything else uses hours (which may exceed 24),
    minutes, seconds and milliseconds, dropping zero parts.
    """
    if td < timedelta():
        return "-" + format_duration(-td)
    millis = round(td / timedelta(milliseconds=1))
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    day = 86_400_000
    if millis % day == 0:
        return f"{millis // day}d"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, ms = divmod(rest, 1000)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s"), (ms, "ms")) if n]
    return " ".join(parts)


def _coerce(value: Any) -> Any:
    """Pydantic before-validator: accept duration strings and positive timedeltas only."""
    if isinstance(value, timedelta):
        if value <= timedelta():
            raise custom_error("must be longer than zero")
        return value
    if isinstance(value, bool):
        raise custom_error(f"expected a duration: {_USAGE}")
    if isinstance(value, int | float):
        raise custom_error(
            f"'{value}' is not a duration: a bare number has no unit",
            hint=f"add a unit, e.g. {value}s or {value}m",
        )
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise custom_error(str(exc)) from None
    raise custom_error(f"expected a duration: {_USAGE}")


Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A positive timedelta written in YAML as "10s", "5m", "1h30m"; dumped to JSON the same way."""
