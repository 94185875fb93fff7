"""`loupe serve --workers N` runs N API processes behind one port (bench/load.py measured why)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, make_settings, settings_env, stop_process, wait_until_healthy


def _children(pid: int) -> list[int]:
    return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]


@pytest.mark.parametrize("workers", [1, 3])
def test_serve_starts_the_asked_number_of_api_processes(sqlite_url, tmp_path, workers):
    env = settings_env(make_settings(tmp_path, sqlite_url))
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-embedded-worker",
                                 "--workers", str(workers)], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, log)
        # One process serves in place; more are a supervisor's children (and a resource tracker's).
        apps = [c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()
                and "tracker_fd" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(apps) == (0 if workers == 1 else workers), (apps, log.read_text()[-2000:])
        for _ in range(2 * workers):
            assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200
    finally:
        stop_process(proc)
