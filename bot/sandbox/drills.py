"""The drill world: local fakes behind every `${VAR}` the playbooks use, and the switches that break them.

Services whose HTTP check lands on the local target server can be flipped up / slow / down /
hanging; deploy hooks (http actions) answer 200 / 503 / hang; Heroku and Kubernetes actions go to
the fake provider APIs; RQ checks and replays use a real local Redis when one answers. Nothing here
knows guardrail's features: it only serves what the configuration points at.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from starlette.requests import Request
from starlette.responses import Response

from bot.config import GuardrailConfig
from bot.config.models import ServiceConfig
from bot.sandbox.fakes.heroku import TOKEN as HEROKU_TOKEN
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.kubernetes import TOKEN as KUBE_TOKEN
from bot.sandbox.fakes.kubernetes import FakeKubernetes
from bot.sandbox.fakes.targets import Behaviour, TargetServer

ServiceState = Literal["up", "slow", "down", "hanging"]
TargetState = Literal["200", "503", "hang"]
SERVICE_STATES: tuple[ServiceState, ...] = ("up", "slow", "down", "hanging")
TARGET_STATES: tuple[TargetState, ...] = ("200", "503", "hang")

# ${VAR} or ${VAR:-default}, not $${…} (a literal dollar).
_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def variables_used(config_dir: Path) -> list[str]:
    """Every `${VAR}` name the YAML files in `config_dir` use, sorted."""
    names: set[str] = set()

    def walk(node: object) -> None:  # values only: comments and keys never name a variable
        if isinstance(node, str):
            names.update(_VARIABLE.findall(node))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(config_dir.glob("*.y*ml")):
        try:
            walk(yaml.safe_load(path.read_text()))
        except yaml.YAMLError:
            continue  # the configuration loader reports it, with the line
    return sorted(names)


class DrillTargets(TargetServer):
    """The target server, telling the drill world about every request (a rollback mends the API)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_hit: list[Callable[[str, str, int], None]] = []

    async def _handle(self, request: Request) -> Response:
        response = await super()._handle(request)
        for listener in self.on_hit:
            listener(request.method, request.url.path, response.status_code)
        return response


@dataclass
class ServiceDrill:
    """One configured service and how the drill panel can break it (`path` None: not switchable)."""

    name: str
    check: str
    path: str | None
    note: str
    state: ServiceState = "up"
    slow_delay: float = 1.0


@dataclass
class TargetDrill:
    """A deploy target an http action calls, answered by the local target server."""

    name: str
    prefix: str
    state: TargetState = "200"


