"""A fake Heroku Platform API (v3) speaking the real wire format, for the heroku actions' tests.

Releases (list with the Range header, rollback by POSTing {"release": id}), formation GET/PATCH,
error bodies {"id": "not_found", "message": ...}, the `Accept: application/vnd.heroku+json;
version=3` and Bearer-token requirements. Every request is recorded; faults come from FakeProvider.

    fake = FakeHeroku()
    fake.add_app("acme-prod", releases=3, formation={"web": 2, "worker": 3})
    async with serve_asgi(fake.app) as url: ...
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.fakes.provider import FakeProvider

TOKEN = "heroku-test-token"

# A playbook whose one rollback step rolls back the app `acme-prod` on this fake (indented: write_config
# dedents it, and tests append more top-level keys at the same indent).
ROLLBACK_PLAYBOOK = """
    playbooks:
      - name: production-incident
        steps:
          - id: rollback-api
            label: Roll back the API
            rollback: true
            changes_production: true
            action: {heroku: {rollback: {app: acme-prod}}}
"""
_T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class HerokuApp:
    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    releases: list[dict[str, Any]] = field(default_factory=list)
    formation: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}

    def add_release(self, description: str, *, slug_id: str | None = None, status: str = "succeeded") -> dict[str, Any]:
        version = max((r["version"] for r in self.releases), default=0) + 1
        at = _iso(_T0 + timedelta(hours=version))
        release = {
            "addon_plan_names": ["heroku-postgresql:standard-0"],
            "app": self.ref(),
            "created_at": at,
            "description": description,
            "id": str(uuid.uuid4()),
            "output_stream_url": None,
            "slug": {"id": slug_id or str(uuid.uuid4())},
            "status": status,
            "updated_at": at,
            "user": {"email": "deployer@example.com", "id": str(uuid.uuid4())},
            "version": version,
            "current": False,
        }
        if status == "succeeded":
            for other in self.releases:
                other["current"] = False
            release["current"] = True
        self.releases.append(release)
        return release

    @property
    def current(self) -> dict[str, Any]:
        return next(r for r in self.releases if r["current"])


_RANGE = re.compile(r"^\s*(?P<field>\w+)\s+(?P<first>[^.;\s]*)\.\.(?P<last>[^;\s]*)\s*(?:;\s*(?P<opts>.*))?$")


class FakeHeroku(FakeProvider):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.apps: dict[str, HerokuApp] = {}
        self.app = Starlette(
            routes=[
                Route("/apps/{app}/releases", self.handle(self._list_releases), methods=["GET"]),
                Route("/apps/{app}/releases", self.handle(self._create_release), methods=["POST"]),
                Route("/apps/{app}/formation/{type}", self.handle(self._get_formation), methods=["GET"]),
                Route("/apps/{app}/formation/{type}", self.handle(self._update_formation), methods=["PATCH"]),
            ]
        )

    def add_app(self, name: str, *, releases: int = 3, formation: dict[str, int] | None = None) -> HerokuApp:
        app = self.apps[name] = HerokuApp(name)
        for n in range(releases):
            app.add_release(f"Deploy {n + 1:07x}")
        for process, quantity in (formation or {"web": 1}).items():
            app.formation[process] = {
                "app": app.ref(),
                "command": f"bin/{process}",
                "created_at": _iso(_T0),
                "id": str(uuid.uuid4()),
                "quantity": quantity,
                "size": "Standard-1X",
                "type": process,
                "updated_at": _iso(_T0),
            }
        return app

    def error(self, status: int, message: str) -> Response:
        ids = {
            400: "bad_request",
            401: "unauthorized",
            404: "not_found",
            422: "invalid_params",
            429: "rate_limit",
            503: "unavailable",
        }
        return JSONResponse({"id": ids.get(status, "error"), "message": message}, status_code=status)

    def _refuse(self, request: Request) -> Response | None:
        if "version=3" not in request.headers.get("accept", ""):
            return self.error(
                400,
                "Please specify a version along with Heroku's API MIME type. For example, "
                "`Accept: application/vnd.heroku+json; version=3`.",
            )
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "Invalid credentials provided.")
        return None

    def _app(self, request: Request) -> HerokuApp | Response:
        app = self.apps.get(request.path_params["app"])
        return app if app is not None else self.error(404, "Couldn't find that app.")

    async def _list_releases(self, request: Request, body: Any) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if isinstance(app := self._app(request), Response):
            return app
        releases = sorted(app.releases, key=lambda r: r["version"])
        order, limit = "asc", 200
        header = request.headers.get("range")
        if header:
            match = _RANGE.match(header)
            if not match or match["field"] not in ("version", "id"):
                return self.error(400, f"Invalid Range header: {header}")
            for option in (match["opts"] or "").split(","):
                key, _, value = option.strip().partition("=")
                if key == "order":
                    order = value
                elif key == "max":
                    limit = min(int(value), 1000)
        if order == "desc":
            releases.reverse()
        page = releases[:limit]
        headers = {}
        status = 200
        if len(releases) > limit:
            status = 206
            headers["Next-Range"] = f"]{page[-1]['version']}..; order={order}, max={limit}"
        return JSONResponse(page, status_code=status, headers=headers)

    async def _create_release(self, request: Request, body: Any) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if isinstance(app := self._app(request), Response):
            return app
        wanted = body.get("release") if isinstance(body, dict) else None
        if wanted is None:
            return self.error(422, "Missing required params: release.")
        target = next((r for r in app.releases if r["id"] == wanted or str(r["version"]) == str(wanted)), None)
        if target is None:
            return self.error(404, "Couldn't find that release.")
        release = app.add_release(f"Rollback to v{target['version']}", slug_id=target["slug"]["id"])
        return JSONResponse(release, status_code=201)

    def _formation(self, request: Request) -> dict[str, Any] | Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if isinstance(app := self._app(request), Response):
            return app
        formation = app.formation.get(request.path_params["type"])
        return formation if formation is not None else self.error(404, "Couldn't find that formation.")

    async def _get_formation(self, request: Request, body: Any) -> Response:
        formation = self._formation(request)
        return formation if isinstance(formation, Response) else JSONResponse(formation)

    async def _update_formation(self, request: Request, body: Any) -> Response:
        formation = self._formation(request)
        if isinstance(formation, Response):
            return formation
        quantity = body.get("quantity") if isinstance(body, dict) else None
        if not isinstance(quantity, int) or quantity < 0:
            return self.error(422, "Invalid params: quantity must be a non-negative integer.")
        formation["quantity"] = quantity
        return JSONResponse(formation)
