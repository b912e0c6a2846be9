"""What people may see of a request or an answer: one place that masks secrets for every action.

A step's `${VAR}` placeholders put real tokens into URLs, headers and JSON bodies; the confirm
dialog, the playbook thread and the audit log must show where a call goes, never the token.
Keys are secret-looking by the audit log's rules (`bot.db.audit.redact`) and a few more
(`key`, `auth`, `sig`…); values under them become ***, whatever their type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "mask_text", "mask_value", "secret_key", "shown_url"]

MASK = "***"

# A superset of bot.db.audit's keys (token, secret, password, authorization, api_key, apikey).
_SECRET_KEY = re.compile(r"token|key|secret|password|passwd|signature|sig|auth|credential|cookie", re.IGNORECASE)
# A long opaque run (a webhook's secret path segment, a bare token): ≥ 20 chars of [A-Za-z0-9_-].
_OPAQUE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
# `token=abc`, `"api_key": "abc"`, `password: abc`, `Authorization: Bearer abc` in free text.
_KEY_VALUE = re.compile(
    r"""(?P<key>[A-Za-z0-9_-]*(?:token|key|secret|password|passwd|signature|auth|credential|cookie)[A-Za-z0-9_-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*)(?P<value>"[^"]*"|'[^']*'|(?:bearer|basic|token)\s+\S+|[^\s,;&}"']+)""",
    re.IGNORECASE)


def secret_key(key: str) -> bool:
    """Whether a header, query parameter or JSON key names something secret."""
    return bool(_SECRET_KEY.search(key))


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
            query = urlencode([(k, MASK if secret_key(k) or _OPAQUE.fullmatch(v) else v) for k, v in pairs],
                              safe="*")
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
