"""Job functions for the rq_replay tests (importable by the RQ worker by dotted path)."""

from __future__ import annotations


def charge_card(order: int) -> None:
    raise RuntimeError(f"payment provider timed out for order {order}")


def noop() -> None:
    return None
