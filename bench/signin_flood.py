"""Sign-in flood (issue 16, item 5): 100 wrong passwords for one account from one address, while an
expert's client keeps calling the API. Floor: 429s after a handful, and the other calls' p99 within 2x of
the same calls on a quiet server.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/signin_flood.py --json

The server is ours, as ``loupe serve`` runs it (2 uvicorn processes, SQLite, throttle counters in memory:
each process counts its own, so up to twice the per-account limit of password checks).
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time

import httpx
from harness import percentile, rounded
from load import spawned


def _caller(base: str, headers: dict, pid: int, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    """An expert's client: one read of the project and its queue every 50 ms; (start, seconds) of each."""
    with httpx.Client(headers=headers, timeout=30) as c:
        while not stop.is_set():
            t = time.perf_counter()
            c.get(f"{base}/projects/{pid}").raise_for_status()
            c.get(f"{base}/projects/{pid}/queue").raise_for_status()
            out.append((t, time.perf_counter() - t))
            time.sleep(0.05)


def _flood(base: str, n: int) -> tuple[list[int], float, float]:
    codes, t0 = [], time.perf_counter()
    with httpx.Client(timeout=30) as c:
        for _ in range(n):
            codes.append(c.post(f"{base}/auth/login", json={"username": "admin", "password": "wrong-password"})
                         .status_code)
    return codes, t0, time.perf_counter()


def run(quiet_s: float, attempts: int) -> dict:
    with spawned("sqlite", 200, 2, "", 300) as (base, token, pid, _truth, _server):
        calls: list[tuple[float, float]] = []
        stop = threading.Event()
        caller = threading.Thread(target=_caller, args=(base, {"Authorization": f"Bearer {token}"}, pid, stop, calls))
        caller.start()
        time.sleep(1.0)  # warm
        quiet_from = time.perf_counter()
        time.sleep(quiet_s)
        codes, t0, t1 = _flood(base, attempts)
        time.sleep(0.5)
        stop.set()
        caller.join()
    quiet = [s * 1000 for t, s in calls if quiet_from <= t < t0]
    flood = [s * 1000 for t, s in calls if t0 <= t <= t1]
    q99, f99 = percentile(quiet, 99), percentile(flood, 99)
    return {"bench": "signin_flood", "attempts": attempts, "first_429_at": codes.index(429) if 429 in codes else None,
            "codes": {str(k): codes.count(k) for k in sorted(set(codes))}, "flood_s": rounded(t1 - t0),
            "quiet_calls": len(quiet), "flood_calls": len(flood),
            "quiet_p50_ms": rounded(percentile(quiet, 50)), "quiet_p99_ms": rounded(q99),
            "flood_p50_ms": rounded(percentile(flood, 50)), "flood_p99_ms": rounded(f99),
            "p99_ratio": rounded(f99 / q99 if q99 and f99 else None), "load_avg": rounded(os.getloadavg()[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quiet-seconds", type=float, default=10.0)
    ap.add_argument("--attempts", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = run(args.quiet_seconds, args.attempts)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
