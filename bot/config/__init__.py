"""guardrail's configuration: a directory of YAML files, loaded into frozen, typed models.

Use `load_config(Path("playbooks"))`; it raises `ConfigInvalid` listing every
problem (file, key path, message, hint) rather than the first traceback.
"""

from bot.config.durations import Duration, format_duration, parse_duration
from bot.config.loader import LoadedConfig, config_sha256, load_config
from bot.config.models import (
    Access,
    AuditSettings,
    Channels,
    ErrorRate,
    FreezeConfig,
    GuardrailConfig,
    HealthSettings,
    HttpCheck,
    IncidentSettings,
    RecurringFreeze,
    RedisCheck,
    RqCheck,
    ServiceConfig,
    Severity,
    SqlCheck,
    TcpCheck,
)
from bot.config.playbooks import (
    Action,
    HerokuAction,
    HerokuRollback,
    HerokuScale,
    HttpAction,
    KubernetesAction,
    KubernetesRollback,
    KubernetesScale,
    Playbook,
    RetryPolicy,
    RqReplayAction,
    Step,
)
from bot.config.problems import ConfigInvalid, ConfigProblem

__all__ = [
    "Access",
    "Action",
    "AuditSettings",
    "Channels",
    "ConfigInvalid",
    "ConfigProblem",
    "Duration",
    "ErrorRate",
    "FreezeConfig",
    "GuardrailConfig",
    "HealthSettings",
    "HerokuAction",
    "HerokuRollback",
    "HerokuScale",
    "HttpAction",
    "HttpCheck",
    "IncidentSettings",
    "KubernetesAction",
    "KubernetesRollback",
    "KubernetesScale",
    "LoadedConfig",
    "Playbook",
    "RecurringFreeze",
    "RedisCheck",
    "RetryPolicy",
    "RqCheck",
    "RqReplayAction",
    "ServiceConfig",
    "Severity",
    "SqlCheck",
    "Step",
    "TcpCheck",
    "config_sha256",
    "format_duration",
    "load_config",
    "parse_duration",
]
