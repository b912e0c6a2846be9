"""The one place that reads the process environment (and `.env`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings. Secrets are `SecretStr` so they never show up in reprs or logs."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = Field(default=None, description="The bot token (`xoxb-…`): required for Slack")
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Verifies requests from Slack: required in HTTP mode (not with Socket Mode)"
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (`xapp-…`, scope `connections:write`); when set, Slack traffic uses Socket Mode",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (GovSlack, or a local stand-in)"
    )
    database_url: str = Field(
        default="sqlite:///guardrail.db",
        description="SQLAlchemy URL; `postgres://…` and `postgresql://…` work as platforms hand them out. SQLite "
        "for one process, PostgreSQL for production and several replicas",
    )
    guardrail_config: Path = Field(
        default=Path("playbooks"), description="Directory of YAML configuration (every `*.yaml` in it)"
    )
    guardrail_api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for `/api/v1/…` (the CI gate); unset: the API is off and answers 503 saying why",
    )
    # Named tokens, `name:token,name:token`: each caller (release tooling, a calendar) gets its own,
    # and what it changes is audited as `api:<name>`. GUARDRAIL_API_TOKEN keeps working beside them.
    guardrail_api_tokens: SecretStr | None = Field(
        default=None, description="Named bearer tokens for /api/v1/…: name:token,name:token (audited as api:name)"
    )
    port: int = Field(default=3000, ge=1, le=65535, description="HTTP port")
    heroku_api_token: SecretStr | None = Field(
        default=None, description="Platform API token for `heroku` playbook actions"
    )
    heroku_api_url: str = Field(
        default="https://api.heroku.com", description="Heroku Platform API base URL (tests point it at a local fake)"
    )
    kubeconfig: str | None = Field(
        default=None,
        description="kubeconfig file(s) for `kubernetes` actions (the first existing one); unset: "
        "`~/.kube/config`, else the in-cluster service account",
    )
    kubernetes_service_host: str | None = Field(default=None, description="Set inside a cluster (in-cluster auth)")
    kubernetes_service_port: int = Field(default=443, description="Set inside a cluster (in-cluster auth)")
    # Bounds on every wait on the database (seconds); see bot.db.engine and docs/reliability.md.
    database_connect_timeout: float = Field(
        default=5.0,
        ge=1,
        le=600,
        description="Seconds to open a PostgreSQL connection (libpq: whole seconds, at least 2)",
    )
    database_statement_timeout: float = Field(
        default=10.0, gt=0, le=3600, description="PostgreSQL `statement_timeout` in seconds, enforced by the server"
    )
    database_timeout: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="Client-side bound in seconds on a whole unit of work or read on PostgreSQL (connecting, "
        "pre-ping and every statement included); when it expires the connection pool is reset. "
        "`audit verify` and `export` read 1,000 entries per read, each bounded on its own",
    )
    database_pool_timeout: float = Field(
        default=5.0, gt=0, le=600, description="Seconds to wait for a free pooled connection"
    )
    database_busy_timeout: float = Field(
        default=10.0, ge=0, le=600, description="SQLite `busy_timeout`: seconds a writer waits for the write lock"
    )
    gate_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="The freeze gate (`GET /api/v1/freeze`, `POST /api/v1/deploys`, `freeze check`) answers 503 / "
        "exits 2 when the database cannot tell within this many seconds",
    )
    ready_timeout: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="`/readyz` answers 503 when `SELECT 1` cannot finish within this many seconds",
    )
    tick_deadline: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A scheduler tick (freeze announcements, health watch, housekeeping) is cut after this many "
        "seconds",
    )

    log_format: Literal["text", "json"] = Field(
        default="text", description="`text`, or `json`: one JSON object a line with `request_id` (for log shippers)"
    )
    shutdown_timeout: float = Field(
        default=20.0,
        ge=0,
        le=600,
        description="On SIGTERM, seconds running playbook steps get to finish before the process exits "
        "(unfinished ones show as interrupted)",
    )

    # The audit log's signing key (HMAC-SHA-256). Unset: a plain SHA-256 chain, which whoever can
    # write the database can recompute; a warning says so at start.
    guardrail_audit_key: SecretStr | None = Field(
        default=None,
        description="Signs the audit log's hash chain (HMAC-SHA-256; at least 16 characters, e.g. `openssl rand "
        "-hex 32`); the same on every replica, kept outside the database. Unset: plain SHA-256 and a "
        "warning at start; once entries are signed, guardrail refuses to start or write without it",
    )
    # Keys GUARDRAIL_AUDIT_KEY replaced, oldest first, comma-separated: entries signed with them still
    # verify (nothing is signed with them any more). See docs/security.md on rotating the key.
    guardrail_audit_key_previous: SecretStr | None = Field(
        default=None,
        description="Keys `GUARDRAIL_AUDIT_KEY` replaced, oldest first, comma-separated: entries signed with them "
        "still verify; nothing new is signed with them",
    )
    guardrail_step_lease_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=600.0,
        description="Seconds of a running playbook step's lease, renewed every sixth of it; a step whose process "
        "stopped renewing shows as interrupted soon after it expires",
    )

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL, so it must end in "/".
        return value if value.endswith("/") else value + "/"

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "guardrail_api_token",
        "guardrail_api_tokens",
        "heroku_api_token",
        "guardrail_audit_key",
        "guardrail_audit_key_previous",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` leaves optional secrets empty; an empty string means "not set".
        return None if value == "" else value

    @field_validator("guardrail_audit_key", "guardrail_audit_key_previous")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        keys = value.get_secret_value().split(",") if value is not None else []
        if any(len(key.strip()) < 16 for key in keys):
            raise ValueError("must be at least 16 characters: use a random string, e.g. `openssl rand -hex 32`")
        return value

    @field_validator("guardrail_api_tokens")
    @classmethod
    def _named_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_named_tokens(value.get_secret_value())  # raises ValueError with the reason
        return value

    def api_tokens(self) -> dict[str, str]:
        """Every accepted bearer token → its name: GUARDRAIL_API_TOKEN is `default`, then GUARDRAIL_API_TOKENS."""
        tokens: dict[str, str] = {}
        if self.guardrail_api_token is not None:
            tokens[self.guardrail_api_token.get_secret_value()] = DEFAULT_TOKEN_NAME
        if self.guardrail_api_tokens is not None:
            for name, token in parse_named_tokens(self.guardrail_api_tokens.get_secret_value()):
                tokens.setdefault(token, name)  # never both: refused when the settings were read
        return tokens

    @model_validator(mode="after")
    def _tokens_distinct(self) -> Settings:
        if self.guardrail_api_token is not None and self.guardrail_api_tokens is not None:
            single = self.guardrail_api_token.get_secret_value()
            for name, token in parse_named_tokens(self.guardrail_api_tokens.get_secret_value()):
                if token == single:
                    raise ValueError(
                        f"GUARDRAIL_API_TOKENS: the token named {name} is also GUARDRAIL_API_TOKEN; "
                        "give each caller its own token"
                    )
        return self

    @property
    def api_enabled(self) -> bool:
        return self.guardrail_api_token is not None or self.guardrail_api_tokens is not None

    def audit_keys_previous(self) -> list[bytes]:
        """GUARDRAIL_AUDIT_KEY_PREVIOUS as keys, oldest first."""
        value = self.guardrail_audit_key_previous
        return [key.strip().encode() for key in value.get_secret_value().split(",")] if value else []

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def slack_problems(self) -> list[str]:
        """What is missing for the chosen Slack transport (empty when ready)."""
        problems: list[str] = []
        if self.slack_bot_token is None:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        elif not self.slack_bot_token.get_secret_value().startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        elif _placeholder(self.slack_bot_token):
            problems.append("SLACK_BOT_TOKEN is still a placeholder: paste the app's Bot User OAuth Token")
        if self.socket_mode:
            assert self.slack_app_token is not None
            if not self.slack_app_token.get_secret_value().startswith("xapp-"):
                problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        elif self.slack_signing_secret is None:
            problems.append("SLACK_SIGNING_SECRET is not set (required in HTTP mode; or set SLACK_APP_TOKEN)")
        elif _placeholder(self.slack_signing_secret):
            problems.append("SLACK_SIGNING_SECRET is still a placeholder: paste the app's Signing Secret")
        return problems


DEFAULT_TOKEN_NAME = "default"  # GUARDRAIL_API_TOKEN's name: what it changes is audited as `api:default`
TOKEN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
MIN_TOKEN = 16


def parse_named_tokens(text: str) -> list[tuple[str, str]]:
    """`name:token,name:token` → [(name, token)]; ValueError naming the entry (never the token) at fault."""
    entries: list[tuple[str, str]] = []
    for number, entry in enumerate(text.split(","), start=1):
        entry = entry.strip()
        name, colon, token = entry.partition(":")
        name, token = name.strip(), token.strip()
        # Named only when there is a name: without a colon the entry may be a bare token, never echoed.
        where = f"entry {number}" + (f" ({name})" if colon and TOKEN_NAME.fullmatch(name) else "")
        if not colon:
            raise ValueError(f"{where} is not name:token (write e.g. release-bot:<token>,calendar:<token>)")
        if not TOKEN_NAME.fullmatch(name):
            raise ValueError(
                f"{where}: a name is 1-40 characters: lower-case letters, digits and . _ - "
                "(starting with a letter or digit)"
            )
        if name == DEFAULT_TOKEN_NAME:
            raise ValueError(f"{where}: the name {DEFAULT_TOKEN_NAME} is GUARDRAIL_API_TOKEN's; choose another")
        if len(token) < MIN_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError(
                f"{where}: the token must be at least {MIN_TOKEN} printable characters without "
                "spaces: use a random string, e.g. `openssl rand -hex 32`"
            )
        if any(name == n for n, _ in entries):
            raise ValueError(f"{where}: the name {name} is given twice")
        if any(token == t for _, t in entries):
            raise ValueError(f"{where}: the token is the same as another entry's; give each name its own")
        entries.append((name, token))
    return entries


def _placeholder(secret: SecretStr) -> bool:
    """`xoxb-...` and the like, copied from documentation instead of Slack."""
    return "..." in secret.get_secret_value() or "…" in secret.get_secret_value()


def config_environment(env_file: Path | str = ".env") -> dict[str, str]:
    """What `${VAR}` in the YAML configuration is filled from: the process environment, over `.env`.

    The same precedence as the settings above, so a newcomer's `.env` serves both.
    """
    from_file = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if Path(env_file).is_file() else {}
    return {**from_file, **os.environ}
