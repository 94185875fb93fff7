"""Fixtures for the browser tests: a real Loupe server (API plus one embedded Celery worker) on a free
port with its own temporary database, broker and media store, and headless Chromium driven by Playwright.

Chromium is the system one (``chromium`` on PATH); without it the tests skip, unless
LOUPE_REQUIRE_SERVICES=1, where its absence is a failure. With LOUPE_SCREENSHOTS=1 the tests save a
1280x800 screenshot of each view into docs/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
REQUIRE = os.environ.get("LOUPE_REQUIRE_SERVICES") == "1"
ADMIN_PASSWORD = "admin-password-1"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def need(service: str, reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{service} is required (LOUPE_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiError(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status, self.body = status, body


@dataclass
class Api:
    """A bearer-token client for arranging and checking state beside the browser."""

    base: str
    token: str = ""

    def call(self, method: str, path: str, body: object = None, headers: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + "/api/v1" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as res:
                text = res.read().decode()
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw
            raise ApiError(exc.code, parsed) from None
        return json.loads(text) if text else None

    def get(self, path: str) -> object:
        return self.call("GET", path)

    def post(self, path: str, body: object = None, headers: dict | None = None) -> object:
        return self.call("POST", path, body, headers)

    def login(self, username: str, password: str) -> Api:
        token = self.post("/auth/login", {"username": username, "password": password})["token"]
        return Api(self.base, token)

    def has_route(self, method: str, path: str) -> bool:
        doc = self.get("/openapi.json")
        return method.lower() in doc["paths"].get("/api/v1" + path, {})

    def wait_job(self, job_id: int, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/jobs/{job_id}")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s: {job['message']}")
            time.sleep(0.3)

    def idle(self, pid: int, timeout: float = 120) -> None:
        """Wait until no job of the project is queued or running."""
        deadline = time.monotonic() + timeout
        while any(j["state"] in ("queued", "running") for j in self.get(f"/projects/{pid}/jobs")):
            if time.monotonic() > deadline:
                raise AssertionError("the project's jobs did not finish in time")
            time.sleep(0.3)


@dataclass
class Server:
    url: str
    var_dir: Path
    admin: Api
    project_id: int
    log: Path
    users: dict = field(default_factory=dict)

    def true_label(self, filename: str) -> str:
        # The demo's files are '<class>/NNNN.png'.
        return filename.split("/")[0]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("loupe-ui")
    env = {
        **os.environ,
        "LOUPE_VAR_DIR": str(tmp),
        "LOUPE_DATABASE_URL": f"sqlite:///{tmp}/loupe.db",
        "LOUPE_BROKER_URL": f"sqla+sqlite:///{tmp}/broker.db",
        "LOUPE_MEDIA_DIR": str(tmp / "media"),
        "LOUPE_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    init = subprocess.run([sys.executable, "-m", "app.cli", "init"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    if init.returncode != 0:
        pytest.fail(f"loupe init failed:\n{init.stdout}\n{init.stderr}")
    port = _free_port()
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"loupe serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(url + "/api/v1/health", timeout=2) as res:
                    if res.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"loupe serve did not become healthy:\n{log.read_text()[-4000:]}")
            time.sleep(0.3)
        admin = Api(url).login("admin", ADMIN_PASSWORD)
        project = next(p for p in admin.get("/projects") if p["name"] == "digits-demo")
        # A fresh import may queue a long self-supervised pretraining run; on a small CI machine it
        # would hold the one worker for minutes, so these tests cancel it and use the embedding alone.
        for job in admin.get(f"/projects/{project['id']}/jobs"):
            if job["kind"] == "pretrain" and job["state"] in ("queued", "running"):
                admin.post(f"/jobs/{job['id']}/cancel")
        yield Server(url=url, var_dir=tmp, admin=admin, project_id=project["id"], log=log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        need("Chromium", "no 'chromium' on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need("Playwright", str(exc))
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Recorder:
    """Every request a page makes, so a test can prove none leaves the origin."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.urls: list[str] = []

    def __call__(self, request) -> None:
        self.urls.append(request.url)

    def foreign(self) -> list[str]:
        keep = ("data:", "blob:", "about:")
        mine = urlsplit(self.origin)
        return [u for u in self.urls if not u.startswith(keep) and
                (urlsplit(u).scheme, urlsplit(u).netloc) != (mine.scheme, mine.netloc)]


@pytest.fixture
def page(browser, server) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    context.set_default_timeout(30_000)
    rec = Recorder(server.url)
    context.on("request", rec)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    # A CSP violation (something inline, or another origin) shows only on the console.
    def on_console(msg) -> None:
        if msg.type == "error" and "Content Security Policy" in msg.text:
            errors.append(msg.text)

    pg.on("console", on_console)
    pg.requests = rec
    pg.js_errors = errors
    yield pg
    context.close()
    assert not rec.foreign(), f"the page requested other origins: {rec.foreign()}"
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(pg, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    pg.goto("/#/login")
    pg.get_by_label("Username").fill(username)
    pg.get_by_label("Password").fill(password)
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_selector(".project-card")


def shot(pg, name: str) -> None:
    """Save docs/screenshots/<name>.png when LOUPE_SCREENSHOTS=1 (CI leaves the committed ones alone)."""
    if os.environ.get("LOUPE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    loading = ("() => [...document.images].filter((i) => { const r = i.getBoundingClientRect();"
               " return r.bottom > 0 && r.top < innerHeight && r.width > 0 && !i.complete; }).length")
    for _ in range(50):  # the images on screen have arrived (thumbnails load lazily)
        if pg.evaluate(loading) == 0:
            break
        pg.wait_for_timeout(100)
    pg.mouse.move(0, 0)  # no hover effects in the picture
    pg.wait_for_timeout(350)  # let transitions settle
    pg.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture
def login():
    return sign_in


@pytest.fixture
def screenshot():
    return shot
