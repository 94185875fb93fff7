"""Request bodies and slow clients (issue 16, item 4 and item 10's timeouts), over real HTTP.

An upload route checks who asks before it reads a byte of the body; sign-in and JSON routes have small
body limits (413 naming the limit, from the Content-Length before any body); an answer given before the
body was read closes the connection, so the rest is never read. ``loupe serve`` cuts a client whose
request line and headers do not arrive within the header timeout, or whose body stops for the body
timeout (uvicorn has neither: its keep-alive timer is reset by every byte)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    ADMIN_PASSWORD,
    ROOT,
    digits_pngs,
    free_port,
    make_settings,
    settings_env,
    stop_process,
    wait_until_healthy,
)
from tests.reliability.conftest import create_admin, live_server

BIG = 100 * 1024 * 1024  # what the clients below say they send; they stop at the first answer
CHUNK = 64 * 1024
BOUNDARY = "loupeboundary"


def _send_raw(url: str, head: str, chunks: Iterator[bytes]) -> tuple[int, bytes, int, float, bool]:
    """Send ``head`` then the chunks, stopping at the first byte of an answer.

    Returns (status, answer, body bytes sent, seconds until the answer, whether the server then closed
    the connection within 2 s)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    started = time.monotonic()
    sock.sendall(head.encode())
    sent, answer = 0, b""
    sock.setblocking(False)
    try:
        for chunk in chunks:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            sock.setblocking(True)
            sock.sendall(chunk)
            sock.setblocking(False)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        while not _complete(answer):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except (ConnectionResetError, TimeoutError):
        pass
    elapsed = time.monotonic() - started
    closed = _closed_within(sock, 2.0)
    sock.close()
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1") else 0
    return status, answer, sent, elapsed, closed


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response (head and body)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return body.endswith(b"0\r\n\r\n")  # chunked


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(65536):
                return True
    except TimeoutError:
        return False
    except OSError:  # reset: closed too
        return True
    return False


def _zeros(total: int, first: bytes = b"") -> Iterator[bytes]:
    """``first``, then zeros: ``total`` bytes in all."""
    yield first
    left = total - len(first)
    while left > 0:
        yield b"\0" * min(CHUNK, left)
        left -= CHUNK


