"""`tcp`: healthy when a TCP connection opens."""

from __future__ import annotations

import asyncio
import contextlib

from bot.checks.probe import Unhealthy
from bot.config import TcpCheck


class TcpProbe:
    def __init__(self, check: TcpCheck) -> None:
        self.check = check

    @property
    def target(self) -> str:
        return f"tcp://{self.check.host}:{self.check.port}"

    async def __call__(self) -> str:
        try:
            _, writer = await asyncio.open_connection(self.check.host, self.check.port)
        except ConnectionRefusedError:
            raise Unhealthy(f"connection refused on port {self.check.port}") from None
        except OSError as exc:
            raise Unhealthy(exc.strerror or type(exc).__name__) from None
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return "connected"

    async def aclose(self) -> None:
        return None
