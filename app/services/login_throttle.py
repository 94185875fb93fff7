"""Sign-in throttling: failed sign-ins are counted per account and per client address in a moving window.

Past either limit a sign-in is refused (429, Retry-After) before any password is hashed, so a guessing
loop costs the server almost nothing. The counters live where every API process of a deployment sees
them: Redis when the broker is Redis, otherwise the process's memory (SQLite and ``make run`` serve from
one process). Only failures count, so a person signing in often is never throttled, and the right
password works again once the window has passed.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from app.services.errors import ServiceError
from app.settings import Settings

log = logging.getLogger(__name__)


class Throttled(ServiceError):
    status_code = 429

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s
        self.headers = {"Retry-After": str(retry_after_s)}


class LoginThrottle:
    def __init__(self, storage: Storage, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        window = settings.login_window_s
        self._limits: list[tuple[str, RateLimitItem]] = [
            ("account", RateLimitItemPerSecond(settings.login_failures_per_account, window)),
            ("address", RateLimitItemPerSecond(settings.login_failures_per_address, window)),
        ]

    def _keys(self, username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
        named = {"account": username, "address": address}
        return [(item, f"signin-{kind}", named[kind]) for kind, item in self._limits]

    def check(self, username: str, address: str) -> None:
        """Throttled if this account or this address used up its failures in the window."""
        for item, kind, key in self._keys(username, address):
            try:
                if self._limiter.test(item, kind, key):
                    continue
                reset = self._limiter.get_window_stats(item, kind, key).reset_time
            except StorageError as exc:  # the counters are away: sign-in still works, unthrottled
                log.warning("sign-in throttle unavailable: %s", exc)
                return
            what = "this account" if kind == "signin-account" else "this address"
            wait = max(1, math.ceil(reset - time.time()))
            raise Throttled(f"too many failed sign-in attempts for {what}; try again in {wait} s", wait)

    def failed(self, username: str, address: str) -> None:
        try:
            for item, kind, key in self._keys(username, address):
                self._limiter.hit(item, kind, key)
        except StorageError as exc:
            log.warning("sign-in throttle unavailable: %s", exc)


_throttles: dict[tuple, LoginThrottle] = {}
_lock = threading.Lock()


def for_settings(settings: Settings) -> LoginThrottle:
    """The deployment's throttle: on Redis if the broker is Redis, else in memory (one per database, so
    each deployment, and each test's app, counts its own)."""
    shared = settings.broker_url.startswith(("redis://", "rediss://"))
    where = settings.broker_url if shared else f"memory:{settings.database_url}"
    key = (where, settings.login_failures_per_account, settings.login_failures_per_address,
           settings.login_window_s)
    with _lock:
        if key not in _throttles:
            storage: Storage = (RedisStorage(settings.broker_url, key_prefix="loupe", wrap_exceptions=True)
                                if shared else MemoryStorage())
            _throttles[key] = LoginThrottle(storage, settings)
        return _throttles[key]
