"""`loupe` on the command line: import with a progress bar and a summary of what was rejected."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT, digits_pngs, imagefolder_zip, make_settings, settings_env


def _loupe(settings, *args: str):
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=settings_env(settings) | {
        "COLUMNS": "120"}, capture_output=True, text=True, timeout=120)


def test_import_folder_tree_zip_and_bad_files(tmp_path, sqlite_url):
    from sqlalchemy import func, select

    from app.db import session_scope
    from app.models import Label, Sample

    settings = make_settings(tmp_path, sqlite_url)
    tree = tmp_path / "pets"
    for name, data, cls in digits_pngs(30):
        (tree / cls).mkdir(parents=True, exist_ok=True)
        (tree / cls / name).write_bytes(data)
    (tree / "0" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    r = _loupe(settings, "import", "digits", str(tree))
    assert r.returncode == 1 and "pass --create" in r.stdout

    r = _loupe(settings, "import", "digits", str(tree), "--create", "--labels-from-folders")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "30 imported" in r.stdout and "1 rejected" in r.stdout
    assert "broken.png" in r.stdout and "corrupt" in r.stdout
    assert "30 labelled from folders" in r.stdout

    archive = tmp_path / "more.zip"
    archive.write_bytes(imagefolder_zip(digits_pngs(10, offset=30)))
    r = _loupe(settings, "import", "digits", str(archive))
    assert r.returncode == 0 and "10 imported" in r.stdout
    r = _loupe(settings, "import", "digits", str(archive))
    assert "0 imported, 10 duplicates" in r.stdout

    with session_scope(settings.database_url) as s:
        assert s.scalar(select(func.count()).select_from(Sample)) == 40
        assert s.scalar(select(func.count()).where(Label.source == "import")) == 30


def test_users_and_passwords_from_the_cli(tmp_path, sqlite_url):
    settings = make_settings(tmp_path, sqlite_url)
    r = _loupe(settings, "create-user", "carol", "--password", "carol-pass-1")
    assert r.returncode == 0 and "created user 'carol'" in r.stdout
    assert "carol-pass-1" not in r.stdout + r.stderr
    r = _loupe(settings, "reset-password", "carol", "--password", "carol-pass-2")
    assert r.returncode == 0
    r = _loupe(settings, "reset-password", "nobody", "--password", "whatever-1")
    assert r.returncode == 1 and "no user named 'nobody'" in r.stdout

    from app.db import session_scope
    from app.services.auth import authenticate

    with session_scope(settings.database_url) as s:
        assert authenticate(s, "carol", "carol-pass-2") is not None
        assert authenticate(s, "carol", "carol-pass-1") is None


def test_init_is_idempotent_and_writes_the_admin_password_once(tmp_path):
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}")
    first = _loupe(settings, "init", "--no-demo")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created admin account 'admin'" in first.stdout and "admin-password.txt" in first.stdout
    second = _loupe(settings, "init", "--no-demo")
    assert second.returncode == 0 and "password" not in second.stdout.replace("reset-password", "")
