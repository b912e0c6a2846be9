"""What people may see of a request or an answer: one place that masks secrets for every action.

A step's `${VAR}` placeholders put real tokens into URLs, headers and JSON bodies; the confirm
dialog, the playbook thread and the audit log must show where a call goes, never the token.
Keys are secret-looking by `bot.redaction.secret_key` (the audit log's rule too); values under
them become ***, whatever their type. Header values are shown only for a few harmless headers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.redaction import OPAQUE as _OPAQUE
from bot.redaction import SECRET_KEY_PARTS, header_shown, secret_key

__all__ = ["MASK", "mask_headers", "mask_text", "mask_value", "secret_key", "shown_url"]

MASK = "***"

_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
# `token=abc`, `"api_key": "abc"`, `password: abc`, `Authorization: Bearer abc` in free text.
_KEY_VALUE = re.compile(
    rf"""(?P<key>[A-Za-z0-9_-]*(?:{"|".join(SECRET_KEY_PARTS)})[A-Za-z0-9_-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|(?:bearer|basic|token)\s+\S+|[^\s,;&}"']+)""",
    re.IGNORECASE,
)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header values as people may see them: *** for every header but a few harmless ones."""
    return {name: mask_text(value) if header_shown(name) else MASK for name, value in headers.items()}


def shown_url(url: str) -> str:
    """The URL as people may see it: userinfo, secret-looking query values and long opaque path
    segments (a Slack webhook's `/services/T…/B…/SECRET`) replaced by ***."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return MASK
    netloc = f"{MASK}@{host}" if "@" in parts.netloc else host
    path = "/".join(MASK if _OPAQUE.fullmatch(segment) else segment for segment in parts.path.split("/"))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(secret_key(k) or _OPAQUE.fullmatch(v) for k, v in pairs):
            query = urlencode([(k, MASK if secret_key(k) or _OPAQUE.fullmatch(v) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def mask_value(value: Any) -> Any:
    """A JSON-like value with every value under a secret-looking key (at any depth) replaced by ***,
    and URLs and long opaque strings inside strings masked."""
    if isinstance(value, Mapping):
        return {k: MASK if secret_key(str(k)) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def mask_text(text: str) -> str:
    """Free text (an error answer, a first line of a body) with URLs, `secret-key: value` pairs and
    long opaque runs masked."""
    text = _URL.sub(lambda m: shown_url(m.group(0)), text)
    text = _KEY_VALUE.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    return _OPAQUE.sub(MASK, text)
