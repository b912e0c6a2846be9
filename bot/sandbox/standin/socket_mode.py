"""Socket Mode, as Slack speaks it: `apps.connections.open` hands out a WebSocket URL carrying a
ticket (a credential: whoever has it can connect as the app); Slack sends `hello`, then envelopes;
the app acknowledges each with its `envelope_id` (optionally a payload)."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect


class SocketModeHub:
    """The server side of Socket Mode connections for one FakeSlack."""

    def __init__(self, on_send: Callable[[], object] | None = None) -> None:
        self._on_send = on_send  # FakeSlack's action mark: waits after a delivery see only newer calls
        self._connections: list[WebSocket] = []
        self._connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ticket = f"tkt-{secrets.token_hex(6)}"
        self.refuse = 0  # fault: refuse this many connection attempts (the handshake fails)

    @property
    def path(self) -> str:
        """Where `apps.connections.open` sends the app, ticket included, as Slack's `wss://…/link/?ticket=…`."""
        return f"/socket-mode?ticket={self.ticket}&app_id=A0TEST"

    async def endpoint(self, websocket: WebSocket) -> None:
        if self.refuse > 0 or websocket.query_params.get("ticket") != self.ticket:
            self.refuse = max(0, self.refuse - 1)
            await websocket.close(code=1008)  # before accepting: the client sees HTTP 403
            return
        await websocket.accept()
        await websocket.send_text(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": len(self._connections) + 1,
                    "connection_info": {"app_id": "A0TEST"},
                }
            )
        )
        self._connections.append(websocket)
        self._connected.set()
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                future = self._acks.pop(str(message.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(message)
        except WebSocketDisconnect:
            pass
        finally:
            self._connections.remove(websocket)
            if not self._connections:
                self._connected.clear()

    async def wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send(self, envelope_type: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Deliver one envelope (`slash_commands`, `events_api`, `interactive`) and await the app's ack."""
        await self.wait_connected(timeout)
        if self._on_send is not None:
            self._on_send()
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        await self._connections[-1].send_text(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": envelope_type,
                    "payload": payload,
                    "accepts_response_payload": envelope_type != "events_api",
                    "retry_attempt": 0,
                    "retry_reason": "",
                }
            )
        )
        return await asyncio.wait_for(future, timeout)
