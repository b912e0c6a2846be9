"""Log hygiene: the HTTP clients guardrail uses log URLs and headers that can carry credentials.

httpx logs every request at INFO with its full URL (`http://user:pw@host/…?token=…`), for
playbook actions and for every health check; httpcore logs response headers (`Set-Cookie`) at
DEBUG; slack_sdk logs `response_url`s (a capability to answer in Slack) at DEBUG; Socket Mode
clients log the WebSocket URL, whose `ticket` lets anyone connect as the app — with their own
logger, or with Bolt's app logger, which Bolt hands them (a failed handshake logs "Failed to
connect (… url='wss://…?ticket=…')" at ERROR). aiohttp's own loggers log no URLs. A filter on
those loggers rewrites each record before any handler sees it: every URL through `safe_target`
(no userinfo, query or fragment, opaque path segments masked), header lists dropped. The lines
stay useful ("HTTP Request: POST http://deploy.example.com/rollback "HTTP/1.1 200 OK"").

`LOG_FORMAT=json` (`use_json_logs`) writes one JSON object a line, with the id of the HTTP
request the line was logged for (`request_context`, set by web.py's middleware; Bolt runs
listeners in tasks that inherit it). The scrubbing filters sit on the loggers, before any handler
or formatter, so JSON lines are scrubbed the same.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bot.checks.base import safe_target

__all__ = ["SCRUBBED_LOGGERS", "JsonFormatter", "keep_secrets_out_of_logs", "request_context", "scrub", "use_json_logs"]

SCRUBBED_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "slack_sdk.web.async_base_client",
    "slack_sdk.web.base_client",
    "slack_sdk.webhook.async_client",
    "slack_sdk.webhook.client",
    "slack_sdk.socket_mode.aiohttp",
    "slack_sdk.socket_mode.websockets",
    "slack_sdk.socket_mode.websocket_client",
    "slack_sdk.socket_mode.builtin.client",
    "slack_bolt.AsyncApp",
    "slack_bolt.App",
    "bot.server",  # logs why a Socket Mode connection failed: the error can name the URL
)

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
# httpcore's trace of headers: [(b'set-cookie', b'session=…'), …]
_HEADER_LIST = re.compile(r"\[\(b['\"].*?\)\]")


def scrub(message: str) -> str:
    """A log message with every URL reduced to its safe target and header lists dropped."""
    return _HEADER_LIST.sub("[headers]", _URL.sub(lambda m: safe_target(m.group(0)), message))


class _Scrubber(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business, not ours
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # A traceback ends with the exception's message, which names the URL too ("… url='wss://…?ticket=…'").
            trace = _FORMATTER.formatException(record.exc_info)
            record.exc_text = scrub(trace)
            if record.exc_text != trace:
                record.exc_info = None  # handlers that format it themselves would show the URL again
        return True


_FORMATTER = logging.Formatter()


_SCRUBBER = _Scrubber()


def keep_secrets_out_of_logs() -> None:
    """Install the scrubbing filter on the HTTP clients' loggers (idempotent)."""
    for name in SCRUBBED_LOGGERS:
        logger = logging.getLogger(name)
        if _SCRUBBER not in logger.filters:
            logger.addFilter(_SCRUBBER)


# -- structured logs -----------------------------------------------------------------------------

_request: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("guardrail_request", default=None)

# What every LogRecord has; anything else on a record is an `extra` and goes into the JSON line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}  # uvicorn's ANSI copy of the message


# Request ids: this process's random prefix and a counter. Unique across replicas and restarts
# without a random draw (a system call) per request on the gate's hot path.
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


@contextlib.contextmanager
def request_context(**fields: str | None) -> Iterator[str]:
    """Mark the log lines of one HTTP request with a fresh `request_id` (and the given fields)."""
    request_id = new_request_id()
    token = _request.set({"request_id": request_id, **{k: v for k, v in fields.items() if v}})
    try:
        yield request_id
    finally:
        _request.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request's fields, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_request.get() or {})
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


def use_json_logs() -> None:
    """Switch the root logger's handlers to JSON lines on stderr (for `LOG_FORMAT=json`)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
