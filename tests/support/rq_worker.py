"""A real RQ worker that runs in a thread, and what RQ recorded of the jobs it enqueued."""

from __future__ import annotations

import redis
from rq import SimpleWorker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty


class BurstWorker(SimpleWorker):
    """A real RQ worker that can run in a thread: no signal handlers, timer-based job timeouts
    (SIGALRM only works in the main thread, and jobs would fail for that instead of their own error)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None

    def run_burst(self) -> None:
        self.work(burst=True, logging_level="WARNING")


def busiest_second(url: str, ids: list[str]) -> int:
    """The most jobs RQ enqueued within any one second (a sliding window over their real `enqueued_at`)."""
    conn = redis.Redis.from_url(url)
    times = sorted(
        job.enqueued_at.timestamp() for job in Job.fetch_many(ids, connection=conn) if job and job.enqueued_at
    )
    conn.close()
    assert len(times) == len(ids)
    return most_in_any_window(times, 1.0)


def most_in_any_window(times: list[float], window: float) -> int:
    """How many of `times` fall in the fullest half-open window [t, t + window), t anywhere."""
    times, busiest, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        busiest = max(busiest, last - first + 1)
    return busiest