@dataclass
class DrillWorld:
    """The fakes the sandbox serves, and what each `${VAR}` was given."""

    targets: DrillTargets
    heroku: FakeHeroku
    kube: FakeKubernetes
    workdir: Path
    redis_url: str
    redis_problem: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    described: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceDrill] = field(default_factory=dict)
    deploy_targets: dict[str, TargetDrill] = field(default_factory=dict)
    heroku_url: str = ""
    kube_url: str = ""
    services_config: list[ServiceConfig] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)

    # -- ${VAR}s ---------------------------------------------------------------------------------

    def supply(self, names: list[str]) -> dict[str, str]:
        """A drill value for every name: Redis URLs → the local Redis, database URLs → a SQLite file,
        other URLs and hooks → a path on the local target server, anything else → "sandbox"."""
        for name in names:
            upper = name.upper()
            if "REDIS" in upper:
                value, why = self.redis_url, "local Redis" + (f" ({self.redis_problem})" if self.redis_problem else "")
            elif "DATABASE" in upper or upper.endswith(("_DB", "_DSN")):
                value, why = f"sqlite:///{self.workdir / 'app.db'}", "a SQLite file in the sandbox's directory"
            elif upper.endswith(("_URL", "_HOOK", "_ENDPOINT", "_HOST")):
                value = f"{self.targets.url}/{name.lower().replace('_', '-')}"
                why = "the local target server (switch it in the drill panel)"
            else:
                value, why = "sandbox", "a placeholder"
            self.environment[name] = value
            self.described[name] = f"{value} — {why}"
        return dict(self.environment)

    # -- what the configuration points at ---------------------------------------------------------

    def adopt(self, config: GuardrailConfig) -> None:
        """Register the configuration's services, deploy targets, Heroku apps and Deployments."""
        base = self.targets.url
        self.services_config = list(config.services)
        self.environments = list(config.freeze.environments)
        for service in config.services:
            url = str(service.http.url) if service.http is not None else None
            if url is not None and url.startswith(base):
                path = url[len(base) :].split("?")[0]
                timeout = service.timeout.total_seconds()
                slow_after = service.slow_after.total_seconds() if service.slow_after else timeout / 2
                self.services[service.name] = ServiceDrill(
                    service.name, "http", path, "local target server", slow_delay=(slow_after + timeout) / 2
                )
            else:
                kind = next(k for k in ("http", "tcp", "sql", "redis", "rq") if getattr(service, k) is not None)
                note = {"rq": "the RQ queue in local Redis", "redis": "local Redis", "sql": "a local SQLite file"}.get(
                    kind, "not a local fake: checked for real"
                )
                self.services[service.name] = ServiceDrill(service.name, kind, None, note)
        for playbook in config.playbooks:
            for step in playbook.steps:
                for action in (step.action, step.undo):
                    if action is None:
                        continue
                    if action.http is not None and str(action.http.url).startswith(base):
                        prefix = "/" + str(action.http.url)[len(base) :].strip("/").split("/")[0]
                        self.deploy_targets.setdefault(prefix, TargetDrill(prefix.strip("/"), prefix))
                    heroku = action.heroku
                    if heroku is not None:
                        app = heroku.scale or heroku.rollback
                        assert app is not None
                        if app.app not in self.heroku.apps:
                            self.heroku.add_app(app.app, releases=3, formation={"web": 2, "worker": 3})
                        if heroku.scale is not None:
                            self.heroku.apps[app.app].formation.setdefault(
                                heroku.scale.process,
                                {**self.heroku.apps[app.app].formation["web"], "type": heroku.scale.process},
                            )
                    kube = action.kubernetes
                    if kube is not None:
                        deployment = kube.scale or kube.rollback
                        assert deployment is not None
                        key = (deployment.namespace, deployment.deployment)
                        if key not in self.kube.deployments:
                            self.kube.add_deployment(
                                *key, replicas=3, images=[f"{deployment.deployment}:1", f"{deployment.deployment}:2"]
                            )
        for target in self.deploy_targets.values():
            self.set_target(target.name, target.state)

    def kubeconfig(self) -> Path:
        """A kubeconfig for the fake cluster (plain HTTP, a bearer token)."""
        path = self.workdir / "kubeconfig"
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "sandbox",
                    "clusters": [{"name": "sandbox", "cluster": {"server": self.kube_url}}],
                    "users": [{"name": "guardrail", "user": {"token": KUBE_TOKEN}}],
                    "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "guardrail"}}],
                }
            )
        )
        return path

    @property
    def heroku_token(self) -> str:
        return HEROKU_TOKEN

    # -- switches --------------------------------------------------------------------------------

    def set_service(self, name: str, state: str) -> ServiceDrill:
        """Flip a switchable service; ValueError with the reason otherwise."""
        drill = self.services.get(name)
        if drill is None:
            raise ValueError(f"no service named {name!r} (configured: {', '.join(self.services) or 'none'})")
        if drill.path is None:
            raise ValueError(f"service {name} is a {drill.check} check ({drill.note}): it cannot be switched here")
        if state not in SERVICE_STATES:
            raise ValueError(f"state must be one of {', '.join(SERVICE_STATES)}")
        drill.state = state
        behaviour = {
            "up": Behaviour(),
            "slow": Behaviour(delay=drill.slow_delay),
            "down": Behaviour(status=503, body="service unavailable"),
            "hanging": Behaviour(hang=True),
        }[drill.state]
        self.targets.behaviours[drill.path] = behaviour
        return drill

    def set_target(self, name: str, state: str) -> TargetDrill:
        """Make a deploy target answer 200, 503 or hang; ValueError with the reason otherwise."""
        drill = next((t for t in self.deploy_targets.values() if t.name == name), None)
        if drill is None:
            raise ValueError(
                f"no deploy target named {name!r} (configured: "
                f"{', '.join(t.name for t in self.deploy_targets.values()) or 'none'})"
            )
        if state not in TARGET_STATES:
            raise ValueError(f"state must be one of {', '.join(TARGET_STATES)}")
        drill.state = state
        self.targets.prefix_behaviours[drill.prefix] = (
            Behaviour(hang=True) if state == "hang" else Behaviour(status=int(state))
        )
        return drill

    def panel(self) -> dict[str, object]:
        """What the drill panel shows."""
        return {
            "services": [
                {
                    "name": s.name,
                    "check": s.check,
                    "state": s.state if s.path else None,
                    "note": s.note,
                    "states": list(SERVICE_STATES) if s.path else [],
                }
                for s in self.services.values()
            ],
            "targets": [
                {"name": t.name, "state": t.state, "states": list(TARGET_STATES)} for t in self.deploy_targets.values()
            ],
            "heroku": {
                name: {p: f["quantity"] for p, f in app.formation.items()} for name, app in self.heroku.apps.items()
            },
            "kubernetes": {f"{ns}/{name}": d["spec"]["replicas"] for (ns, name), d in self.kube.deployments.items()},
            "redis": {"url": self.redis_url, "problem": self.redis_problem},
            "variables": dict(self.described),
        }


def redis_problem(url: str) -> str | None:
    """None when Redis at `url` answers PING within a second, else why not (one line)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"Redis at {url} is not reachable ({type(exc).__name__}): the RQ drills are off"
    finally:
        client.close()


async def redis_problem_async(url: str) -> str | None:
    return await asyncio.to_thread(redis_problem, url)


def describe_environment(described: Mapping[str, str]) -> list[str]:
    return [f"  ${{{name}}} = {value}" for name, value in described.items()]
