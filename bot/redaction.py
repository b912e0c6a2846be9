"""What counts as a secret, in one place: the audit log, actions' masking and log hygiene share it.

A key (a header, query parameter or JSON key) is secret-looking when its name contains one of
`SECRET_KEY_PARTS`, case-insensitively — `pass` covers password/passwd/passphrase, `key` covers
api_key/X-Api-Key/private_key, and so on. Over-matching (`keyboard`, `author`) costs a value
shown as ***; under-matching costs a credential in the audit log.

Header *values* are secret unless the header is on a short allow-list: custom headers
(`X-Deploy-Tenant`, `X-Signature-…`) carry credentials too often to guess by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["OPAQUE", "REDACTED", "SECRET_KEY_PARTS", "SHOWN_HEADERS", "header_shown", "redact", "secret_key"]

SECRET_KEY_PARTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
    "session",
    "cookie",
    "signature",
    "sig",
)
_SECRET_KEY = re.compile("|".join(SECRET_KEY_PARTS), re.IGNORECASE)

REDACTED = "[redacted]"

SHOWN_HEADERS = frozenset(
    {"accept", "accept-encoding", "accept-language", "cache-control", "content-type", "user-agent"}
)

# A long opaque run (a webhook's secret path segment, a bare token): ≥ 20 chars of [A-Za-z0-9_-].
OPAQUE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])")


def secret_key(name: str) -> bool:
    """Whether a header, query parameter or JSON key names something secret."""
    return bool(_SECRET_KEY.search(name))


def header_shown(name: str) -> bool:
    """Whether a header's value may be shown or stored (only a few harmless ones may)."""
    return name.strip().lower() in SHOWN_HEADERS


def redact(value: Any, *, own: frozenset[str] = frozenset()) -> Any:
    """Replace values under secret-looking keys (`bot.redaction.secret_key`), at any depth, and
    every header value but a few harmless ones: secrets never reach the log."""
    if isinstance(value, Mapping):
        shown: dict[str, Any] = {}
        for k, v in value.items():
            name = str(k)
            if secret_key(name) and name not in own:
                shown[name] = REDACTED
            elif name.lower() == "headers" and isinstance(v, Mapping):
                shown[name] = {str(h): hv if header_shown(str(h)) else REDACTED for h, hv in v.items()}
            else:
                shown[name] = redact(v)
        return shown
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
