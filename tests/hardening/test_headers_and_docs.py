"""Security headers and offline API docs (issue 16, item 8): every response (API, frontend files, errors)
forbids framing and MIME sniffing, limits the referrer and carries a Content-Security-Policy header at
least as strict as the frontend's meta tag; /docs serves Swagger UI from the package, not a CDN."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT, make_settings


@pytest.fixture
def client(tmp_path, sqlite_url):
    from fastapi.testclient import TestClient

    from app.main import create_app

    with TestClient(create_app(make_settings(tmp_path, sqlite_url, max_request_bytes=65536))) as c:
        yield c


def _policy(header: str) -> dict[str, set[str]]:
    directives = (d.split() for d in header.split(";") if d.strip())
    return {d[0].lower(): set(d[1:]) for d in directives}


def _meta_policy() -> dict[str, set[str]]:
    html = (ROOT / "frontend" / "index.html").read_text()
    match = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    assert match, "the frontend's CSP meta tag"
    return _policy(match.group(1))


def _assert_hardened(response, strict_script: bool = True) -> None:
    h = response.headers
    assert h.get("x-frame-options") == "DENY", (response.url, dict(h))
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy") in ("same-origin", "no-referrer", "strict-origin")
    csp = _policy(h.get("content-security-policy", ""))
    assert csp.get("frame-ancestors") == {"'none'"}
    assert csp.get("object-src") == {"'none'"} and csp.get("base-uri") == {"'none'"}
    assert "'unsafe-eval'" not in csp.get("script-src", {"'unsafe-eval'"})
    assert "'unsafe-inline'" not in csp.get("script-src", set())
    if strict_script:  # equal to the meta tag, directive for directive, plus frame-ancestors
        assert {k: v for k, v in csp.items() if k != "frame-ancestors"} == _meta_policy()


def test_every_kind_of_response_carries_the_security_headers(client):
    for path, status in (("/api/v1/health", None), ("/", 200), ("/index.html", 200), ("/js/app.js", 200),
                         ("/css/app.css", 200), ("/no/such/file.js", 404), ("/api/v1/no-such-route", 404),
                         ("/api/v1/projects", 401)):
        r = client.get(path)
        assert status is None or r.status_code == status, (path, r.status_code)
        _assert_hardened(r)
    r = client.post("/api/v1/auth/login", json={"username": 5})  # a validation error
    assert r.status_code == 422
    _assert_hardened(r)
    r = client.post("/api/v1/auth/login", content=b"x" * 65537)  # refused by the body-size limit
    assert r.status_code == 413
    _assert_hardened(r)


def test_docs_are_served_without_a_cdn(client):
    r = client.get("/docs")
    assert r.status_code == 200
    html = r.text
    assert not re.search(r"(https?:)?//[a-z0-9]", html, re.I), re.findall(r"(?:https?:)?//[^\s\"'<>]+", html)
    _assert_hardened(r, strict_script=False)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
    for asset in assets:
        a = client.get(asset)
        assert a.status_code == 200 and len(a.content) > 100, (asset, a.status_code)
        _assert_hardened(a, strict_script=False)
    assert client.get(re.search(r"url: '([^']+)'", html).group(1)).status_code == 200  # the schema it loads


def test_an_unhandled_error_answers_500_with_the_security_headers(tmp_path, sqlite_url):
    """A defect that escapes every handler still answers with the headers and a message, not Starlette's
    bare text (a fault injected as a route that raises, ahead of the frontend's catch-all)."""
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    from app.main import create_app

    def broken() -> None:
        raise RuntimeError("an injected defect")

    app = create_app(make_settings(tmp_path, sqlite_url))
    app.router.routes.insert(0, APIRoute("/api/v1/broken", broken))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/broken")
    assert r.status_code == 500
    assert "server log" in r.json()["detail"]
    _assert_hardened(r)
