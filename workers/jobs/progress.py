"""How a running job reports: (fraction, message) into its jobs row, and where it learns it was cancelled.

Its own module so that the job handlers (embed, pretrain, finetune, train) need not import the runner
that dispatches them. Progress is written through its own short transactions so an admin sees it while
the job runs.
"""

from __future__ import annotations

import time

from app.db import session_scope
from app.models import Job
from app.models.base import utcnow


class JobCancelled(Exception):
    pass


class Progress:
    """Report (fraction, message) into the jobs row, at most a few times a second."""

    def __init__(self, job_id: int, db_url: str, min_interval: float = 0.5) -> None:
        self.job_id, self.db_url, self.min_interval = job_id, db_url, min_interval
        self._last = 0.0

    def __call__(self, fraction: float, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        with session_scope(self.db_url) as s:
            job = s.get(Job, self.job_id)
            if job is None:
                return
            job.progress = max(0.0, min(1.0, float(fraction)))
            job.message = message[:2000]
            job.heartbeat_at = utcnow()
            if job.cancel_requested:
                raise JobCancelled
