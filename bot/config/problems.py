"""How configuration mistakes are reported: ConfigProblem, ConfigInvalid and key paths.

Every stage of loading (reading YAML, interpolation, merging, schema and
cross-field validation) describes what is wrong as a ConfigProblem, so that
`guardrail check-config` can print all of them at once with the file and key
path to fix, instead of a traceback for the first one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic_core import PydanticCustomError

__all__ = ["ConfigInvalid", "ConfigProblem", "Loc", "custom_error", "format_path", "suggest"]

Loc = tuple[str | int, ...]
"""A key path as a tuple: ("services", 1, "sql", "url")."""

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration, with where it is and how to fix it."""

    file: str | None
    """The file the problem is in, as given; None when it concerns the directory as a whole."""
    path: str
    """Key path such as "services[1].sql.url"; "" for whole-file problems."""
    message: str
    """What is wrong. Never contains the value of an environment variable."""
    hint: str | None = None
    """How to fix it, when there is something useful to say."""

    def __str__(self) -> str:
        parts = [p for p in (self.file, self.path) if p]
        text = ": ".join([*parts, self.message])
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ConfigInvalid(Exception):
    """The configuration could not be loaded; `problems` lists everything found, not just the first."""

    problems: list[ConfigProblem]

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def format_path(loc: Iterable[str | int]) -> str:
    """Render a key path tuple as "playbooks[0].steps[2].after[0]" (odd keys as ["X-Token"])."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def custom_error(message: str, hint: str | None = None) -> PydanticCustomError:
    """A pydantic error carrying our own message and hint, unwrapped again by the loader."""
    return PydanticCustomError("guardrail", "{message}", {"message": message, "hint": hint})


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """'did you mean ...?' for a likely typo, or None when nothing is close."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close and len(word) >= 3:  # abbreviations such as "prod" for "production"
        close = [c for c in options if c.startswith(word)][:1]
    return f"did you mean '{close[0]}'?" if close else None
