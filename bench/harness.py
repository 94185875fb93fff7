"""What the service benchmarks share: an API server of their own on a free port, the processes it
runs as, and percentiles. ``bench/load.py`` and ``bench/scale.py`` (and ``import_speed.py`` through
``scale``) start the server the way ``loupe serve`` does: uvicorn with the app factory and
``workers`` processes, access log off, so the figures are the API's own."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``; None when there are none."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def rounded(value: float | None, digits: int = 2) -> float:
    """For a report: ``value`` rounded, NaN for none."""
    return math.nan if value is None else round(value, digits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(env: dict[str, str], port: int, workers: int, log_path: Path | None = None,
              timeout_s: float = 60.0) -> subprocess.Popen:
    """Start the API (``workers`` uvicorn processes) on ``port`` and wait until ``/health`` answers 200.
    Its output goes to ``log_path`` (nowhere without one); a server that dies or stays unready raises,
    with the end of that log."""
    import httpx

    out = log_path.open("wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            tail = log_path.read_text(errors="replace")[-3000:] if log_path else ""
            raise RuntimeError(f"the API did not start on port {port}: {tail}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Ask a process to end (SIGTERM), and kill it if it has not within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's supervisor and its worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            todo += [int(c) for t in Path(f"/proc/{p}/task").iterdir() for c in (t / "children").read_text().split()]
        except OSError:
            continue
    return out


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its descendants so far, from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return total


def peak_rss_mb(pid: int) -> float:
    """A process's peak resident memory (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan
