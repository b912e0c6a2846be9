"""The `/freeze` text grammar: pure functions from what people type to typed requests.

Times are read in the team's time zone unless a zone is written after a date
("2026-12-01 14:00 Europe/London", "… UTC"). Durations are absolute (`for 4h` is four real
hours, also across a daylight-saving change). Clauses come first, in any order, and the rest
is the reason:

    for D | in D | from T | until T | before T | lead D | on ENV

where T is `now`, `HH:MM`, `today HH:MM`, `tomorrow [HH:MM]`, `YYYY-MM-DD [HH:MM] [ZONE]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.durations import parse_duration

EXAMPLES = (
    "`/freeze for 2h Demo Day` · `/freeze in 30m for 2h Demo Day` · "
    "`/freeze from 14:00 for 4h on staging Demo Day` · "
    "`/freeze from 2026-12-01 14:00 until 2026-12-01 18:00 Demo Day` · "
    "`/freeze from tomorrow 09:00 until 12:00 Release` · "
    "`/freeze before 2026-12-01 15:00 lead 2h for 1h Demo Day`"
)
USAGE = (
    "Usage: `/freeze [list]` · `/freeze status [environment]` · `/freeze cancel #N` · "
    "`/freeze extend #N 30m` · `/freeze new` (a form) · `/freeze exempt #N <service> <duration> <reason>` · "
    "or create one: " + EXAMPLES
)

SHORT_USAGE = (
    "Try `/freeze for 2h Demo Day`, `/freeze list`, `/freeze status`, `/freeze cancel #N`, "
    "`/freeze extend #N 30m`, `/freeze new` or `/freeze exempt #N <service> <duration> <reason>`; "
    "`/freeze help` shows every form."
)
_CLAUSES = ("for", "in", "from", "until", "before", "lead", "on")
_HHMM = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")  # ASCII digits only; used with fullmatch
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ID = re.compile(r"#?([0-9]{1,9})")  # ASCII digits only; 9 fit a PostgreSQL integer


class GrammarError(ValueError):
    """What part of the text was not understood, phrased for the person who typed it."""


class BadDate(GrammarError):
    """The date itself is wrong (not a date, or out of range): the form shows it on the date picker."""


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateWindow:
    starts_at: datetime
    ends_at: datetime
    environment: str | None
    reason: str


@dataclass(frozen=True)
class ListWindows:
    pass


@dataclass(frozen=True)
class ShowStatus:
    environment: str | None


@dataclass(frozen=True)
class CancelWindow:
    window_id: int


@dataclass(frozen=True)
class ExtendWindow:
    window_id: int
    by: timedelta


@dataclass(frozen=True)
class OpenForm:
    pass


@dataclass(frozen=True)
class RequestExemption:
    window_id: int
    service: str
    duration: timedelta
    reason: str


@dataclass(frozen=True)
class ShowUsage:
    message: str


FreezeRequest = (
    CreateWindow | ListWindows | ShowStatus | CancelWindow | ExtendWindow | OpenForm | RequestExemption | ShowUsage
)


# --- entry point -----------------------------------------------------------------------------


def parse(text: str, *, now: datetime, tz: ZoneInfo) -> FreezeRequest:
    """Parse a `/freeze` text. Raises GrammarError naming the part that was not understood."""
    words = text.split()
    if not words or words[0].lower() == "list":
        if len(words) > 1:
            raise GrammarError(f"`list` takes nothing after it (found `{' '.join(words[1:])}`).")
        return ListWindows()
    head, rest = words[0].lower(), words[1:]
    if head == "status":
        if len(rest) > 1:
            raise GrammarError(f"`status` takes one environment at most (found `{' '.join(rest)}`).")
        return ShowStatus(rest[0] if rest else None)
    if head == "cancel":
        if len(rest) != 1:
            raise GrammarError("`cancel` needs one window id, e.g. `/freeze cancel #3`.")
        return CancelWindow(_window_id(rest[0]))
    if head == "extend":
        if len(rest) != 2:
            raise GrammarError("`extend` needs a window id and a duration, e.g. `/freeze extend #3 30m`.")
        return ExtendWindow(_window_id(rest[0]), _duration(rest[1], "extend #N"))
    if head == "new":
        return OpenForm()
    if head == "exempt":
        if len(rest) < 4:
            raise GrammarError(
                "`exempt` needs a window id, a service, a duration and a reason, "
                "e.g. `/freeze exempt #3 api 30m hotfix for the checkout bug`."
            )
        return RequestExemption(_window_id(rest[0]), rest[1], _duration(rest[2], "the service"), " ".join(rest[3:]))
    if head in ("help", "usage"):
        return ShowUsage(USAGE)
    if head in _CLAUSES:
        try:
            return parse_window(words, now=now, tz=tz)
        except OverflowError:
            raise GrammarError(
                f"That time is out of range: keep dates between year 1 and 9999. Examples: {EXAMPLES}"
            ) from None
    return ShowUsage(f"I don't know `/freeze {words[0]}`. {SHORT_USAGE}")


def parse_window(words: list[str], *, now: datetime, tz: ZoneInfo) -> CreateWindow:
    """`for/in/from/until/before/lead/on` clauses followed by the reason."""
    clauses: dict[str, object] = {}
    i = 0
    while i < len(words) and words[i].lower() in _CLAUSES:
        keyword = words[i].lower()
        if keyword in clauses:
            raise GrammarError(f"`{keyword}` appears twice; say it once.")
        if i + 1 >= len(words):
            raise GrammarError(f"`{keyword}` needs something after it. Examples: {EXAMPLES}")
        if keyword in ("for", "in", "lead"):
            clauses[keyword] = _duration(words[i + 1], keyword)
            i += 2
        elif keyword == "on":
            clauses[keyword] = words[i + 1]
            i += 2
        else:
            moment, used = _moment(words[i + 1 :], keyword, now=now, tz=tz)
            clauses[keyword] = moment
            i += 1 + used
    reason = " ".join(words[i:]).strip()
    return _assemble(clauses, reason, now=now, tz=tz)


# --- pieces ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Moment:
    """A time as written: a full instant, or a time of day whose date is decided by context."""

    at: datetime
    date_given: bool


def _assemble(clauses: dict[str, object], reason: str, *, now: datetime, tz: ZoneInfo) -> CreateWindow:
    has = clauses.__contains__
    if has("in") and (has("from") or has("before")):
        raise GrammarError("Use either `in` or `from`/`before` for the start, not both.")
    if has("from") and has("before"):
        raise GrammarError("Use either `from` or `before … lead`, not both.")
    if has("for") and has("until"):
        raise GrammarError("Use either `for` (a duration) or `until` (an end time), not both.")
    if has("lead") and not has("before"):
        raise GrammarError("`lead` belongs to `before`: `/freeze before 2026-12-01 15:00 lead 2h for 1h Demo Day`.")
    if not reason:
        raise GrammarError(f"Say why after the times, e.g. `/freeze for 2h Demo Day`. Examples: {EXAMPLES}")

    start: datetime
    if has("before"):
        if not has("lead"):
            raise GrammarError(
                "`before` needs a `lead`: how long before the event the freeze starts, "
                "e.g. `before 2026-12-01 15:00 lead 2h for 1h Demo Day`."
            )
        event = _as_instant(clauses["before"], now)
        start = event - _td(clauses["lead"])
        end = event + _td(clauses["for"]) if has("for") else event
        if has("until"):
            end = _after(clauses["until"], event, tz)
        return CreateWindow(start, end, _env(clauses), reason)
    if has("in"):
        start = now + _td(clauses["in"])
    elif has("from"):
        start = _as_instant(clauses["from"], now)
    else:
        start = now
    if has("for"):
        end = start + _td(clauses["for"])
    elif has("until"):
        end = _after(clauses["until"], start, tz)
    else:
        raise GrammarError("How long? Add `for 2h` or `until 18:00`. Examples: " + EXAMPLES)
    return CreateWindow(start, end, _env(clauses), reason)


def _env(clauses: dict[str, object]) -> str | None:
    value = clauses.get("on")
    return str(value) if value is not None else None


def _td(value: object) -> timedelta:
    assert isinstance(value, timedelta)
    return value


def _as_instant(value: object, now: datetime) -> datetime:
    assert isinstance(value, _Moment)
    return value.at


def _after(value: object, start: datetime, tz: ZoneInfo) -> datetime:
    """An end time: as written when it has a date; otherwise the first such time of day after start."""
    assert isinstance(value, _Moment)
    if value.date_given:
        return value.at
    local_start = start.astimezone(tz)
    wall = value.at.astimezone(tz).time()
    candidate = _local(local_start.date(), wall, tz, f"{wall:%H:%M}")
    if candidate <= start:
        candidate = _local(local_start.date() + timedelta(days=1), wall, tz, f"{wall:%H:%M}")
    return candidate


def _window_id(word: str) -> int:
    match = _ID.fullmatch(word)
    if not match:
        raise GrammarError(f"`{word}` is not a window id; write it like `#3` (see `/freeze list`).")
    return int(match.group(1))


def _duration(word: str, after: str) -> timedelta:
    try:
        if not word.isascii():  # full-width digits ("\uff19m") are not 9 minutes
            raise ValueError(word)
        return parse_duration(word)
    except (ValueError, OverflowError) as exc:
        if "too long" in str(exc):
            raise GrammarError(f"`{word}` (after `{after}`) is out of range: {exc}.") from None
        raise GrammarError(f"`{word}` (after `{after}`) is not a duration: write 30m, 2h, 1d or 1h30m.") from None


def _moment(words: list[str], keyword: str, *, now: datetime, tz: ZoneInfo) -> tuple[_Moment, int]:
    """Read a time from the front of `words`; return it and how many words it used."""
    first = words[0].lower()
    local_now = now.astimezone(tz)
    expected = (
        f"after `{keyword}` I expected a time like `14:00`, `tomorrow 09:00` or "
        f"`2026-12-01 14:00` (optionally followed by a zone such as `UTC`)"
    )
    if first == "now":
        return _Moment(now, True), 1
    if _HHMM.fullmatch(first):
        return _Moment(_local(local_now.date(), _hhmm(first), tz, first), False), 1
    if first in ("today", "tomorrow"):
        day = local_now.date() + timedelta(days=1 if first == "tomorrow" else 0)
        if len(words) > 1 and _HHMM.fullmatch(words[1]):
            return _Moment(_local(day, _hhmm(words[1]), tz, f"{first} {words[1]}"), True), 2
        if first == "today":
            raise GrammarError(f"`today` needs a time after it, e.g. `today 14:00`; {expected}.")
        return _Moment(_local(day, time(0, 0), tz, first), True), 1
    date_match = _DATE.fullmatch(first)
    if date_match:
        try:
            day = date(int(date_match.group(1)), int(date_match.group(2)), int(date_match.group(3)))
        except ValueError:
            raise GrammarError(f"`{words[0]}` is not a real date.") from None
        used, wall = 1, time(0, 0)
        if len(words) > 1 and _HHMM.fullmatch(words[1]):
            used, wall = 2, _hhmm(words[1])
        zone = tz
        if len(words) > used and _looks_like_zone(words[used]):
            zone = _zone(words[used])
            used += 1
        return _Moment(_local(day, wall, zone, " ".join(words[:used])), True), used
    raise GrammarError(f"I did not understand `{words[0]}`: {expected}.")


def _hhmm(word: str) -> time:
    hours, minutes = word.split(":")
    return time(int(hours), int(minutes))


def _looks_like_zone(word: str) -> bool:
    return word.upper() in ("UTC", "Z", "GMT") or "/" in word


def _zone(word: str) -> ZoneInfo:
    if word.upper() in ("UTC", "Z", "GMT"):
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(word)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as America/Argentina
        raise GrammarError(f"`{word}` is not a time zone I know; use an IANA name like Europe/Berlin or UTC.") from None


def _local(day: date, wall: time, tz: ZoneInfo, written: str) -> datetime:
    """A wall-clock time in `tz`. A time skipped by a daylight-saving change is refused; a repeated
    one means its first occurrence."""
    moment = datetime.combine(day, wall, tzinfo=tz)
    round_trip = moment.astimezone(UTC).astimezone(tz)
    if round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        raise GrammarError(
            f"`{written}` does not exist in {tz.key}: the clocks skip it on {day.isoformat()} "
            "(daylight saving). Pick a time outside the skipped hour."
        )
    return moment.astimezone(UTC)


def local_moment(day: str, hhmm: str, tz: ZoneInfo) -> datetime:
    """A date ("2026-12-01") and time ("14:00") from a form, in `tz`; GrammarError if either is invalid."""
    if not _DATE.fullmatch(day):
        raise BadDate(f"`{day}` is not a date.")
    try:
        parsed_day = date.fromisoformat(day)
    except ValueError:
        raise BadDate(f"`{day}` is not a date.") from None
    if not _HHMM.fullmatch(hhmm):
        raise GrammarError(f"`{hhmm}` is not a time of day.")
    try:
        return _local(parsed_day, _hhmm(hhmm), tz, f"{day} {hhmm}")
    except OverflowError:
        raise BadDate(f"`{day} {hhmm}` is out of range.") from None