def _head(method: str, path: str, headers: dict[str, str]) -> str:
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture
def server(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    create_admin(settings)
    with live_server(settings) as srv:
        yield srv


def test_an_upload_is_refused_before_its_body_is_read(server):
    """No token, a wrong token, a member who may not import, a project that is not there: each answer
    comes before the body (today's code read the whole 100 MB first), and the connection is closed."""
    with server.client() as c:
        pid = c.post("/projects", json={"name": "p", "classes": ["a"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        assert c.post("/users", json={"username": "alice", "password": "alice-password"}).status_code == 201
        c.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    alice = server.token("alice", "alice-password")
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()
    cases = [(None, pid, 401), ("not-a-token", pid, 401), (alice, pid, 403), (server.token(), 10**6, 404)]
    for token, project, expected in cases:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(BIG)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, answer, sent, elapsed, closed = _send_raw(
            server.url, _head("POST", f"/api/v1/projects/{project}/samples", headers), _zeros(BIG, part))
        assert status == expected, (token, answer[:300])
        # Kernel socket buffers take a few MB the server never read.
        assert sent < 16 * 1024 * 1024 and elapsed < 3, (expected, sent, elapsed)
        assert closed, f"the connection stayed open after the {expected}: the server would read the rest"
    # The other upload route: a backbone file (admin only).
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.pth\"\r\n\r\n").encode()
    for token, expected in [(None, 401), (alice, 403)]:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Content-Length": str(BIG)}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status, answer, sent, elapsed, closed = _send_raw(server.url, _head("POST", "/api/v1/backbones", headers),
                                                          _zeros(BIG, part))
        assert status == expected and sent < 16 * 1024 * 1024 and closed, (expected, answer[:300], sent, closed)


def test_sign_in_has_a_small_body_limit_and_memory_stays_flat(server):
    peak_before = _peak_rss_mib(server.proc.pid)
    declared = {"Content-Type": "application/json", "Content-Length": str(3 * BIG)}
    body = b'{"username": "admin", "password": "' + b"x" * CHUNK
    status, answer, sent, elapsed, closed = _send_raw(server.url, _head("POST", "/api/v1/auth/login", declared),
                                                      _zeros(3 * BIG, body))
    assert status == 413 and b"65536 bytes" in answer, answer[:300]
    assert sent < 16 * 1024 * 1024 and elapsed < 3 and closed, (sent, elapsed, closed)

    # No Content-Length (chunked): cut once 64 KiB went past, not at the end.
    chunked = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    pieces = (f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in _zeros(3 * BIG, body) if p)
    status, answer, sent, elapsed, closed = _send_raw(server.url, _head("POST", "/api/v1/auth/login", chunked), pieces)
    assert status == 413 and b"65536 bytes" in answer, answer[:300]
    assert sent < 16 * 1024 * 1024 and closed, (sent, closed)
    grown = _peak_rss_mib(server.proc.pid) - peak_before
    assert grown < 64, f"the API's peak memory grew by {grown:.0f} MiB"
    assert server.token()  # sign-in still works


def test_each_route_has_its_body_limit(tmp_path, sqlite_url):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(make_settings(tmp_path, sqlite_url))) as c:
        create_admin(c.app.state.settings)
        r = c.post("/api/v1/auth/login", json={"username": "admin", "password": "x" * 70_000})
        assert r.status_code == 413 and r.json()["detail"] == \
            "request body is over the limit of 65536 bytes (64 KiB) for this route", r.text
        token = c.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        # A JSON route: 1 MiB, room for a project of 1,000 long class names.
        classes = [f"class {i} " + "n" * 180 for i in range(1000)]
        assert c.post("/api/v1/projects", json={"name": "big", "classes": classes}, headers=auth).status_code == 201
        r = c.post("/api/v1/projects", json={"name": "too big", "classes": ["a"], "description": "d" * (1 << 20)},
                   headers=auth)
        assert r.status_code == 413 and "1048576 bytes (1 MiB)" in r.json()["detail"], r.text
        # An upload route: its own limit (1 GiB); a 2 MB image goes in.
        pid = c.post("/api/v1/projects", json={"name": "p", "classes": ["a"], "settings": {
            "auto_pretrain": False, "auto_embed": False}}, headers=auth).json()["id"]
        import io

        import numpy as np
        from PIL import Image
        noise = np.random.default_rng(0).integers(0, 255, (900, 900, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noise).save(buf, format="PNG")
        assert buf.tell() > 2 * 1024 * 1024
        (name, data, _), = digits_pngs(1)
        r = c.post(f"/api/v1/projects/{pid}/samples", headers=auth,
                   files=[("files", ("noise.png", buf.getvalue())), ("files", (name, data))])
        assert r.status_code == 201 and r.json()["created"] == 2, r.text
        # The backbone route reads its form itself: bad fields are 422 naming the field, as Form() had it.
        r = c.post("/api/v1/backbones", headers=auth, files={"file": ("b.onnx", b"x")},
                   data={"format": "onnx", "input_size": "big"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "input_size"], r.text
        r = c.post("/api/v1/backbones", headers=auth, data={"format": "onnx"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "file"], r.text


# ---------------------------------------------------------------- slow clients, against loupe serve


@pytest.fixture
def serve(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    create_admin(settings)
    env = settings_env(settings) | {"LOUPE_HEADER_TIMEOUT_S": "1.5", "LOUPE_BODY_TIMEOUT_S": "1.5",
                                    "LOUPE_MAX_HEADER_BYTES": "16384"}
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--no-embedded-worker",
                                 "--workers", "1"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield port
    finally:
        stop_process(proc)


def _trickle(port: int, pieces: Iterator[bytes], interval: float, give_up: float) -> tuple[float, bytes]:
    """Send one piece every ``interval`` s; returns when the server closes (seconds since the connection
    opened, what it answered), or (inf, answer) if it still listens after ``give_up`` s."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    started, answer = time.monotonic(), b""
    try:
        for piece in pieces:
            if piece:
                sock.sendall(piece)
            sock.settimeout(interval)
            try:
                data = sock.recv(65536)
                answer += data
                if not data:
                    return time.monotonic() - started, answer
            except TimeoutError:
                pass
            if time.monotonic() - started > give_up:
                return float("inf"), answer
    except OSError:  # reset or broken pipe: the server closed it
        return time.monotonic() - started, answer
    finally:
        sock.close()
    return float("inf"), answer


def _forever(*first: bytes, then: bytes = b"") -> Iterator[bytes]:
    yield from first
    while True:
        yield then


def test_slow_clients_are_cut_at_the_header_and_body_timeouts(serve):
    port = serve
    # A connection that sends nothing, and one that sends its headers a byte at a time (slowloris).
    took, _ = _trickle(port, _forever(b""), 0.25, give_up=8)
    assert took < 3.5, f"an idle new connection was kept {took:.1f} s (header timeout 1.5 s)"
    line = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n"
    took, answer = _trickle(port, _forever(line, then=b"X"), 0.2, give_up=8)
    assert took < 3.5, f"a client sending its headers a byte at a time was kept {took:.1f} s"
    assert answer == b"", "closed without an answer, as nginx does"
    # A body that stops.
    login = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100\r\n\r\n")
    took, answer = _trickle(port, _forever(login + b'{"user'), 0.25, give_up=8)
    assert took < 3.5, f"a body that stopped was kept {took:.1f} s (body timeout 1.5 s)"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    # A slow but steady body is not cut: the body timeout is the wait between two reads, not the total.
    body = json.dumps({"username": "admin", "password": "wrong-password"}).encode()
    head = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    steady = iter([head] + [body[i:i + 5] for i in range(0, len(body), 5)] + [b""] * 20)
    took, answer = _trickle(port, steady, 0.5, give_up=20)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # Headers over the size limit: 431, not an ever-growing list.
    took, answer = _trickle(port, _forever(line, then=b"X-Filler: " + b"y" * 4000 + b"\r\n"), 0.01, give_up=8)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # And the server is fine.
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).status_code == 200


# ---------------------------------------------------------------- how an upload's files arrive


def _run(coroutine):
    """asyncio.run in a thread of its own: the browser tests leave an event loop running in this one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_upload_files_stream_to_var_uploads_and_a_non_zip_file_stops_at_its_limit(tmp_path, sqlite_url):
    """Through the ASGI interface: a file past 1 MiB goes to an unnamed file under <var>/uploads, a small
    one stays in memory, an image past max_file_bytes keeps max_file_bytes + 1 bytes (the import lists it
    as over the limit), a zip is kept whole."""
    import io
    import os

    from sqlalchemy.orm import Session
    from starlette.requests import Request

    from app.api.uploads import receive_form

    settings = make_settings(tmp_path, sqlite_url, max_file_bytes=10_000)
    parts = [("small.png", b"s" * 500), ("big.png", b"b" * 3_000_000), ("big.zip", b"PK\x03\x04" + b"z" * 2_000_000),
             ("zip-inside.bin", b"PK\x03\x04" + b"y" * 50_000)]
    body = b"".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{n}\"\r\n\r\n".encode()
                    + data + b"\r\n" for n, data in parts) + f"--{BOUNDARY}--\r\n".encode()
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [
        (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]}

    async def read(body: bytes):
        chunks = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]

        async def receive():
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}  # (after the pop)

        async with receive_form(Request(scope, receive), Session(), settings, "files") as form:
            return [(f.filename, f.size, f.file.read(), isinstance(f.file, io.BytesIO),
                     None if isinstance(f.file, io.BytesIO) else os.readlink(f"/proc/self/fd/{f.file.fileno()}"))
                    for f in form.files]

    got = _run(read(body))
    assert [(n, size) for n, size, *_ in got] == [("small.png", 500), ("big.png", 10_001),
                                                  ("big.zip", 2_000_004), ("zip-inside.bin", 50_004)]
    assert got[0][2] == b"s" * 500 and got[0][3], "a small file stays in memory"
    assert got[2][2] == parts[2][1] and not got[2][3], "a zip is kept whole, on disk past 1 MiB"
    assert got[2][4].startswith(str(tmp_path / "uploads")), got[2][4]  # unnamed: "/.../uploads/#123 (deleted)"
    assert not any((tmp_path / "uploads").iterdir()), "nothing left behind"
    # A body that ends before its closing boundary: 400, its last file is not taken cut short.
    from fastapi import HTTPException
    with pytest.raises(HTTPException) as refused:
        _run(read(body[:-len(f"--{BOUNDARY}--\r\n") - 1000]))
    assert refused.value.status_code == 400 and "closing boundary" in refused.value.detail
    assert not any((tmp_path / "uploads").iterdir())
    # More files than one request may carry: 413 as the one too many begins, nothing kept.
    many = b"".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{i}.png\"\r\n\r\n"
                    f"x\r\n".encode() for i in range(1001)) + f"--{BOUNDARY}--\r\n".encode()
    with pytest.raises(HTTPException) as refused:
        _run(read(many))
    assert refused.value.status_code == 413 and "more than 1000 files" in refused.value.detail
