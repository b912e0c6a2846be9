"""Local ports for tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A local port nothing listens on right now (bound, then released): for a server to bind, or for a
    probe to find closed. Another process may take it meanwhile; `serve.start_serve` retries for that."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
