"""Cross-field rules and per-field messages, each reported with the right path."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bot.config import (
    Action,
    ConfigInvalid,
    ConfigProblem,
    GuardrailConfig,
    HttpAction,
    ServiceConfig,
    load_config,
)

BASE: dict[str, Any] = {
    "channels": {"deploys": "C0DEPLOYS"},
    "services": [
        {"name": "api", "http": {"url": "https://api.example.com/healthz"}},
        {"name": "jobs", "rq": {"redis_url": "redis://localhost:6379/0"}},
    ],
}


def step(step_id: str, *, after: list[str] | None = None, checks: list[str] | None = None) -> dict[str, Any]:
    return {
        "id": step_id,
        "label": step_id.title(),
        "after": after or [],
        "action": {"checks": checks or ["api"]},
    }


def load(tmp_path: Path, extra: dict[str, Any] | str) -> list[ConfigProblem]:
    """Load BASE plus `extra` (merged as a second file); return the problems (none expected → [])."""
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(BASE))
    text = extra if isinstance(extra, str) else yaml.safe_dump(extra)
    (tmp_path / "b.yaml").write_text(textwrap.dedent(text))
    try:
        load_config(tmp_path, {})
    except ConfigInvalid as exc:
        return exc.problems
    return []


def only(problems: list[ConfigProblem]) -> ConfigProblem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_base_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("a"), step("b", after=["a"])]}]}) == []


def test_duplicate_service_names(tmp_path: Path) -> None:
    problem = only(load(tmp_path, {"services": [{"name": "api", "tcp": {"host": "h", "port": 1}}]}))
    assert (problem.file, problem.path) == (str(tmp_path / "b.yaml"), "services[2].name")
    assert problem.message == "duplicate service name 'api'"
    assert problem.hint and "services[0]" in problem.hint


def test_duplicate_playbook_names(tmp_path: Path) -> None:
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("a")]}] * 2}))
    assert problem.path == "playbooks[1].name" and problem.message == "duplicate playbook name 'p'"


def test_duplicate_step_ids(tmp_path: Path) -> None:
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("a"), step("b"), step("a")]}]}))
    assert problem.path == "playbooks[0].steps[2].id" and problem.message == "duplicate step id 'a'"


def test_checks_naming_an_unknown_service(tmp_path: Path) -> None:
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("a", checks=["api", "jbos"])]}]}))
    assert problem.path == "playbooks[0].steps[0].action.checks[1]"
    assert problem.message == "unknown service 'jbos'" and problem.hint == "did you mean 'jobs'?"


def test_unknown_service_in_undo_checks(tmp_path: Path) -> None:
    bad = {**step("a"), "undo": {"checks": ["nope"]}}
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [bad]}]}))
    assert problem.path == "playbooks[0].steps[0].undo.checks[0]"


def test_after_naming_an_unknown_step(tmp_path: Path) -> None:
    problem = only(
        load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("verify"), step("b", after=["verfy"])]}]})
    )
    assert problem.path == "playbooks[0].steps[1].after[0]"
    assert problem.message == "unknown step 'verfy'" and problem.hint == "did you mean 'verify'?"


def test_after_naming_a_step_of_another_playbook(tmp_path: Path) -> None:
    playbooks = [{"name": "p", "steps": [step("a")]}, {"name": "q", "steps": [step("b", after=["a"])]}]
    problem = only(load(tmp_path, {"playbooks": playbooks}))
    assert problem.path == "playbooks[1].steps[0].after[0]" and problem.message == "unknown step 'a'"


def test_after_naming_itself(tmp_path: Path) -> None:
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [step("a", after=["a"])]}]}))
    assert problem.path == "playbooks[0].steps[0].after[0]" and "cannot wait for itself" in problem.message


def test_after_cycle(tmp_path: Path) -> None:
    steps = [step("a", after=["c"]), step("b", after=["a"]), step("c", after=["b"]), step("d", after=["a"])]
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": steps}]}))
    assert problem.path.startswith("playbooks[0].steps[")
    assert problem.path.endswith("].after[0]")
    assert "cycle" in problem.message
    for name in "abc":
        assert name in problem.message


def test_recurring_environment_not_in_freeze_environments(tmp_path: Path) -> None:
    freeze = {
        "environments": ["production", "staging"],
        "recurring": [{"name": "W", "cron": "0 16 * * FRI", "duration": "65h", "environments": ["prod"]}],
    }
    problem = only(load(tmp_path, {"freeze": freeze}))
    assert problem.path == "freeze.recurring[0].environments[0]"
    assert problem.message == "unknown environment 'prod'" and problem.hint == "did you mean 'production'?"


def test_recurring_environment_checked_against_the_default_environments(tmp_path: Path) -> None:
    freeze = {"recurring": [{"name": "W", "cron": "0 16 * * FRI", "duration": "1h", "environments": ["staging"]}]}
    problem = only(load(tmp_path, {"freeze": freeze}))
    assert problem.message == "unknown environment 'staging'"


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("0 16 * *", "Wrong number of fields; got 4, expected 5"),
        ("0 25 * * *", "higher than the maximum value (23)"),
        ("0 16 * * FRY", "FRY"),
    ],
)
def test_cron_that_does_not_parse(tmp_path: Path, cron: str, said: str) -> None:
    freeze = {"recurring": [{"name": "W", "cron": cron, "duration": "1h"}]}
    problem = only(load(tmp_path, {"timezone": "Europe/Berlin", "freeze": freeze}))
    assert problem.path == "freeze.recurring[0].cron"
    assert problem.message.startswith(f"invalid cron expression '{cron}'") and said in problem.message


def test_numeric_weekday_is_refused_because_apscheduler_counts_from_monday(tmp_path: Path) -> None:
    freeze = {"recurring": [{"name": "W", "cron": "0 16 * * 5", "duration": "1h"}]}
    problem = only(load(tmp_path, {"freeze": freeze}))
    assert problem.path == "freeze.recurring[0].cron" and "names" in problem.message


@pytest.mark.parametrize(
    ("service", "found"),
    [
        ({"name": "x"}, "found none"),
        (
            {"name": "x", "http": {"url": "https://e.com"}, "tcp": {"host": "h", "port": 1}},
            "found http and tcp",
        ),
    ],
)
def test_service_needs_exactly_one_check(tmp_path: Path, service: dict[str, Any], found: str) -> None:
    problem = only(load(tmp_path, {"services": [service]}))
    assert problem.path == "services[2]"
    assert problem.message.startswith("service 'x' must have exactly one of http, tcp, sql, redis or rq")
    assert found in problem.message


def test_action_needs_exactly_one_kind(tmp_path: Path) -> None:
    bad = {"id": "a", "label": "A", "action": {"checks": ["api"], "heroku": {"rollback": {"app": "x"}}}}
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [bad]}]}))
    assert problem.path == "playbooks[0].steps[0].action" and "found checks and heroku" in problem.message


def test_heroku_and_kubernetes_need_exactly_one_operation(tmp_path: Path) -> None:
    steps = [
        {"id": "a", "label": "A", "action": {"heroku": {}}},
        {"id": "b", "label": "B", "action": {"kubernetes": {"context": "c"}}},
    ]
    found = load(tmp_path, {"playbooks": [{"name": "p", "steps": steps}]})
    assert [p.path for p in found] == [
        "playbooks[0].steps[0].action.heroku",
        "playbooks[0].steps[1].action.kubernetes",
    ]


def test_unknown_key_suggestions_follow_the_model(tmp_path: Path) -> None:
    steps = [{"id": "a", "label": "A", "action": {"http": {"url": "https://e.com", "jsn": {}}}}]
    found = load(tmp_path, {"playbooks": [{"name": "p", "steps": steps}], "helth": {}})
    by_path = {p.path: p for p in found}
    assert by_path["playbooks[0].steps[0].action.http.jsn"].hint == "did you mean 'json'?"
    assert by_path["helth"].hint == "did you mean 'health'?"
    assert by_path["helth"].message == "unknown key 'helth'"


def test_readable_per_field_messages(tmp_path: Path) -> None:
    text = """
    timezone: Europe/Berln
    access: {responders: ["@carol"]}
    health: {cache_ttl: 10}
    services:
      - {name: Bad Name, tcp: {host: h, port: "eighty"}}
    playbooks:
      - name: p
        steps:
          - {id: a, label: "%s", action: {rq_replay: {redis_url: "http://x", per_second: 0}}}
    """ % ("x" * 76)
    by_path = {p.path: p for p in load(tmp_path, text)}
    assert by_path["timezone"].message == "unknown time zone 'Europe/Berln'"
    assert by_path["access.responders[0]"].message == "'@carol' is not a Slack user id or user-group id"
    assert by_path["health.cache_ttl"].message == "'10' is not a duration: a bare number has no unit"
    assert by_path["health.cache_ttl"].hint == "add a unit, e.g. 10s or 10m"
    assert by_path["services[2].name"].message == "'Bad Name' is not a valid name"
    assert by_path["services[2].tcp.port"].message == "expected a whole number"
    assert by_path["playbooks[0].steps[0].label"].message == "must be at most 75 characters"
    assert by_path["playbooks[0].steps[0].action.rq_replay.redis_url"].message == "must be a redis:// or rediss:// URL"
    assert by_path["playbooks[0].steps[0].action.rq_replay.per_second"].message == "must be greater than 0"
    assert len(by_path) == 8, sorted(by_path)


def test_required_keys_missing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("services: [{http: {url: 'https://e.com'}}]\n")
    with pytest.raises(ConfigInvalid) as info:
        load_config(tmp_path, {})
    assert {(p.path, p.message) for p in info.value.problems} == {
        ("channels", "required key missing"),
        ("services[0].name", "required key missing"),
    }


def test_models_are_frozen_and_strict() -> None:
    service = ServiceConfig.model_validate({"name": "api", "tcp": {"host": "h", "port": 1}})
    with pytest.raises(ValidationError):
        service.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        ServiceConfig.model_validate({"name": "api", "tcp": {"host": "h", "port": 1}, "extra": 1})
    action = Action(http=HttpAction.model_validate({"url": "https://e.com", "json": [1]}))
    assert action.kind == "http" and action.http is not None and action.http.json_body == [1]


def test_direct_construction_runs_cross_field_checks() -> None:
    data = {**BASE, "playbooks": [{"name": "p", "steps": [step("a", checks=["nope"])]}]}
    with pytest.raises(ValidationError, match="unknown service 'nope'"):
        GuardrailConfig.model_validate(data)


def rollback_step(**fields: Any) -> dict[str, Any]:
    return {
        "id": "back",
        "label": "Back",
        "rollback": True,
        "changes_production": True,
        "action": {"heroku": {"rollback": {"app": "acme"}}},
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "message", "hint"),
    [
        ({"action": {"checks": ["api"]}}, "a checks step cannot be a rollback", "mark rollback: true on a heroku"),
        ({"changes_production": False}, "a rollback changes production", "add changes_production: true"),
    ],
)
def test_a_rollback_step_must_change_production(
    tmp_path: Path, fields: dict[str, Any], message: str, hint: str
) -> None:
    assert load(tmp_path, {"playbooks": [{"name": "p", "steps": [rollback_step()]}]}) == []
    problem = only(load(tmp_path, {"playbooks": [{"name": "p", "steps": [rollback_step(**fields)]}]}))
    assert message in str(problem) and hint in str(problem)
    assert "playbooks" in str(problem) and "steps" in str(problem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("incidents: {rollback_check_at: 9:00}\n", "a time of day must be quoted"),  # YAML reads 540
        ("incidents: {rollback_check_at: '9am'}\n", "'9am' is not a time of day"),
        ("incidents: {rollback_check_at: '24:00'}\n", "'24:00' is not a time of day"),
    ],
)
def test_rollback_check_at_is_a_quoted_time_of_day(tmp_path: Path, text: str, message: str) -> None:
    problem = only(load(tmp_path, text))
    assert message in str(problem) and "rollback_check_at" in str(problem)
    assert load(tmp_path, "incidents: {rollback_check_at: '07:30'}\n") == []
    assert load(tmp_path, "incidents: {rollback_check_at: null}\n") == []


@pytest.mark.parametrize(
    ("rq", "message"),
    [
        ({"crash_window": "10s"}, "must be between 30s and 1h"),
        ({"max_failed_per_minute": -1}, "must be greater than 0"),
        ({"max_worker_starts": 0}, "must be at least 1"),
    ],
)
def test_rq_storm_limits_name_the_field(tmp_path: Path, rq: dict[str, Any], message: str) -> None:
    (key,) = rq
    services = [{"name": "jobs2", "rq": {"redis_url": "redis://localhost:6379/0", **rq}}]
    problem = only(load(tmp_path, {"services": services}))
    assert message in str(problem) and key in str(problem)
