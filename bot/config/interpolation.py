"""`${VAR}` and `${VAR:-default}` placeholders in config string values.

Secrets (database passwords, deploy hook tokens) stay out of the YAML files and
come from the environment. Only string scalars are interpolated, never keys.
Syntax, deliberately a small subset of the shell's:

- `${NAME}`: the variable's value; a problem if it is not set (set-but-empty is fine).
- `${NAME:-default}`: the default when the variable is unset or empty. The default
  is taken literally up to the first `}`; it cannot contain `}` or placeholders.
- `$$`: a literal `$`. A `$` not followed by `{` or `$` is also kept as is.

Problems are collected for every string, never stopping at the first, and
never include a variable's value, only its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.config.problems import Loc

__all__ = ["Interpolated", "interpolate", "interpolate_string"]

_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SYNTAX_HINT = "write ${NAME} or ${NAME:-default}; use $$ for a literal $"

Issue = tuple[str, str | None]
"""(message, hint) for one string."""


@dataclass
class Interpolated:
    """The interpolated data and what happened along the way."""

    value: Any
    problems: list[tuple[Loc, str, str | None]] = field(default_factory=list)
    failed: set[Loc] = field(default_factory=set)
    """Paths whose value could not be built; later validation errors there are noise."""
    variables: dict[Loc, tuple[str, ...]] = field(default_factory=dict)
    """Paths whose value came (partly) from the environment, with the variable names."""


def interpolate_string(text: str, environ: Mapping[str, str]) -> tuple[str, list[Issue], list[str]]:
    """Expand one string: (result, problems, names of the variables whose values were used)."""
    out: list[str] = []
    issues: list[Issue] = []
    used: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        following = text[i + 1] if i + 1 < len(text) else ""
        if char != "$" or following not in ("$", "{"):
            out.append(char)
            i += 1
            continue
        if following == "$":
            out.append("$")
            i += 2
            continue
        end = text.find("}", i + 2)
        if end == -1:
            issues.append(("'${' is never closed with '}'", _SYNTAX_HINT))
            out.append(text[i:])
            break
        body = text[i + 2 : end]
        i = end + 1
        match = _BODY.fullmatch(body)
        if not match:
            issues.append((f"'${{{body}}}' is not a valid placeholder", _SYNTAX_HINT))
            continue
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if default is not None and not value:
            out.append(default)
        elif value is None:
            issues.append((f"environment variable {name} is not set", f"export {name}, or write ${{{name}:-default}}"))
        else:
            out.append(value)
            used.append(name)
    return "".join(out), issues, used


def interpolate(data: Any, environ: Mapping[str, str], loc: Loc = ()) -> Interpolated:
    """Interpolate every string value in nested dicts and lists; keys are left alone."""
    result = Interpolated(value=None)
    result.value = _walk(data, environ, loc, result)
    return result


def _walk(node: Any, environ: Mapping[str, str], loc: Loc, result: Interpolated) -> Any:
    if isinstance(node, str):
        if "$" not in node:
            return node
        text, issues, used = interpolate_string(node, environ)
        for message, hint in issues:
            result.problems.append((loc, message, hint))
        if issues:
            result.failed.add(loc)
        if used:
            result.variables[loc] = tuple(used)
        return text
    if isinstance(node, dict):
        return {key: _walk(value, environ, (*loc, key), result) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(item, environ, (*loc, index), result) for index, item in enumerate(node)]
    return node
