"""Jobs for real RQ queues in tests: workers import them by dotted path, so this module imports nothing."""

from __future__ import annotations


def explode() -> None:
    raise RuntimeError("boom: the payment provider said no")


def succeed() -> str:
    return "fine"


def charge_card(order: int) -> None:
    raise RuntimeError(f"payment provider timed out for order {order}")


def noop() -> None:
    return None
