"""Rules that span several parts of the configuration.

These run on the raw, merged (and interpolated) data rather than on validated
models, so that the loader can report them together with per-field problems:
a duplicate step id must show up even when another step has a typo in a key.
Every access is defensive; anything malformed here is the per-field pass's to
report. GuardrailConfig runs the same checks on itself when built directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.config.fields import exactly_one_problem, service_kind_problem
from bot.config.playbooks import ACTION_KINDS, HEROKU_KINDS, KUBERNETES_KINDS
from bot.config.problems import Loc, suggest

__all__ = ["Finding", "check"]

Finding = tuple[Loc, str, str | None]
"""(key path, message, hint)."""

_CRON_HINT = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 16 * * FRI'"


def _items(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, item) for the mapping items of a list; anything else yields nothing."""
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _strings(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def check(data: Mapping[str, Any]) -> list[Finding]:
    """All cross-field problems in `data` (the merged config as plain dicts and lists)."""
    services = _items(data.get("services"))
    service_names = {s["name"] for _, s in services if isinstance(s.get("name"), str)}
    return [
        *_check_services(services),
        *_check_freeze(data),
        *_check_playbooks(_items(data.get("playbooks")), service_names),
        *_check_changes(data, service_names),
    ]


def _duplicates(items: Sequence[tuple[int, str]], base: Loc, what: str, where: str) -> list[Finding]:
    """Report every repeat of a name at `(*base, index)`; `where` names the list in the hint."""
    seen: dict[str, int] = {}
    found: list[Finding] = []
    for index, name in items:
        if name in seen:
            found.append(
                (
                    (*base, index),
                    f"duplicate {what} '{name}'",
                    f"{where}[{seen[name]}] already uses it; names must be unique",
                )
            )
        else:
            seen[name] = index
    return found


def _check_services(services: list[tuple[int, Mapping[str, Any]]]) -> list[Finding]:
    found: list[Finding] = []
    names = [(i, s["name"]) for i, s in services if isinstance(s.get("name"), str)]
    for loc, message, hint in _duplicates(names, ("services",), "service name", "services"):
        found.append(((*loc, "name"), message, hint))
    for index, service in services:
        problem = service_kind_problem(service)
        if problem:
            found.append((("services", index), *problem))
    return found


def _check_freeze(data: Mapping[str, Any]) -> list[Finding]:
    freeze = _mapping(data.get("freeze"))
    raw_envs = freeze.get("environments", ["production"])
    environments = [e for _, e in _strings(raw_envs)] if isinstance(raw_envs, list) else None
    try:
        tz = ZoneInfo(str(data.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")  # the bad zone itself is reported by the per-field pass
    found: list[Finding] = []
    for index, window in _items(freeze.get("recurring")):
        base: Loc = ("freeze", "recurring", index)
        if environments is not None:
            for j, env in _strings(window.get("environments")):
                if env not in environments:
                    hint = suggest(env, environments) or f"freeze.environments is [{', '.join(environments)}]"
                    found.append(((*base, "environments", j), f"unknown environment '{env}'", hint))
        cron = window.get("cron")
        if isinstance(cron, str):
            found.extend(_check_cron(cron, tz, (*base, "cron")))
    return found


def _check_cron(expr: str, tz: ZoneInfo, loc: Loc) -> list[Finding]:
    try:
        CronTrigger.from_crontab(expr, timezone=tz)
    except (ValueError, TypeError, KeyError) as exc:
        return [(loc, f"invalid cron expression '{expr}': {exc}", _CRON_HINT)]
    fields = expr.split()
    if re.search(r"\d", fields[4]):
        # APScheduler 3 numbers weekdays from Monday=0, crontab from Sunday=0: "5" would silently
        # mean Saturday. Names are unambiguous, so insist on them.
        return [
            (
                loc,
                f"day of week '{fields[4]}' must use names, not numbers",
                "write MON, TUE, WED, THU, FRI, SAT or SUN (e.g. '0 16 * * FRI'); numbers are ambiguous",
            )
        ]
    return []


def _check_playbooks(playbooks: list[tuple[int, Mapping[str, Any]]], services: set[str]) -> list[Finding]:
    found: list[Finding] = []
    names = [(i, p["name"]) for i, p in playbooks if isinstance(p.get("name"), str)]
    for loc, message, hint in _duplicates(names, ("playbooks",), "playbook name", "playbooks"):
        found.append(((*loc, "name"), message, hint))
    for index, playbook in playbooks:
        found.extend(_check_steps(("playbooks", index), _items(playbook.get("steps")), services))
    return found


def _check_steps(base: Loc, steps: list[tuple[int, Mapping[str, Any]]], services: set[str]) -> list[Finding]:
    found: list[Finding] = []
    ids = [(i, s["id"]) for i, s in steps if isinstance(s.get("id"), str)]
    for loc, message, hint in _duplicates(ids, (*base, "steps"), "step id", "steps"):
        found.append(((*loc, "id"), message, hint))
    index_of: dict[str, int] = {}
    for i, step_id in ids:
        index_of.setdefault(step_id, i)
    graph: dict[str, list[tuple[str, int]]] = {step_id: [] for step_id in index_of}

    for i, step in steps:
        loc = (*base, "steps", i)
        own = step.get("id")
        for j, dep in _strings(step.get("after")):
            if dep == own:
                found.append(((*loc, "after", j), f"step '{dep}' cannot wait for itself", "remove it from after"))
            elif dep not in index_of:
                hint = suggest(dep, index_of) or f"steps in this playbook: {', '.join(index_of) or 'none'}"
                found.append(((*loc, "after", j), f"unknown step '{dep}'", hint))
            elif isinstance(own, str) and index_of.get(own) == i:
                graph[own].append((dep, j))
        for key in ("action", "undo"):
            action = step.get(key)
            if isinstance(action, Mapping):
                found.extend(_check_action((*loc, key), action, services))

    found.extend(_check_cycles(base, graph, index_of))
    return found


def _check_action(loc: Loc, action: Mapping[str, Any], services: set[str]) -> list[Finding]:
    found: list[Finding] = []
    problem = exactly_one_problem(action, ACTION_KINDS, "action")
    if problem:
        found.append((loc, *problem))
    for j, name in _strings(action.get("checks")):
        if name not in services:
            hint = suggest(name, services) or f"services: {', '.join(sorted(services)) or 'none defined'}"
            found.append(((*loc, "checks", j), f"unknown service '{name}'", hint))
    for key, kinds in (("heroku", HEROKU_KINDS), ("kubernetes", KUBERNETES_KINDS)):
        sub = action.get(key)
        if isinstance(sub, Mapping):
            problem = exactly_one_problem(sub, kinds, f"{key} action")
            if problem:
                found.append(((*loc, key), *problem))
    return found


def _check_cycles(base: Loc, graph: dict[str, list[tuple[str, int]]], index_of: dict[str, int]) -> list[Finding]:
    """Depth-first search for back edges in the `after` graph; each back edge closes one cycle."""
    found: list[Finding] = []
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        stack.append(node)
        for dep, j in graph[node]:
            if dep in stack:
                cycle = [*stack[stack.index(dep) :], dep]
                found.append(
                    (
                        (*base, "steps", index_of[node], "after", j),
                        f"steps wait for each other in a cycle: {' → '.join(cycle)}",
                        "each step waits for the next one in the list; remove one of these 'after' entries",
                    )
                )
            elif dep not in done:
                visit(dep)
        stack.pop()
        done.add(node)

    for node in graph:
        if node not in done:
            visit(node)
    return found


def _check_changes(data: Mapping[str, Any], services: set[str]) -> list[Finding]:
    """`changes:` names services, environments and a rollback step defined elsewhere."""
    changes = _mapping(data.get("changes"))
    if not changes:
        return []
    found: list[Finding] = []
    known = f"services: {', '.join(sorted(services)) or 'none defined'}"
    for name, affected in _mapping(changes.get("services")).items():
        for j, service in _strings(affected):
            if service not in services:
                found.append(
                    (
                        ("changes", "services", name, j),
                        f"unknown service '{service}'",
                        suggest(service, services) or known,
                    )
                )
    raw_envs = _mapping(data.get("freeze")).get("environments", ["production"])
    environments = [e for _, e in _strings(raw_envs)]
    mapped = _mapping(changes.get("services"))
    for environment, sources in _mapping(changes.get("sources")).items():
        if isinstance(environment, str) and environments and environment not in environments:
            found.append(
                (
                    ("changes", "sources", environment),
                    f"unknown environment '{environment}'",
                    suggest(environment, environments) or f"freeze.environments is [{', '.join(environments)}]",
                )
            )
        for index, source in _items(sources):
            source_name: Any = source.get("service")
            if not isinstance(source_name, str):
                source_name = _mapping(source.get("heroku")).get("app") or _mapping(source.get("kubernetes")).get(
                    "deployment"
                )
            if isinstance(source_name, str) and source_name not in services and source_name not in mapped:
                found.append(
                    (
                        ("changes", "sources", environment, index),
                        f"changes to '{source_name}' affect no configured service",
                        f"set service: to one of the {known}, or map it under changes.services",
                    )
                )
    found.extend(_check_rollback_ref(changes, _items(data.get("playbooks"))))
    return found


def _check_rollback_ref(changes: Mapping[str, Any], playbooks: list[tuple[int, Mapping[str, Any]]]) -> list[Finding]:
    ref = _mapping(changes.get("rollback"))
    steps = {(p.get("name"), s.get("id")): s for _, p in playbooks for _, s in _items(p.get("steps"))}
    if ref:
        wanted = (ref.get("playbook"), ref.get("step"))
        step = steps.get(wanted)
        if step is None:
            names = [f"{p}/{s}" for p, s in steps if isinstance(p, str) and isinstance(s, str)]
            return [
                (
                    ("changes", "rollback"),
                    f"no step '{wanted[1]}' in playbook '{wanted[0]}'",
                    suggest(f"{wanted[0]}/{wanted[1]}", names) or f"steps: {', '.join(names) or 'none'}",
                )
            ]
        if step.get("rollback") is not True:
            return [
                (
                    ("changes", "rollback"),
                    f"step '{wanted[1]}' is not marked rollback: true",
                    "mark the step rollback: true (the rollback check then proves it daily)",
                )
            ]
        return []
    if changes.get("auto_rollback") is True and not any(s.get("rollback") is True for s in steps.values()):
        return [
            (
                ("changes", "auto_rollback"),
                "auto_rollback needs a playbook step marked rollback: true",
                "add rollback: true to the step that rolls production back, or turn auto_rollback off",
            )
        ]
    return []
