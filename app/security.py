"""Password hashing (argon2id) and opaque bearer tokens stored as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# One lane: argon2-cffi's default (4 lanes) runs each check on up to 4 threads, 1.5 cores of this 2-core
# machine, so the slot budget below (half the cores) did not hold. Same memory and passes (RFC 9106's
# low-memory profile otherwise); hashes made with 4 lanes still verify (their parameters are in them).
_hasher = PasswordHasher(parallelism=1)

# An argon2 check is about half a second of CPU. Without a bound, a flood of sign-ins fills every thread
# and core and every other call waits behind it; with one, at most this many hash at once, per process.
HASH_SLOT_COUNT = max(1, (os.cpu_count() or 2) // 2)
HASH_SLOTS = threading.BoundedSemaphore(HASH_SLOT_COUNT)
# How long a password check waits for a slot before it is refused (HashBusy) rather than queued.
HASH_WAIT_S = 2.0


class HashBusy(Exception):
    """Every password-hashing slot stayed taken for HASH_WAIT_S."""


@contextmanager
def _hash_slot(wait_s: float | None) -> Iterator[None]:
    if not HASH_SLOTS.acquire(timeout=wait_s):
        raise HashBusy(f"every password-hashing slot was busy for {wait_s} s")
    try:
        yield
    finally:
        HASH_SLOTS.release()


# The checks run on threads of their own at a lower OS priority, so the core a check takes goes to any
# other call that wants it (on Linux a thread's niceness is its own; raising it needs no privilege).
HASH_NICENESS = 10


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: the slots still bound the checks
        pass


_HASH_THREADS = ThreadPoolExecutor(HASH_SLOT_COUNT, thread_name_prefix="argon2", initializer=_lower_priority)


def hash_password(password: str) -> str:
    with _hash_slot(None):  # an admin's or the CLI's call: it waits its turn
        return _HASH_THREADS.submit(_hasher.hash, password).result()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str, password: str) -> bool:
    """True if the password matches; HashBusy if no hashing slot came free in time."""
    with _hash_slot(HASH_WAIT_S):
        return _HASH_THREADS.submit(_verify, password_hash, password).result()


def new_token() -> str:
    # A prefix makes leaked tokens easy to spot in logs and by secret scanners.
    return "lp_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def csrf_token(secret_key: str, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of the session token under the deployment's secret key.
    A double-submit cookie alone can be planted (from a sibling subdomain, over plain HTTP) together
    with a header that matches it; a token that must match the session cannot be made without the key."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret_key: str, session_token: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(csrf_token(secret_key, session_token), sent)
