"""Throwaway certificates (openssl CLI) and an HTTPS variant of `serve_asgi` that can require client certs."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp

from bot.sandbox.standin.server import STARTUP_TIMEOUT, _InLoopServer, _serve


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def self_signed(directory: Path, name: str, *, ip: str | None = None) -> KeyPair:
    """An EC P-256 self-signed certificate (its own CA); with `ip`, valid as a server cert for that IP."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available")
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    args = [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(pair.key),
        "-out",
        str(pair.cert),
        "-days",
        "1",
        "-subj",
        f"/CN={name}",
    ]
    if ip:
        args += ["-addext", f"subjectAltName=IP:{ip}"]
    subprocess.run(args, check=True, capture_output=True, timeout=30)
    return pair


@contextlib.asynccontextmanager
async def serve_tls(app: ASGIApp, server: KeyPair, *, client_ca: Path | None = None) -> AsyncIterator[str]:
    """`async with serve_tls(app, pair) as url:` — https://127.0.0.1:PORT; with client_ca, client certs required."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        ssl_certfile=str(server.cert),
        ssl_keyfile=str(server.key),
        ssl_ca_certs=str(client_ca) if client_ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    instance = _InLoopServer(config)
    task = asyncio.create_task(_serve(instance))
    await asyncio.wait_for(instance.ready.wait(), timeout=STARTUP_TIMEOUT)
    port = instance.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        await asyncio.wait_for(task, timeout=10)
