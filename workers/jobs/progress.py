"""How a running job reports: (fraction, message) into its jobs row, and where it learns it was cancelled.

Its own module so that the job handlers (embed, pretrain, finetune, train) need not import the runner
that dispatches them. Progress is written through its own short transactions so an admin sees it while
the job runs.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from app.db import session_scope
from app.repos import jobs as jobs_repo


class JobCancelled(Exception):
    pass


class JobInterrupted(Exception):
    """This worker process is stopping (a warm shutdown: ``loupe serve`` stopped, SIGTERM): the job is
    put back in the queue, to run again when a worker starts, instead of being cut off running."""


class JobLost(Exception):
    """This run no longer holds the job (``app.repos.jobs.Claim``): a sweep re-queued it after a late
    heartbeat (a loaded machine, a locked SQLite) and another run may have it, or a cancel of a job that
    looked stale ended it. The run stops and writes nothing more to the row."""


# Set when this worker process is asked to stop (``workers.startup``); read at every report.
STOPPING = threading.Event()


class Progress:
    """Report (fraction, message) into the jobs row, at most a few times a second, with an estimate of
    the time left and the figures the project's status line shows."""

    def __init__(self, job_id: int, db_url: str, run: datetime, min_interval: float = 0.5) -> None:
        """``run``: the claim's (``app.repos.jobs.Claim``); a report writes only while it holds the job."""
        self.job_id, self.db_url, self.run, self.min_interval = job_id, db_url, run, min_interval
        self._last = 0.0
        self._start = time.monotonic()

    def __call__(self, fraction: float, message: str = "", force: bool = False, *, eta_s: float | None = None,
                 figures: dict | None = None) -> None:
        """``eta_s``: seconds left, when the handler knows better than the straight line from the
        job's start through ``fraction`` (a pretraining chunk knows its budget). ``figures``: merged
        into the row's figures (e.g. images embedded, of how many)."""
        if STOPPING.is_set():
            raise JobInterrupted
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        fraction = max(0.0, min(1.0, float(fraction)))
        if eta_s is None:
            eta_s = straight_line_eta(now - self._start, fraction)
        with session_scope(self.db_url) as s:
            # Raised inside the transaction: a cancelled job's last report is not kept.
            cancel = jobs_repo.report(s, self.job_id, self.run, fraction, message, eta_s, figures)
            if cancel:
                raise JobCancelled
        if cancel is None:
            raise JobLost(f"job {self.job_id} is no longer this run's (re-queued after a late heartbeat, "
                          "claimed again, or ended by a cancel)")


def straight_line_eta(elapsed_s: float, fraction: float) -> float | None:
    """Seconds left if the rest goes as fast as the part done; None while too little is done to tell."""
    if fraction < 0.02 or elapsed_s < 2.0:
        return None
    return elapsed_s * (1.0 - fraction) / fraction
