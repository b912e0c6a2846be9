"""Reusable field types and rules for the config models.

Constraints are written as validators raising our own error (see
`problems.custom_error`) rather than pydantic `pattern=` constraints, so people
read "use lowercase letters, digits, '-' and '_'" instead of a regular expression.
The "exactly one of" rule is shared with the cross-field pass so that both report
the same problem text (and the loader can de-duplicate them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from bot.config.problems import custom_error

__all__ = [
    "SERVICE_KINDS",
    "ChannelId",
    "EnvironmentName",
    "HttpMethod",
    "HttpUrl",
    "NonEmptyStr",
    "RedisUrl",
    "SlackPrincipal",
    "Slug",
    "SqlUrl",
    "StrictModel",
    "exactly_one_problem",
    "matching",
    "service_kind_problem",
]


class StrictModel(BaseModel):
    """Base for every config model: frozen, and unknown keys are an error (typos must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def matching(pattern: str, message: str, hint: str | None = None) -> Callable[[str], str]:
    """An after-validator that checks a string against `pattern`; `message` may use {value}."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise custom_error(message.format(value=value), hint)
        return value

    return check


def _nonempty(value: str) -> str:
    if not value.strip():
        raise custom_error("must not be empty")
    return value


SLUG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,39}"

Slug = Annotated[
    str,
    AfterValidator(
        matching(
            SLUG_PATTERN,
            "'{value}' is not a valid name",
            "use up to 40 lowercase letters, digits, '-' and '_', starting with a letter or digit",
        )
    ),
]
"""A short machine name (service, playbook, step id): lowercase, digits, '-' and '_'."""

EnvironmentName = Annotated[
    str,
    AfterValidator(
        matching(
            r"[a-z0-9][a-z0-9_-]*",
            "'{value}' is not a valid environment name",
            "use lowercase letters, digits, '-' and '_', e.g. production",
        )
    ),
]

ChannelId = Annotated[
    str,
    AfterValidator(
        matching(
            r"[CG][A-Z0-9]{2,}",
            "'{value}' is not a Slack channel id",
            "use the id (like C0123ABCD), not the name; it is at the bottom of the channel's details",
        )
    ),
]

SlackPrincipal = Annotated[
    str,
    AfterValidator(
        matching(
            r"[UW][A-Z0-9]{2,}|S[A-Z0-9]{2,}",
            "'{value}' is not a Slack user id or user-group id",
            "use a user id (U0123ABCD) or a user-group id (S0123ABCD), not a name or @handle",
        )
    ),
]

NonEmptyStr = Annotated[str, AfterValidator(_nonempty)]


def _url_with_scheme(schemes: Sequence[str], what: str, example: str) -> Callable[[str], str]:
    """An after-validator for URLs. Never echoes the URL: it may carry a password."""

    def check(value: str) -> str:
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower().split("+", 1)[0]
        if scheme not in schemes:
            raise custom_error(f"must be {what} URL", f"e.g. {example}")
        if scheme != "sqlite" and not parts.netloc:
            raise custom_error(f"must be {what} URL with a host", f"e.g. {example}")
        return value

    return check


HttpUrl = Annotated[
    str,
    AfterValidator(_url_with_scheme(("http", "https"), "an http:// or https://", "https://example.com/health")),
]
SqlUrl = Annotated[
    str,
    AfterValidator(
        _url_with_scheme(
            ("postgres", "postgresql", "sqlite", "mysql"),
            "a postgres://, postgresql://, mysql:// or sqlite:///",
            "postgres://user@db.internal:5432/app",
        )
    ),
]
RedisUrl = Annotated[
    str,
    AfterValidator(_url_with_scheme(("redis", "rediss"), "a redis:// or rediss://", "redis://127.0.0.1:6379/0")),
]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


HttpMethod = Annotated[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], BeforeValidator(_upper)]


def exactly_one_problem(data: Mapping[str, Any], choices: Sequence[str], what: str) -> tuple[str, str] | None:
    """(message, hint) when `data` sets zero or several of `choices` (None values count as unset)."""
    present = [key for key in choices if data.get(key) is not None]
    if len(present) == 1:
        return None
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
    found = "none" if not present else " and ".join(present)
    return f"{what} must have exactly one of {listed} (found {found})", f"keep one of: {listed}"


SERVICE_KINDS = ("http", "tcp", "sql", "redis", "rq")


def service_kind_problem(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """The "exactly one check" rule for a service, naming the service when it has a name."""
    name = data.get("name")
    what = f"service '{name}'" if isinstance(name, str) else "service"
    return exactly_one_problem(data, SERVICE_KINDS, what)
