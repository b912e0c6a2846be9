"""What actions need from the process settings, as the plain mappings `ActionContext` carries."""

from __future__ import annotations

from bot.settings import Settings

__all__ = ["action_endpoints", "action_secrets"]


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
