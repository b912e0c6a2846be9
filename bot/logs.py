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
"""

from __future__ import annotations

import logging
import re

from bot.checks.base import safe_target

__all__ = ["SCRUBBED_LOGGERS", "keep_secrets_out_of_logs", "scrub"]

SCRUBBED_LOGGERS = (
    "httpx",
    "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks",
    "slack_sdk.web.async_base_client", "slack_sdk.web.base_client",
    "slack_sdk.webhook.async_client", "slack_sdk.webhook.client",
    "slack_sdk.socket_mode.aiohttp", "slack_sdk.socket_mode.websockets", "slack_sdk.socket_mode.websocket_client",
    "slack_sdk.socket_mode.builtin.client", "slack_bolt.AsyncApp", "slack_bolt.App",
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
