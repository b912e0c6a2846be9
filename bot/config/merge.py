"""Merging several YAML documents into one, remembering which file each part came from.

Teams split config by concern (services.yaml, playbooks.yaml, ...). Mappings
merge recursively and lists concatenate in file order; setting the same scalar
key in two files is a conflict rather than a silent "last one wins". The
`Provenance` map lets problems found later (at merged paths such as
services[3]) be attributed to the file that actually contains them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.config.problems import ConfigProblem, Loc, format_path

__all__ = ["Merged", "Provenance", "merge_documents"]


@dataclass
class Provenance:
    """Which file each merged key or list item came from (longest recorded prefix wins)."""

    origins: dict[Loc, str | None] = field(default_factory=dict)

    def record(self, loc: Loc, file: str) -> None:
        self.origins[loc] = file

    def file_of(self, loc: Loc) -> str | None:
        """The file a key path lives in; for the root, the only file, or None if there are several."""
        for end in range(len(loc), -1, -1):
            prefix = loc[:end]
            if prefix in self.origins:
                return self.origins[prefix]
        return None


@dataclass
class Merged:
    """The merged document, where its parts came from, and any conflicts."""

    data: dict[str, Any]
    provenance: Provenance
    problems: list[ConfigProblem]


def merge_documents(documents: list[tuple[str, dict[str, Any]]]) -> Merged:
    """Merge (file name, top-level mapping) pairs, in order."""
    provenance = Provenance()
    files = {name for name, _ in documents}
    provenance.origins[()] = next(iter(files)) if len(files) == 1 else None
    merged: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for file, document in documents:
        _merge_into(merged, document, file, (), provenance, problems)
    return Merged(merged, provenance, problems)


def _merge_into(
    target: dict[str, Any],
    source: dict[str, Any],
    file: str,
    loc: Loc,
    provenance: Provenance,
    problems: list[ConfigProblem],
) -> None:
    for key, value in source.items():
        here: Loc = (*loc, key)
        if key not in target:
            target[key] = value
            provenance.record(here, file)
            continue
        existing = target[key]
        if isinstance(existing, dict) and isinstance(value, dict):
            _merge_into(existing, value, file, here, provenance, problems)
        elif isinstance(existing, list) and isinstance(value, list):
            for offset in range(len(value)):
                provenance.record((*here, len(existing) + offset), file)
            existing.extend(value)
        else:
            other = provenance.file_of(here)
            path = format_path(here)
            problems.append(
                ConfigProblem(
                    file=file,
                    path=path,
                    message=f"'{path}' is set in both {other} and {file}",
                    hint="set it in one file only (only mappings merge and lists concatenate across files)",
                )
            )
