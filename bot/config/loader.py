"""load_config: read a directory of YAML files into a validated GuardrailConfig.

Pipeline: read and parse each *.yaml / *.yml file (sorted by name) -> merge
(tracking which file each part came from) -> interpolate ${VAR} placeholders ->
cross-field checks on the raw data -> pydantic validation. Every stage collects
problems instead of stopping, and the loader raises one ConfigInvalid with all
of them, so a single `guardrail check-config` run shows everything to fix.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.config import crossfield
from bot.config.errors import problems_from_validation_error
from bot.config.interpolation import interpolate
from bot.config.merge import merge_documents
from bot.config.models import SKIP_CROSS_CHECKS, GuardrailConfig
from bot.config.problems import ConfigInvalid, ConfigProblem, format_path

__all__ = ["LoadedConfig", "config_files", "config_sha256", "load_config"]

_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from and a fingerprint of its effective content."""

    config: GuardrailConfig
    files: tuple[Path, ...]
    sha256: str
    """Hex sha256 of the canonical JSON of the config: changes whenever the effective config changes."""


def config_sha256(config: GuardrailConfig) -> str:
    """Fingerprint of the effective config (after defaults and interpolation)."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def config_files(directory: Path) -> list[Path]:
    """The *.yaml and *.yml files directly in `directory`, sorted by name."""
    return sorted(
        (p for p in directory.iterdir() if p.suffix.lower() in _SUFFIXES and p.is_file()),
        key=lambda p: p.name,
    )


def load_config(
    directory: Path, environ: Mapping[str, str] | None = None, *, skip: Collection[str] = ()
) -> LoadedConfig:
    """Load, merge, interpolate and validate every YAML file in `directory`.

    `environ` (default: os.environ) supplies ${VAR} values. Raises ConfigInvalid
    listing every problem found. Top-level sections named in `skip` are left out
    (their defaults apply) before interpolation and validation: a read-only command
    that never runs a check or a step need not have the playbooks' ${VAR}s set.
    """
    environ = os.environ if environ is None else environ
    directory = Path(directory)
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigInvalid([ConfigProblem(None, "", f"config directory {directory} {what}", _DIRECTORY_HINT)])
    files = config_files(directory)
    if not files:
        raise ConfigInvalid([ConfigProblem(None, "", f"no *.yaml files in {directory}", _DIRECTORY_HINT)])

    problems: list[ConfigProblem] = []
    documents: list[tuple[str, dict[str, Any]]] = []
    for path in files:
        document, problem = _read(path)
        if problem:
            problems.append(problem)
        else:
            documents.append((str(path), document))
    all_parsed = not problems

    merged = merge_documents(documents)
    problems.extend(merged.problems)
    file_of = merged.provenance.file_of

    data = {key: value for key, value in merged.data.items() if key not in skip}
    result = interpolate(data, environ)
    problems.extend(ConfigProblem(file_of(loc), format_path(loc), m, h) for loc, m, h in result.problems)

    config: GuardrailConfig | None = None
    if all_parsed:  # with a file missing, "required key" errors would only mislead
        data = result.value
        problems.extend(ConfigProblem(file_of(loc), format_path(loc), m, h) for loc, m, h in crossfield.check(data))
        try:
            config = GuardrailConfig.model_validate(data, context={SKIP_CROSS_CHECKS: True})
        except ValidationError as exc:
            problems.extend(
                problems_from_validation_error(
                    exc, GuardrailConfig, file_of, skip=result.failed, variables=result.variables
                )
            )

    problems = list(dict.fromkeys(problems))  # model and cross-field checks share some rules
    if problems or config is None:
        raise ConfigInvalid(problems)
    return LoadedConfig(config=config, files=tuple(files), sha256=config_sha256(config))


_DIRECTORY_HINT = "point GUARDRAIL_CONFIG at a directory of *.yaml files, e.g. playbooks/"


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key '{key}'",
                    key_node.start_mark,
                )
            seen.add(key if isinstance(key, str) else id(key_node))
        return super().construct_mapping(node, deep=deep)


def _read(path: Path) -> tuple[dict[str, Any], ConfigProblem | None]:
    """Parse one file into its top-level mapping, or describe why that is not possible."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, ConfigProblem(name, "", f"cannot read file: {exc}", None)
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        return {}, ConfigProblem(name, "", f"{where}{what}", "check indentation, quoting and colons around there")
    except yaml.YAMLError as exc:
        return {}, ConfigProblem(name, "", f"invalid YAML: {exc}", None)
    if document is None:
        return {}, None  # an empty (or all-comment) file contributes nothing
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else "a single value"
        return {}, ConfigProblem(name, "", f"the top level must be a mapping of keys, not {kind}", None)
    bad_keys = [k for k in document if not isinstance(k, str)]
    if bad_keys:
        return {}, ConfigProblem(name, "", f"top-level key {bad_keys[0]!r} is not text", None)
    return document, None
