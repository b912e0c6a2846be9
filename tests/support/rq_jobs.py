"""Jobs for real RQ queues in tests (workers import them by dotted path)."""

from __future__ import annotations


def explode() -> None:
    raise RuntimeError("boom: the payment provider said no")


def succeed() -> str:
    return "fine"
