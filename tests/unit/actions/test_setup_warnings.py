"""`guardrail check-config` warns when a playbook's actions lack the credentials they need."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.actions import build_action
from bot.actions.environment import action_endpoints, action_secrets, setup_warnings
from bot.config import GuardrailConfig
from bot.settings import Settings
from tests.support.cli import run


def config() -> GuardrailConfig:
    return GuardrailConfig.model_validate(
        {
            "channels": {"deploys": "C0DEPLOYS"},
            "playbooks": [
                {
                    "name": "prod",
                    "steps": [
                        {
                            "id": "stop-worker",
                            "label": "Stop worker",
                            "action": {"heroku": {"scale": {"app": "acme", "process": "worker", "quantity": 0}}},
                        },
                        {
                            "id": "scale-down",
                            "label": "Scale down",
                            "action": {
                                "kubernetes": {"scale": {"namespace": "prod", "deployment": "api", "replicas": 0}}
                            },
                        },
                    ],
                }
            ],
        }
    )


def test_missing_credentials_are_named_per_step(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, kubeconfig=str(tmp_path / "kubeconfig"))
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
    settings = Settings(
        _env_file=None, heroku_api_token="tok", kubeconfig=str(kubeconfig), heroku_api_url="http://127.0.0.1:9999"
    )
    assert setup_warnings(config(), settings) == []
    assert action_secrets(settings) == {"heroku_api_token": "tok"}
    assert action_endpoints(settings) == {"heroku_api_url": "http://127.0.0.1:9999", "kubeconfig": str(kubeconfig)}
    assert build_action(config().playbooks[0].steps[0].action).describe() == "Scale acme worker dynos to 0"


def test_check_config_prints_the_warnings_and_still_passes() -> None:
    result = run("check-config", "--yaml-only", env={"HEROKU_API_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert (
        "warning: playbook production-incident, step disable-worker (action): heroku actions need "
        "HEROKU_API_TOKEN, which is not set"
    ) in result.stderr
    quiet = run("check-config", "--yaml-only", env={"HEROKU_API_TOKEN": "x"})
    assert "HEROKU_API_TOKEN" not in quiet.stderr


TOKEN = "eyJhbGciOiJSUzI1NiJ9.s3cr3t-service-account-token"
GOOD_USER = f"users: [{{name: u, user: {{token: {TOKEN}}}}}]"
CONTEXT = "current-context: prod\ncontexts: [{name: prod, context: {cluster: c, user: u}}]\n"


def cluster(extra: str) -> str:
    return f'clusters: [{{name: c, cluster: {{server: "https://k8s.example.com:6443", {extra}}}}}]\n'


BAD_KUBECONFIGS = {
    "ca-not-base64": (
        CONTEXT + cluster("certificate-authority-data: '@@not base64@@'") + GOOD_USER,
        "certificate-authority-data is not valid base64",
    ),
    "ca-not-a-certificate": (
        CONTEXT + cluster("certificate-authority-data: aGVsbG8gd29ybGQ=") + GOOD_USER,
        "certificate-authority-data is not a usable CA certificate",
    ),
    "token-file-missing": (
        CONTEXT + cluster("insecure-skip-tls-verify: true") + "users: [{name: u, user: {tokenFile: missing-token}}]",
        "tokenFile {dir}/missing-token cannot be read: No such file or directory",
    ),
    "client-cert-not-pem": (
        CONTEXT
        + cluster("insecure-skip-tls-verify: true")
        + "users: [{name: u, user: {client-certificate-data: aGVsbG8=, "
        "client-key-data: aGVsbG8=}}]",
        "client certificate and key cannot be loaded",
    ),
    "yaml-error-on-the-token-line": (
        CONTEXT + cluster("insecure-skip-tls-verify: true") + f'users: [{{name: u, user: {{token: "{TOKEN}" oops}}}}]',
        "cannot read kubeconfig {path}: line 4, column",
    ),
    "users-not-a-list-of-mappings": (
        CONTEXT + cluster("insecure-skip-tls-verify: true") + "users: 7",
        "{path}: `users` is not a list",
    ),
}


@pytest.mark.parametrize("name", BAD_KUBECONFIGS)
def test_a_bad_kubeconfig_is_a_warning_naming_the_problem_never_a_traceback_or_the_token(
    tmp_path: Path, name: str
) -> None:
    text, expected = BAD_KUBECONFIGS[name]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text)
    settings = Settings(_env_file=None, heroku_api_token="tok", kubeconfig=str(kubeconfig))
    [warning] = setup_warnings(config(), settings)
    assert warning.startswith("playbook prod, step scale-down (action): ")
    assert expected.format(dir=tmp_path, path=kubeconfig) in warning
    assert "s3cr3t" not in warning


def test_check_config_with_a_broken_kubeconfig_warns_and_passes(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(BAD_KUBECONFIGS["ca-not-base64"][0])
    result = run("check-config", "--yaml-only", env={"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"kubeconfig {kubeconfig}: certificate-authority-data is not valid base64" in result.stderr
