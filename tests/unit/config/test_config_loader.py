"""load_config end to end: the shipped example, error collection, merging and hashing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import ConfigInvalid, ConfigProblem, LoadedConfig, Severity, load_config
from tests.support.paths import ROOT

EXAMPLE_DIR = ROOT / "playbooks"
MINIMAL = "channels: {deploys: C0DEPLOYS}\n"
WriteYaml = Callable[[str, str], Path]


def problems(directory: Path, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigInvalid) as info:
        load_config(directory, environ or {})
    return info.value.problems


def test_shipped_example_loads_with_env_example(example_env: dict[str, str]) -> None:
    loaded = load_config(EXAMPLE_DIR, example_env)
    config = loaded.config
    assert loaded.files == (EXAMPLE_DIR / "guardrail.yaml",)
    assert len(loaded.sha256) == 64
    assert config.timezone == "Europe/Berlin" and str(config.tz) == "Europe/Berlin"
    assert config.channels.deploys == "C0DEPLOYS" and config.channels.alerts == "C0ALERTS"
    assert config.access.responders == ["S0SRE", "U0CAROL"]
    assert [s.name for s in config.services] == ["api", "database", "jobs"]
    assert [s.kind for s in config.services] == ["http", "sql", "rq"]
    api = config.service("api")
    assert api is not None and api.http is not None
    assert api.http.url == "http://127.0.0.1:8000/healthz"
    assert api.slow_after == timedelta(milliseconds=500)
    database = config.service("database")
    assert database is not None and database.sql is not None
    assert database.sql.url == "postgres://postgres@127.0.0.1:5432/test"
    assert config.freeze.default_environment == "production"
    assert config.freeze.reminders == [timedelta(hours=1), timedelta(minutes=10)]
    assert config.freeze.recurring[0].duration == timedelta(hours=65)
    playbook = config.playbook(None)
    assert playbook is not None and playbook is config.playbook("production-incident")
    assert [s.action.kind for s in playbook.steps] == ["http", "heroku", "kubernetes", "checks", "rq_replay"]
    rollback = playbook.steps[0].action.http
    assert rollback is not None and rollback.url == "https://deploy.example.com/rollback"
    assert rollback.json_body == {"service": "api"} and rollback.method == "POST"
    assert playbook.steps[4].after == ["verify"]
    assert config.playbook("nope") is None and config.service("nope") is None
    assert config.health.cache_ttl == timedelta(seconds=10)
    assert config.incidents.channel_prefix == "inc"


def test_defaults_apply_to_a_minimal_config(write_yaml: WriteYaml) -> None:
    path = write_yaml("a.yaml", MINIMAL)
    config = load_config(path.parent, {}).config
    assert config.timezone == "UTC"
    assert config.freeze.environments == ["production"]
    assert config.freeze.max_duration == timedelta(days=7)
    assert config.freeze.on_incident == []
    assert config.services == [] and config.playbooks == [] and config.playbook() is None


def test_broken_copy_reports_all_four_problems(example_copy: Path, example_env: dict[str, str]) -> None:
    path = example_copy / "guardrail.yaml"
    source = path.read_text()
    source = source.replace("id: verify", "id: rollback", 1)
    source = source.replace("timeout: 2s", "timeout: 5x", 1)
    source = source.replace("slow_after: 500ms", "slow_after: 500ms\n    tiemout: 1s", 1)
    path.write_text(source)
    env = {k: v for k, v in example_env.items() if k != "APP_DATABASE_URL"}

    found = problems(example_copy, env)
    file = str(path)
    by_path = {p.path: p for p in found}
    assert all(p.file == file for p in found), found

    missing = by_path["services[1].sql.url"]
    assert missing.message == "environment variable APP_DATABASE_URL is not set"
    assert missing.hint and "APP_DATABASE_URL" in missing.hint

    duplicate = by_path["playbooks[0].steps[3].id"]
    assert "duplicate step id 'rollback'" in duplicate.message

    duration = by_path["services[0].timeout"]
    assert duration.message.startswith("'5x' is not a duration: use a number followed by ms, s, m, h or d")

    unknown = by_path["services[0].tiemout"]
    assert unknown.message == "unknown key 'tiemout'"
    assert unknown.hint == "did you mean 'timeout'?"

    # the renamed step also breaks `after: [verify]` of the replay step
    assert by_path["playbooks[0].steps[4].after[0]"].message == "unknown step 'verify'"
    assert len(found) == 5, "\n".join(map(str, found))


def test_problem_str_and_exception_str(write_yaml: WriteYaml) -> None:
    problem = ConfigProblem(
        "playbooks/guardrail.yaml", "services[1].sql.url", "environment variable X is not set", "export X"
    )
    assert (
        str(problem)
        == "playbooks/guardrail.yaml: services[1].sql.url: environment variable X is not set (hint: export X)"
    )
    assert str(ConfigProblem(None, "", "no *.yaml files in x", None)) == "no *.yaml files in x"
    write_yaml("a.yaml", "channels: {deploys: nope, alerts: also-nope}\n")
    with pytest.raises(ConfigInvalid) as info:
        load_config(write_yaml("b.yaml", "").parent, {})
    lines = str(info.value).splitlines()
    assert len(lines) == 2 and all("a.yaml: channels." in line for line in lines)


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    [problem] = problems(tmp_path / "nope")
    assert problem.file is None and problem.path == "" and "does not exist" in problem.message
    (tmp_path / "notes.txt").write_text("hi")
    [problem] = problems(tmp_path)
    assert problem.file is None and "no *.yaml files" in problem.message


def test_yaml_syntax_error_has_line_and_column(write_yaml: WriteYaml) -> None:
    path = write_yaml("a.yaml", "channels:\n  deploys: C0DEPLOYS\n  alerts: [C0ALERTS\n")
    [problem] = problems(path.parent)
    assert problem.file == str(path) and problem.path == ""
    assert problem.message.startswith("line ")
    assert ", column " in problem.message


def test_duplicate_key_in_one_file_is_a_syntax_problem(write_yaml: WriteYaml) -> None:
    path = write_yaml("a.yaml", "channels: {deploys: C0DEPLOYS}\ntimezone: UTC\ntimezone: Europe/Berlin\n")
    [problem] = problems(path.parent)
    assert problem.message.startswith("line 3, column 1:") and "duplicate key 'timezone'" in problem.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n"])
def test_top_level_must_be_a_mapping(write_yaml: WriteYaml, text: str) -> None:
    path = write_yaml("a.yaml", text)
    [problem] = problems(path.parent)
    assert problem.file == str(path) and "top level must be a mapping" in problem.message


def test_yml_files_are_loaded_in_name_order_and_other_files_ignored(write_yaml: WriteYaml) -> None:
    write_yaml("b.yml", "services: [{name: two, tcp: {host: h, port: 2}}]\n")
    write_yaml("a.yaml", MINIMAL + "services: [{name: one, tcp: {host: h, port: 1}}]\n")
    path = write_yaml("c.yaml.disabled", "nonsense: [")
    loaded = load_config(path.parent, {})
    assert [p.name for p in loaded.files] == ["a.yaml", "b.yml"]
    assert [s.name for s in loaded.config.services] == ["one", "two"]


def test_merge_two_files(write_yaml: WriteYaml) -> None:
    write_yaml(
        "a.yaml",
        """
        timezone: Europe/Berlin
        channels: {deploys: C0DEPLOYS}
        access: {responders: [U0ALICE]}
        services:
          - {name: api, http: {url: "https://api.example.com/healthz"}}
        freeze:
          environments: [production, staging]
        """,
    )
    path = write_yaml(
        "b.yaml",
        """
        channels: {alerts: C0ALERTS}
        access: {responders: [S0SRE]}
        services:
          - {name: cache, redis: {url: "redis://localhost:6379/0"}}
        freeze:
          on_incident: [sev1]
          recurring:
            - {name: Nightly, cron: "0 22 * * *", duration: 8h, environments: [staging]}
        """,
    )
    config = load_config(path.parent, {}).config
    assert config.channels.deploys == "C0DEPLOYS" and config.channels.alerts == "C0ALERTS"
    assert config.access.responders == ["U0ALICE", "S0SRE"]
    assert [s.name for s in config.services] == ["api", "cache"]
    assert config.freeze.environments == ["production", "staging"]
    assert config.freeze.on_incident == [Severity.sev1]
    assert config.freeze.recurring[0].environments == ["staging"]
    assert config.freeze.window_environments(config.freeze.recurring[0]) == ["staging"]
    default_window = config.freeze.recurring[0].model_copy(update={"environments": None})
    assert config.freeze.window_environments(default_window) == ["production"]


def test_merge_conflict_names_both_files(write_yaml: WriteYaml) -> None:
    a = write_yaml("a.yaml", MINIMAL + "timezone: UTC\n")
    b = write_yaml("b.yaml", "timezone: Europe/Berlin\nchannels: {deploys: C0OTHER}\n")
    found = problems(b.parent)
    assert {p.path for p in found} == {"timezone", "channels.deploys"}
    for problem in found:
        assert problem.file == str(b)
        assert str(a) in problem.message and str(b) in problem.message


def test_errors_in_a_second_file_are_attributed_to_it(write_yaml: WriteYaml) -> None:
    write_yaml("a.yaml", MINIMAL + "services: [{name: one, tcp: {host: h, port: 1}}]\n")
    b = write_yaml(
        "b.yaml",
        """
        services:
          - name: two
            sql: {url: "${DB_URL}"}
          - name: three
            tcp: {host: h, port: 99999}
        """,
    )
    found = problems(b.parent)
    assert [(p.file, p.path) for p in found] == [
        (str(b), "services[1].sql.url"),
        (str(b), "services[2].tcp.port"),
    ]
    assert found[1].message == "must be at most 65535"


def test_interpolation_in_config(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        "a.yaml",
        """
        channels: {deploys: "${DEPLOYS_CHANNEL:-C0DEFAULT}"}
        services:
          - name: db
            sql: {url: "${DB}"}
          - name: web
            http: {url: "https://example.com/health?price=$$5", headers: {X-Token: "${TOKEN}"}}
            tcp: null
        """,
    )
    config = load_config(path.parent, {"DB": "sqlite:///x.db", "TOKEN": "t0k"}).config
    assert config.channels.deploys == "C0DEFAULT"
    web = config.service("web")
    assert web is not None and web.http is not None
    assert web.http.url == "https://example.com/health?price=$5"
    assert web.http.headers == {"X-Token": "t0k"}


def test_secret_values_never_appear_in_problems(write_yaml: WriteYaml) -> None:
    path = write_yaml(
        "a.yaml",
        """
        channels: {deploys: "${CHANNEL}"}
        services:
          - name: db
            sql: {url: "${DB}"}
            timeout: "${TIMEOUT}"
        """,
    )
    secret_env = {"CHANNEL": "hunter2secret", "DB": "ftp://user:hunter2secret@db", "TIMEOUT": "hunter2secret"}
    found = problems(path.parent, secret_env)
    assert {p.path for p in found} == {"channels.deploys", "services[0].sql.url", "services[0].timeout"}
    for problem in found:
        assert "hunter2secret" not in str(problem)
    timeout = next(p for p in found if p.path == "services[0].timeout")
    assert "$TIMEOUT" in timeout.message


def test_hash_is_stable_and_changes_with_the_effective_config(example_copy: Path, example_env: dict[str, str]) -> None:
    first = load_config(example_copy, example_env)
    again = load_config(example_copy, dict(example_env))
    assert isinstance(first, LoadedConfig) and first.sha256 == again.sha256

    changed_env = load_config(example_copy, {**example_env, "REDIS_URL": "redis://other:6379/0"})
    assert changed_env.sha256 != first.sha256

    path = example_copy / "guardrail.yaml"
    path.write_text(path.read_text().replace("max_duration: 7d", "max_duration: 6d"))
    assert load_config(example_copy, example_env).sha256 != first.sha256

    # comments and formatting are not part of the effective config
    path.write_text("# a new comment\n" + path.read_text().replace("max_duration: 6d", "max_duration: 7d"))
    assert load_config(example_copy, example_env).sha256 == first.sha256


def test_skipped_sections_are_left_out_with_their_variables(write_yaml: WriteYaml) -> None:
    """What read-only commands load: the playbooks' ${VAR}s need not be set, the rest still counts."""
    path = write_yaml(
        "a.yaml",
        MINIMAL + 'services: [{name: db, sql: {url: "${APP_DB}"}}]\n'
        'playbooks: [{name: p, steps: [{id: s, label: S, action: {http: {url: "${HOOK}"}}}]}]\n'
        "freeze: {environments: [production, staging]}\n",
    )
    loaded = load_config(path.parent, {}, skip=("services", "playbooks"))
    assert loaded.config.services == [] and loaded.config.playbooks == []
    assert loaded.config.freeze.environments == ["production", "staging"]
    assert {p.message for p in problems(path.parent)} == {
        "environment variable APP_DB is not set",
        "environment variable HOOK is not set",
    }

    write_yaml("b.yaml", 'timezone: "${TZ_NAME}"\n')
    with pytest.raises(ConfigInvalid) as info:
        load_config(path.parent, {}, skip=("services", "playbooks"))
    assert [p.message for p in info.value.problems] == ["environment variable TZ_NAME is not set"]
