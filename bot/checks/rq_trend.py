"""What an `rq` check remembers between rounds: the failure rate and the workers it has seen.

A retry storm and a crash loop are trends, not snapshots — the failed count of a queue that has
failed 3 jobs a day for a year is high and harmless, and a worker that crashes on start is gone
from the registry a moment later. So each probe keeps a small history per target (a few minutes
of rounds, on the injected clock) and judges the rate and the recent worker births from it.

Failures per round are the larger of two counts, because each misses something: the growth of the
failed-job registry (misses retried jobs — RQ re-enqueues those instead of registering them) and
the growth of the workers' own `failed_job_count` (counts every attempt, retries included, but
misses workers that were born and gone between two rounds). Limits, said plainly: a worker that
starts and exits cleanly between two rounds is not seen at all; the history lives in one replica's
memory and starts empty after a restart (the first round only sets the baseline).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

MIN_RATE_SPAN = timedelta(seconds=10)  # shorter than this, a rate is noise


@dataclass(frozen=True)
class WorkerSnapshot:
    """One worker as the registry shows it this round."""

    name: str
    born: datetime | None
    failed: int
    finished: int


@dataclass
class _Seen:
    born: datetime | None
    failed: int
    finished: int


@dataclass(frozen=True)
class Trend:
    """The judgement after a round: failure rates (per minute) and recent worker starts."""

    failed_per_minute: float | None  # over the storm window; None until the history spans enough time
    failed_per_minute_before: float | None  # over the window before that, when the history reaches back
    workers_started: int  # within the crash window
    jobs_finished: int  # by the workers started within the crash window


class QueueHistory:
    """Rounds of one queue: cumulative failures over time, and every worker seen recently."""

    def __init__(self, *, storm_window: timedelta, crash_window: timedelta) -> None:
        self._storm_window = storm_window
        self._crash_window = crash_window
        self._samples: deque[tuple[datetime, int]] = deque()  # (when, failures counted so far)
        self._failures = 0
        self._registry_failed: int | None = None
        self._workers: dict[str, _Seen] = {}

    def record(self, now: datetime, *, registry_failed: int, workers: list[WorkerSnapshot]) -> Trend:
        """Add one round's reading and judge the history; rounds older than the last are ignored."""
        if self._samples and now < self._samples[-1][0]:
            return self._judge(self._samples[-1][0])
        first = not self._samples
        registry_growth = 0 if self._registry_failed is None else max(0, registry_failed - self._registry_failed)
        self._registry_failed = registry_failed
        worker_growth = 0
        for worker in workers:
            seen = self._workers.get(worker.name)
            if seen is None or seen.born != worker.born:  # new, or a new worker reusing a name
                worker_growth += 0 if first else worker.failed
                self._workers[worker.name] = _Seen(worker.born, worker.failed, worker.finished)
            else:
                worker_growth += max(0, worker.failed - seen.failed)
                seen.failed = max(seen.failed, worker.failed)
                seen.finished = max(seen.finished, worker.finished)
        self._failures += max(registry_growth, worker_growth)
        self._samples.append((now, self._failures))
        self._forget(now, alive={w.name for w in workers})
        return self._judge(now)

    def _forget(self, now: datetime, *, alive: set[str]) -> None:
        keep_from = now - 3 * self._storm_window
        while len(self._samples) > 2 and self._samples[1][0] <= keep_from:
            self._samples.popleft()
        born_after = now - self._crash_window
        for name in [n for n, s in self._workers.items() if n not in alive and (s.born is None or s.born < born_after)]:
            del self._workers[name]

    def _judge(self, now: datetime) -> Trend:
        window_start = now - self._storm_window
        # the rate runs from the last round at or before the window's start (else the oldest one)
        start = 0
        for index, (when, _) in enumerate(self._samples):
            if when <= window_start:
                start = index
        recent = _rate(self._samples[start], self._samples[-1])
        before = _rate(self._samples[0], self._samples[start]) if start > 0 else None
        born_after = now - self._crash_window
        started = [s for s in self._workers.values() if s.born is not None and s.born >= born_after]
        return Trend(recent, before, len(started), sum(s.finished for s in started))


def _rate(first: tuple[datetime, int], last: tuple[datetime, int]) -> float | None:
    span = last[0] - first[0]
    if span < MIN_RATE_SPAN:
        return None
    return (last[1] - first[1]) / (span / timedelta(minutes=1))


def per_minute(rate: float) -> str:
    """120 → "120", 2.5 → "2.5", 0.04 → "0"."""
    return f"{rate:.0f}" if rate >= 10 or rate < 0.05 else f"{rate:.1f}".removesuffix(".0")
