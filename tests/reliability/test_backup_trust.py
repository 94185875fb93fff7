"""Restore trusts no archive (issue 16, item 6): every table's row count and every media file's hash are
checked against the manifest before anything in the target changes; a tampered archive is refused,
naming what differs. A restore into a var dir that does not exist yet works on SQLite. Backups and the
SQLite file are readable by their owner only (item 10)."""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, Api, fresh_database, make_settings, settings_env
from tests.reliability.test_backup import _flat, _seed, loupe


@pytest.fixture
def archive(tmp_path, request) -> Path:
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    with fresh_database("sqlite", src_dir, request) as url:
        src = make_settings(src_dir, url)
        _seed(src)
        out = tmp_path / "backups" / "loupe.tar.gz"
        loupe(src, "backup", str(out))
    return out


def _retar(archive: Path, out: Path, edit) -> Path:
    """A copy of ``archive`` with ``edit(folder)`` applied to its unpacked files."""
    folder = out.with_suffix(".d")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    edit(folder)
    with tarfile.open(out, "w") as tar:
        for p in sorted(folder.iterdir()):
            tar.add(p, arcname=p.name)
    return out


def _drop_labels(folder: Path) -> None:
    next((folder / "db").glob("*-labels.jsonl")).unlink()


def _cut_samples(folder: Path) -> None:
    dump = next((folder / "db").glob("*-samples.jsonl"))
    dump.write_text("".join(dump.read_text().splitlines(keepends=True)[:10]))


def _flip_an_image(folder: Path) -> None:
    image = next(p for p in sorted((folder / "media").rglob("*")) if p.is_file())
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0xFF
    image.write_bytes(bytes(data))


def _add_a_file(folder: Path) -> None:
    (folder / "media" / "planted.png").write_bytes(b"not from the backup")


def _drop_an_image(folder: Path) -> None:
    next(p for p in sorted((folder / "media").rglob("*")) if p.is_file()).unlink()


@pytest.mark.parametrize("edit,named", [
    (_drop_labels, "labels"), (_cut_samples, "samples"), (_flip_an_image, "hash"),
    (_add_a_file, "planted.png"), (_drop_an_image, "missing"),
])
def test_a_tampered_archive_is_refused_and_the_target_stays_untouched(archive, tmp_path, edit, named):
    bad = _retar(archive, tmp_path / f"{edit.__name__}.tar", edit)
    dst = make_settings(tmp_path / "dst", f"sqlite:///{tmp_path / 'dst' / 'restored.db'}")
    (tmp_path / "dst").mkdir()
    r = loupe(dst, "restore", str(bad), check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    said = _flat(r.stdout)
    assert "does not match its manifest" in said and named in said, said
    assert not (tmp_path / "dst" / "restored.db").exists()  # nothing in the target changed
    assert not dst.media_path.exists()


def test_restore_into_a_var_dir_that_does_not_exist_yet(archive, tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    var = tmp_path / "new" / "var"
    env = {k: v for k, v in settings_env(make_settings(var, "sqlite://")).items()
           if k not in ("LOUPE_DATABASE_URL", "LOUPE_BROKER_URL", "LOUPE_MEDIA_DIR")}
    import subprocess
    import sys

    from tests.conftest import ROOT

    r = subprocess.run([sys.executable, "-m", "app.cli", "restore", str(archive)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "restored" in r.stdout, r.stdout + r.stderr
    settings = Settings(environment="test", var_dir=var)
    assert Path(settings.database_url.split("///", 1)[1]).is_file()
    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        assert [p["name"] for p in admin.get("/projects").json()] == ["digits"]


def test_backups_and_the_sqlite_file_are_readable_by_their_owner_only(archive, tmp_path):
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    manifest = json.loads(tarfile.open(archive).extractfile("manifest.json").read())
    assert len(manifest["media"]) == manifest["media_files"]  # every file's hash is recorded
    from app.db import get_engine

    db = tmp_path / "fresh" / "loupe.db"
    db.parent.mkdir()
    with get_engine(f"sqlite:///{db}").connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
