"""The demo-day drill: the morning the demo nearly did not happen, set up against the local fakes.

A deploy is recorded (through the bot's deploy API, as CI records it); a teammate changes a shared
variable (a Heroku config release, announced in #deploys); the API goes down and the worker fails
(jobs in the failed registry). From there it is the person at the page: ask "are we down?", declare,
and click through the playbook. Rolling back (the deploy hook answering 2xx) mends the API, as the
real rollback did. The page's stopwatch runs from the first "are we down?" to verify succeeding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from bot.config import GuardrailConfig
from bot.sandbox.drills import DrillWorld
from bot.sandbox.jobs import seed_failed_jobs
from bot.sandbox.slack_side import NON_RESPONDER_ID, SlackSide, Stopwatch
from bot.settings import Settings

SHARED_VARIABLE = "SHARED_DB_POOL_SIZE"
FAILED_JOBS = 5


@dataclass
class DemoDay:
    world: DrillWorld
    side: SlackSide
    bot_url: str
    settings: Settings
    api: str = "api"
    jobs_queue: str | None = "default"
    log: list[str] = field(default_factory=list)

    @staticmethod
    def fits(config: GuardrailConfig) -> bool:
        """The story needs a switchable `api` service and a playbook with a rollback step."""
        return any(s.name == "api" and s.http is not None for s in config.services) and any(
            step.rollback for playbook in config.playbooks for step in playbook.steps
        )

    def __post_init__(self) -> None:
        self.world.targets.on_hit.append(self._rollback_mends_the_api)
        rq = next((s.rq for s in self.world.services_config if s.rq is not None), None)
        self.jobs_queue = rq.queue if rq is not None else None

    def _rollback_mends_the_api(self, method: str, path: str, status: int) -> None:
        if method == "POST" and path.endswith("/rollback") and 200 <= status < 300 and self.api in self.world.services:
            if self.world.services[self.api].state != "up":
                self.world.set_service(self.api, "up")
                self.side.changed()

    async def set_the_scene(self) -> None:
        """Deploy, shared variable, API down, worker failing; the stopwatch reset."""
        self.side.stopwatch = Stopwatch(self.side.stopwatch.stop_label)
        self.side.notice = "Setting up the demo-day drill…"
        environment = self.settings_environment()
        token = self.settings.guardrail_api_token
        async with httpx.AsyncClient(base_url=self.bot_url, timeout=10) as http:
            answer = await http.post(
                "/api/v1/deploys",
                json={"environment": environment, "service": self.api, "version": "v142 (9f3c2e1)", "actor": "ci"},
                headers={"Authorization": f"Bearer {token.get_secret_value() if token else ''}"},
            )
        self.log.append(f"deploy of {self.api} v142 recorded ({answer.status_code})")
        for app in self.world.heroku.apps.values():
            app.add_release(f"Set {SHARED_VARIABLE} config vars")
        deploys = next((cid for cid, c in self.side.fake.channels.items() if c.get("name") == "deploys"), "C0GENERAL")
        await self.side.say(
            NON_RESPONDER_ID, deploys, f"heads-up: I changed {SHARED_VARIABLE} from 20 to 5 on every app (it is shared)"
        )
        self.world.set_service(self.api, "down")
        if self.jobs_queue and not self.world.redis_problem:
            failed = await seed_failed_jobs(self.world.redis_url, self.jobs_queue, FAILED_JOBS)
            self.log.append(f"worker failed {failed} jobs")
        self.side.notice = (
            'The demo-day drill is ready: the API is down and the worker failing. Ask "are we down?" '
            "in #general, declare, and run the playbook."
        )
        self.side.changed()

    def settings_environment(self) -> str:
        return self.world.environments[0] if self.world.environments else "production"
