"""`changes:` configuration: every mistake reported with its path and a way to fix it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from bot.config import ConfigInvalid, ConfigProblem, load_config

BASE = {
    "channels": {"deploys": "C0DEPLOYS"},
    "services": [{"name": "api", "http": {"url": "https://api.example.com/healthz"}}],
    "playbooks": [
        {
            "name": "prod",
            "steps": [
                {
                    "id": "rollback",
                    "label": "Roll back",
                    "changes_production": True,
                    "rollback": True,
                    "action": {"http": {"url": "https://deploy.example.com/rollback"}},
                },
                {"id": "verify", "label": "Verify", "action": {"checks": ["api"]}},
            ],
        }
    ],
}


def problems(tmp_path: Path, extra: str) -> list[ConfigProblem]:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "b.yaml").write_text(textwrap.dedent(extra))
    try:
        load_config(tmp_path, {})
    except ConfigInvalid as exc:
        return exc.problems
    return []


def test_a_full_changes_section_is_valid_and_names_the_rollback_step(tmp_path: Path) -> None:
    assert (
        problems(
            tmp_path,
            """
        changes:
          watch_for: 10m
          watch_every: 10s
          watch_threshold: 3
          lookback: 12h
          auto_rollback: true
          services: {api: [api]}
          sources:
            production:
              - heroku: {app: acme-prod}
                service: api
              - kubernetes: {namespace: prod, deployment: api}
        """,
        )
        == []
    )
    config = load_config(tmp_path, {}).config
    found = config.rollback_step()
    assert found is not None and (found[0].name, found[1].id) == ("prod", "rollback")
    assert config.changes.affected("web") == ["web"]


@pytest.mark.parametrize(
    ("extra", "path", "message"),
    [
        (
            "changes: {sources: {production: [{service: api}]}}",
            "changes.sources.production[0]",
            "change source must have exactly one of heroku or kubernetes (found none)",
        ),
        (
            "changes: {sources: {production: [{heroku: {app: a}, kubernetes: {namespace: p, deployment: d}, "
            "service: api}]}}",
            "changes.sources.production[0]",
            "change source must have exactly one of heroku or kubernetes (found heroku and kubernetes)",
        ),
        (
            "changes: {sources: {prodution: [{heroku: {app: a}, service: api}]}}",
            "changes.sources.prodution",
            "unknown environment 'prodution'",
        ),
        (
            "changes: {sources: {production: [{heroku: {app: acme-prod}}]}}",
            "changes.sources.production[0]",
            "changes to 'acme-prod' affect no configured service",
        ),
        ("changes: {services: {api: [api, wokers]}}", "changes.services.api[1]", "unknown service 'wokers'"),
        (
            "changes: {rollback: {playbook: prod, step: verify}}",
            "changes.rollback",
            "step 'verify' is not marked rollback: true",
        ),
        (
            "changes: {rollback: {playbook: prod, step: rolback}}",
            "changes.rollback",
            "no step 'rolback' in playbook 'prod'",
        ),
        ("changes: {watch_every: 10m}", "changes.watch_every", "must be between 1s and 5m"),
        (
            "changes: {watch_for: 1m, watch_every: 30s, watch_threshold: 2}",
            "changes",
            "watch_threshold times watch_every must be shorter than watch_for",
        ),
        ("changes: {watch_for: 15m, watch_every: 15s, auto_rollback: yes please}", "changes.auto_rollback", None),
        ("changes: {watch_for: 15m, whatch_every: 15s}", "changes.whatch_every", None),
    ],
)
def test_bad_changes_settings_get_a_clear_message(tmp_path: Path, extra: str, path: str, message: str | None) -> None:
    found = problems(tmp_path, extra)
    assert [p.path for p in found] == [path], "\n".join(map(str, found))
    if message is not None:
        assert found[0].message == message
    assert "Traceback" not in str(found[0])


def test_auto_rollback_without_a_rollback_step_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({**BASE, "playbooks": []}))
    (tmp_path / "b.yaml").write_text("changes: {auto_rollback: true}\n")
    with pytest.raises(ConfigInvalid) as raised:
        load_config(tmp_path, {})
    assert [(p.path, p.message) for p in raised.value.problems] == [
        ("changes.auto_rollback", "auto_rollback needs a playbook step marked rollback: true")
    ]
