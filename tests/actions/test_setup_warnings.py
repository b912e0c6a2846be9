"""`guardrail check-config` warns when a playbook's actions lack the credentials they need."""

from __future__ import annotations

from pathlib import Path

from bot.actions import build_action
from bot.actions.environment import action_endpoints, action_secrets, setup_warnings
from bot.config import GuardrailConfig
from bot.settings import Settings
from tests.test_cli import run


def config() -> GuardrailConfig:
    return GuardrailConfig.model_validate({
        "channels": {"deploys": "C0DEPLOYS"},
        "playbooks": [{"name": "prod", "steps": [
            {"id": "stop-worker", "label": "Stop worker", "action": {
                "heroku": {"scale": {"app": "acme", "process": "worker", "quantity": 0}}}},
            {"id": "scale-down", "label": "Scale down", "action": {
                "kubernetes": {"scale": {"namespace": "prod", "deployment": "api", "replicas": 0}}}},
        ]}],
    })


def test_missing_credentials_are_named_per_step(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, kubeconfig=str(tmp_path / "kubeconfig"))  # type: ignore[call-arg]
    assert setup_warnings(config(), settings) == [
        "playbook prod, step stop-worker (action): heroku actions need HEROKU_API_TOKEN, which is not set",
        f"playbook prod, step scale-down (action): kubeconfig {tmp_path / 'kubeconfig'} does not exist",
    ]


def test_settings_become_the_action_context_mappings(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("""
current-context: prod
clusters: [{name: c, cluster: {server: "https://k8s.example.com:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: prod, context: {cluster: c, user: u}}]
""")
    settings = Settings(_env_file=None, heroku_api_token="tok", kubeconfig=str(kubeconfig),  # type: ignore[call-arg]
                        heroku_api_url="http://127.0.0.1:9999")
    assert setup_warnings(config(), settings) == []
    assert action_secrets(settings) == {"heroku_api_token": "tok"}
    assert action_endpoints(settings) == {"heroku_api_url": "http://127.0.0.1:9999", "kubeconfig": str(kubeconfig)}
    assert build_action(config().playbooks[0].steps[0].action).describe() == "Scale acme worker dynos to 0"


def test_check_config_prints_the_warnings_and_still_passes() -> None:
    result = run("check-config", env={"HEROKU_API_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert ("warning: playbook production-incident, step disable-worker (action): heroku actions need "
            "HEROKU_API_TOKEN, which is not set") in result.stderr
    quiet = run("check-config", env={"HEROKU_API_TOKEN": "x"})
    assert "HEROKU_API_TOKEN" not in quiet.stderr
