"""Writes docs/reference/configuration.md from the pydantic models, so the reference cannot drift.

The environment settings come from `bot.settings.Settings`, the YAML keys from `bot.config.GuardrailConfig`
(and every model under it): names, types, defaults, limits and the fields' `description=`. The page is
committed (readable on GitHub, reviewed as a diff) and `tests/deploy/test_docs.py` fails when it is stale.

    python tools/config_reference.py           # rewrite the page
    python tools/config_reference.py --check   # exit 1 if the committed page is stale (what the test asks)
"""

from __future__ import annotations

import sys
import types
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import fields as config_fields  # noqa: E402
from bot.config import models as config_models  # noqa: E402
from bot.config.durations import Duration, format_duration  # noqa: E402
from bot.settings import Settings  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "configuration.md"

# The constrained string types people write, in words (the validators' own rules, shortened).
NAMED_TYPES: list[tuple[Any, str]] = [
    (Duration, "duration"),
    (config_fields.Slug, "name (up to 40 of `a-z 0-9 - _`)"),
    (config_fields.EnvironmentName, "environment name (`a-z 0-9 - _`)"),
    (config_fields.ChannelId, "Slack channel id (`C…`/`G…`)"),
    (config_fields.SlackPrincipal, "Slack user id (`U…`/`W…`) or user-group id (`S…`)"),
    (config_fields.HttpUrl, "`http://` or `https://` URL"),
    (config_fields.SqlUrl, "`postgres://`, `postgresql://`, `mysql://` or `sqlite:///` URL"),
    (config_fields.RedisUrl, "`redis://` or `rediss://` URL"),
    (config_fields.NonEmptyStr, "text (not empty)"),
    (config_models.ChannelPrefix, "channel prefix (up to 21 of `a-z 0-9 - _`)"),
    (config_models.ClockTime, '`"HH:MM"` (quoted)'),
]

CONSTRAINTS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def _named(annotation: Any, metadata: list[Any]) -> str | None:
    """The word for a constrained alias (Slug, Duration, …) when `annotation` + `metadata` is one."""
    for alias, words in NAMED_TYPES:
        base, *marks = get_args(alias)
        if annotation is base and all(any(m is mark or m == mark for m in metadata) for mark in marks):
            return words
    return None


def type_words(annotation: Any, metadata: list[Any] | None = None) -> str:
    """An annotation as a reader of YAML or an environment variable would describe it."""
    metadata = metadata or []
    if get_origin(annotation) is Annotated:
        base, *marks = get_args(annotation)
        return type_words(base, [*marks, *metadata])
    named = _named(annotation, metadata)
    if named:
        return named
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(type_words(a) for a in kept)
    if origin is list:
        return f"list of {type_words(args[0])}"
    if origin is dict:
        return f"map of {type_words(args[0])} to {type_words(args[1])}"
    if origin is Literal:
        return " · ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " · ".join(f"`{member.value}`" for member in annotation)
    words = {
        str: "text",
        int: "integer",
        float: "number",
        bool: "`true` · `false`",
        timedelta: "duration",
        SecretStr: "secret",
        Path: "path",
    }
    if annotation is Any:
        return "any JSON value"
    return words.get(annotation, getattr(annotation, "__name__", str(annotation)))


def limits(field: FieldInfo) -> str:
    """The field's numeric bounds and length limits, e.g. "≥ 1, ≤ 65535"."""
    unit = "character" if field.annotation is str else "item"
    found = []
    for mark in field.metadata:
        for attribute, sign in CONSTRAINTS:
            if hasattr(mark, attribute):
                found.append(f"{sign} {_scalar(getattr(mark, attribute))}")
        if isinstance(mark, annotated_types.MinLen):
            found.append(f"at least {mark.min_length} {unit}{'s' if mark.min_length != 1 else ''}")
        if isinstance(mark, annotated_types.MaxLen):
            found.append(f"at most {mark.max_length} {unit}s")
    return ", ".join(found)


def default_words(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, BaseModel):
        return "its defaults"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, list):
        return "`[]`" if not value else "`[" + ", ".join(_scalar(v) for v in value) + "]`"
    if isinstance(value, dict) and not value:
        return "`{}`"
    return f"`{_scalar(value)}`"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell(text: str) -> str:
    """Text for a table cell: pipes escaped, and `<…>` outside code spans shown rather than read as HTML."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;").replace(">", "&gt;") for i, part in enumerate(parts))


def settings_section() -> list[str]:
    lines = [
        "## Environment variables",
        "",
        "Read by `bot/settings.py` from the environment, or from `.env` in the working directory (real",
        "environment variables win). An empty value counts as unset. Secrets are never printed, logged",
        "or written to the audit log.",
        "",
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        kind = type_words(field.annotation, list(field.metadata))
        bound = limits(field)
        lines.append(
            f"| `{name.upper()}` | {cell(kind)}{' (' + bound + ')' if bound else ''} | "
            f"{default_words(field)} | {cell(field.description or '')} |"
        )
    return lines


def models_in_order(root: type[BaseModel]) -> dict[type[BaseModel], list[str]]:
    """Every model reachable from `root`, depth-first in field order, with the YAML paths where it is used."""
    found: dict[type[BaseModel], list[str]] = {}

    def walk(annotation: Any, path: str) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            known = annotation in found
            found.setdefault(annotation, []).append(path)
            if not known:
                for name, field in annotation.model_fields.items():
                    key = field.alias or name
                    walk(field.annotation, f"{path}.{key}" if path else key)
            return
        suffix = "[]" if get_origin(annotation) is list else ""
        for arg in get_args(annotation):
            walk(arg, path + suffix)

    walk(root, "")
    return found


def model_section(model: type[BaseModel], paths: list[str]) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    where = ", ".join(f"`{path}`" for path in paths) if paths != [""] else "the top level of the YAML"
    lines = [
        f"### {model.__name__}",
        "",
        f"{doc} Where: {where}.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        key = field.alias or name
        kind = type_words(field.annotation, list(field.metadata))
        bound = limits(field)
        lines.append(
            f"| `{key}` | {cell(kind)}{' (' + bound + ')' if bound else ''} | {default_words(field)} | "
            f"{cell(field.description or '')} |"
        )
    return [*lines, ""]


def render() -> str:
    lines = [
        "<!-- Generated by tools/config_reference.py from bot/settings.py and bot/config/: do not edit by hand.",
        "     After changing a setting or a config model, run `make reference` (tests/deploy/test_docs.py",
        "     fails while this page is stale). -->",
        "",
        "# Configuration reference",
        "",
        "Generated from the code's own models, so it lists exactly what guardrail reads. How the YAML is",
        "loaded, merged and checked, with examples: [Configuration](../configuration.md).",
        "",
        *settings_section(),
        "",
    ]
    lines += [
        "## The YAML configuration",
        "",
        "Every `*.yaml` in `GUARDRAIL_CONFIG`, merged (see [Configuration](../configuration.md)); `${VAR}` and",
        "`${VAR:-default}` are filled in from the environment. Unknown keys are refused. Each section below is",
        "one model in `bot/config/`; *Where* gives its YAML path (`[]`: an item of a list). A *duration* is",
        "written `500ms`, `10s`, `5m`, `2h`, `1d` or `1h30m` (a bare number is refused: it has no unit).",
        "",
    ]
    for model, paths in models_in_order(config_models.GuardrailConfig).items():
        lines += model_section(model, paths)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is stale: run `make reference` and commit it", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
