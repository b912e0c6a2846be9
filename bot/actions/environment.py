"""What actions need from the process settings, as the plain mappings `ActionContext` carries."""

from __future__ import annotations

from bot.actions.kubeconfig import KubeconfigError, load_credentials
from bot.config import GuardrailConfig
from bot.settings import Settings

__all__ = ["action_endpoints", "action_secrets", "setup_warnings"]


def action_secrets(settings: Settings) -> dict[str, str]:
    """{"heroku_api_token": …} when set; never logged (ActionContext only passes it to the provider)."""
    secrets: dict[str, str] = {}
    if settings.heroku_api_token is not None:
        secrets["heroku_api_token"] = settings.heroku_api_token.get_secret_value()
    return secrets


def action_endpoints(settings: Settings) -> dict[str, str]:
    """Provider base URLs and where Kubernetes credentials are (kubeconfig path or in-cluster service)."""
    endpoints = {"heroku_api_url": settings.heroku_api_url}
    if settings.kubeconfig:
        endpoints["kubeconfig"] = settings.kubeconfig
    if settings.kubernetes_service_host:
        endpoints["kubernetes_service_host"] = settings.kubernetes_service_host
        endpoints["kubernetes_service_port"] = str(settings.kubernetes_service_port)
    return endpoints


def setup_warnings(config: GuardrailConfig, settings: Settings) -> list[str]:
    """What would make a configured action fail for want of credentials (for `guardrail check-config`)."""
    endpoints = action_endpoints(settings)
    warnings: list[str] = []
    for playbook in config.playbooks:
        for step in playbook.steps:
            for which, action in (("action", step.action), ("undo", step.undo)):
                if action is None:
                    continue
                where = f"playbook {playbook.name}, step {step.id} ({which})"
                if action.heroku is not None and settings.heroku_api_token is None:
                    warnings.append(f"{where}: heroku actions need HEROKU_API_TOKEN, which is not set")
                if action.kubernetes is not None:
                    try:
                        load_credentials(endpoints, action.kubernetes.context)
                    except KubeconfigError as exc:
                        warnings.append(f"{where}: {exc}")
    for environment, sources in config.changes.sources.items():
        for source in sources:
            where = f"changes source {source.kind} {source.target} ({environment})"
            if source.heroku is not None and settings.heroku_api_token is None:
                warnings.append(f"{where}: reading Heroku releases needs HEROKU_API_TOKEN, which is not set")
            if source.kubernetes is not None:
                try:
                    load_credentials(endpoints, source.kubernetes.context)
                except KubeconfigError as exc:
                    warnings.append(f"{where}: {exc}")
    return warnings
