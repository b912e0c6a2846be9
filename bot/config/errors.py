"""Turning pydantic's ValidationError into readable ConfigProblems.

Pydantic's messages are written for programmers ("Input should be a valid
integer, unable to parse string as an integer"); people editing YAML need
"expected a whole number", and "unknown key 'tiemout' (did you mean 'timeout'?)".
Input values are never echoed when they came from the environment.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.config.problems import ConfigProblem, Loc, format_path, suggest

__all__ = ["problems_from_validation_error"]


def _expected(text: str) -> Callable[[ErrorDetails], str]:
    return lambda _: text


def _number(value: Any) -> Any:
    """0.0 -> 0, so limits read the way they were written."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _ctx(template: str) -> Callable[[ErrorDetails], str]:
    return lambda error: template.format(**{k: _number(v) for k, v in error.get("ctx", {}).items()})


def _too_short(error: ErrorDetails) -> str:
    minimum = error.get("ctx", {}).get("min_length", 1)
    return "must not be empty" if minimum == 1 else f"must have at least {minimum} items"


def _string_too_short(error: ErrorDetails) -> str:
    minimum = error.get("ctx", {}).get("min_length", 1)
    return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters"


_MESSAGES: dict[str, Callable[[ErrorDetails], str]] = {
    "missing": _expected("required key missing"),
    "string_type": _expected("expected text"),
    "int_type": _expected("expected a whole number"),
    "int_parsing": _expected("expected a whole number"),
    "int_from_float": _expected("expected a whole number"),
    "float_type": _expected("expected a number"),
    "float_parsing": _expected("expected a number"),
    "bool_type": _expected("expected true or false"),
    "bool_parsing": _expected("expected true or false"),
    "list_type": _expected("expected a list"),
    "dict_type": _expected("expected a mapping (key: value pairs)"),
    "model_type": _expected("expected a mapping (key: value pairs)"),
    "model_attributes_type": _expected("expected a mapping (key: value pairs)"),
    "greater_than": _ctx("must be greater than {gt}"),
    "greater_than_equal": _ctx("must be at least {ge}"),
    "less_than": _ctx("must be less than {lt}"),
    "less_than_equal": _ctx("must be at most {le}"),
    "string_too_short": _string_too_short,
    "string_too_long": _ctx("must be at most {max_length} characters"),
    "too_short": _too_short,
    "too_long": _ctx("must have at most {max_length} items"),
    "enum": _ctx("must be one of {expected}"),
    "literal_error": _ctx("must be one of {expected}"),
}


def problems_from_validation_error(
    exc: ValidationError,
    root: type[BaseModel],
    file_of: Callable[[Loc], str | None],
    skip: Iterable[Loc] = (),
    variables: Mapping[Loc, tuple[str, ...]] | None = None,
) -> list[ConfigProblem]:
    """One ConfigProblem per pydantic error, except errors at or below a path in `skip`.

    `variables` maps paths whose value came from the environment to the variable
    names used; the input value is redacted from messages at those paths.
    """
    skipped = tuple(skip)
    variables = variables or {}
    problems: list[ConfigProblem] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        if any(loc[: len(s)] == s for s in skipped):
            continue
        message, hint = _describe(error, root, loc)
        names = variables.get(loc)
        raw = error.get("input")
        if names and isinstance(raw, str) and raw:
            message = message.replace(raw, "<value of " + ", ".join(f"${n}" for n in names) + ">")
        problems.append(ConfigProblem(file=file_of(loc), path=format_path(loc), message=message, hint=hint))
    return problems


def _describe(error: ErrorDetails, root: type[BaseModel], loc: Loc) -> tuple[str, str | None]:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "guardrail":
        return str(ctx.get("message", error["msg"])), ctx.get("hint")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        allowed = _keys_at(root, loc[:-1])
        hint = suggest(key, allowed) if allowed else None
        if hint is None and allowed:
            hint = "allowed keys: " + ", ".join(allowed)
        return f"unknown key '{key}'", hint
    if kind == "missing":
        return "required key missing", None
    if kind in _MESSAGES:
        return _MESSAGES[kind](error), None
    if kind == "value_error":
        return error["msg"].removeprefix("Value error, "), None
    return error["msg"].replace("Input should be", "should be"), None


def _keys_at(root: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at `loc` (YAML names, i.e. aliases), found by walking the model types."""
    current: Any = root
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    model = _model_in(current)
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] to the interesting type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _step(annotation: Any, part: str | int) -> Any:
    """The type found one key or index below `annotation`, or None when it cannot be followed."""
    annotation = _unwrap(annotation)
    model = _model_in(annotation)
    if model is not None:
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is list and isinstance(part, int) and args:
        return args[0]
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return args[1]
    return None
