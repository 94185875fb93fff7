"""Secrets (issue 16, item 10): the generated admin password goes to an owner-only file, not stdout;
LOUPE_SECRET_KEY signs the CSRF token to the session (a planted cookie/header pair is refused), and
production refuses a weak key at start-up."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys

import pytest

from tests.conftest import ADMIN_PASSWORD, ROOT, make_settings, settings_env


def test_production_refuses_a_weak_secret_key(tmp_path):
    from app.settings import Settings

    for weak in ("x", "s3cret", "a" * 40, "loupe-development-secret-change-me"):
        with pytest.raises(ValueError, match="LOUPE_SECRET_KEY"):
            Settings(environment="production", var_dir=tmp_path, secret_key=weak)
    assert Settings(environment="production", var_dir=tmp_path, secret_key=secrets.token_hex(32))
    assert Settings(environment="development", var_dir=tmp_path, secret_key="x")  # only production refuses
    env = {**os.environ, "LOUPE_ENVIRONMENT": "production", "LOUPE_SECRET_KEY": "x", "LOUPE_VAR_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "app.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "LOUPE_SECRET_KEY is too weak" in r.stdout + r.stderr


def test_the_csrf_token_is_signed_to_the_session(app_client):
    r = app_client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = {"name": "x", "classes": ["a"]}
    # A cookie and header pair the attacker chose (a cookie planted from a sibling subdomain) is refused.
    app_client.cookies.set("loupe_csrf", "planted-value")
    assert app_client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": "planted-value"}).status_code \
        == 403
    # The pair the server issued at sign-in works.
    app_client.cookies.delete("loupe_csrf")
    r = app_client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    csrf = app_client.cookies.get("loupe_csrf")
    assert app_client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_the_generated_admin_password_goes_to_an_owner_only_file(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    env = {k: v for k, v in settings_env(settings).items() if k != "LOUPE_ADMIN_PASSWORD"}
    r = subprocess.run([sys.executable, "-m", "app.cli", "init", "--no-demo"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    file = tmp_path / "admin-password.txt"
    assert file.is_file() and stat.S_IMODE(file.stat().st_mode) == 0o600
    password = file.read_text().strip()
    assert len(password) >= 12 and password not in r.stdout + r.stderr
    assert file.name in r.stdout  # the CLI says where it is
    from app.db import session_scope
    from app.services.auth import authenticate

    with session_scope(settings.database_url) as s:
        assert authenticate(s, "admin", password) is not None
