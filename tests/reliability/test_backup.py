"""`loupe backup` and `loupe restore`, through the real CLI, into an empty place: a fresh database and
an empty media directory. Every label, every image, the model version the queue used, and accounts
come back; the restored service takes new labels (PostgreSQL's id sequences are moved past the rows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import ADMIN_PASSWORD, ROOT, Api, digits_pngs, fresh_database, make_settings, settings_env, upload
from tests.reliability.conftest import create_admin, media_files


def loupe(settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT,
                       env=settings_env(settings) | {"_TYPER_STANDARD_TRACEBACK": "1", "COLUMNS": "200"},
                       capture_output=True, text=True, timeout=300)
    assert not check or r.returncode == 0, (f"loupe {' '.join(args)} failed:\n{r.stdout}\n{r.stderr[:1500]} ... "
                                            f"{r.stderr[-1500:]}")
    return r


def _seed(settings) -> dict:
    """A project with images, labels (one undone, one second opinion), a model version the queue
    serves (projects.current_model_version_id and model_versions point at each other), a job."""
    from app.db import session_scope
    from app.main import create_app
    from app.models import ModelVersion, Prediction, Project

    create_admin(settings)
    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                            "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        items = digits_pngs(30)
        assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
        samples = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
        with session_scope(settings.database_url) as s:
            mv = ModelVersion(project_id=pid, estimator="logistic", strategy="mixed", label_count=0)
            s.add(mv)
            s.flush()
            s.add_all([Prediction(model_version_id=mv.id, sample_id=x["id"], label="1", confidence=0.5, score=0.1,
                                  priority=float(i)) for i, x in enumerate(samples)])
            s.get(Project, pid).current_model_version_id = mv.id
        alice = admin.new_user("alice")
        admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
        truth = {n: c for n, _, c in items}
        r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": x["id"], "label": truth[x["filename"]]}
                                                        for x in samples[:12]], headers={"Idempotency-Key": "k1"})
        assert r.status_code == 201
        assert admin.delete(f"/labels/{r.json()['items'][0]['id']}").status_code == 200
        assert alice.post(f"/projects/{pid}/labels", json={"sample_id": samples[1]["id"], "label": "9"}).status_code \
            == 201
        admin.post(f"/projects/{pid}/jobs", json={"kind": "train"})
        return {
            "pid": pid,
            "project": admin.get(f"/projects/{pid}").json(),
            "samples": admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"],
            "histories": {x["id"]: admin.get(f"/samples/{x['id']}/labels").json() for x in samples},
            "images": {x["id"]: admin.get(f"/samples/{x['id']}/image").content for x in samples},
            "thumbs": {x["id"]: admin.get(f"/samples/{x['id']}/thumbnail").content for x in samples},
            "export": admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text,
            "jobs": admin.get(f"/projects/{pid}/jobs").json(),
            "queue": [i["sample_id"] for i in
                      admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]],
            "originals": {n: d for n, d, _ in items},
        }


@pytest.mark.parametrize("source,target", [("sqlite", "sqlite"), ("postgres", "postgres"), ("sqlite", "postgres")])
def test_backup_then_restore_into_an_empty_place_finds_every_label_and_image(tmp_path, request, source, target):
    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    src_dir.mkdir(), dst_dir.mkdir()
    with fresh_database(source, src_dir, request) as src_url:
        src = make_settings(src_dir, src_url)
        before = _seed(src)
        archive = tmp_path / "backups" / "loupe.tar.gz"
        out = loupe(src, "backup", str(archive))
        assert archive.is_file() and "backed up" in out.stdout, out.stdout + out.stderr
        n_media = len(media_files(src))

    # An empty place: a database that has never been migrated, and no media directory at all.
    with _empty_database(target, dst_dir, request) as dst_url:
        dst = make_settings(dst_dir, dst_url)
        assert not dst.media_path.exists()
        out = loupe(dst, "restore", str(archive))
        assert "restored" in out.stdout, out.stdout + out.stderr
        assert len(media_files(dst)) == n_media
        if target == "postgres":  # planner statistics of the restored rows, not autovacuum's later
            from sqlalchemy import create_engine, text

            engine = create_engine(dst_url)
            with engine.connect() as c:
                assert c.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'samples'::regclass")).scalar() \
                    == len(before["samples"])
            engine.dispose()

        from app.main import create_app

        with TestClient(create_app(dst)) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            pid = before["pid"]
            after = admin.get(f"/projects/{pid}").json()
            keys = ("name", "classes", "sample_count", "labelled_count", "current_model_version")
            assert {k: after[k] for k in keys} == {k: before["project"][k] for k in keys}
            assert admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"] == before["samples"]
            for sid, hist in before["histories"].items():
                assert admin.get(f"/samples/{sid}/labels").json() == hist
            for s in before["samples"]:
                assert admin.get(f"/samples/{s['id']}/image").content == before["images"][s["id"]] \
                    == before["originals"][s["filename"]]
                assert admin.get(f"/samples/{s['id']}/thumbnail").content == before["thumbs"][s["id"]]
            assert admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text == before["export"]
            assert admin.get(f"/projects/{pid}/jobs").json() == before["jobs"]
            # Idempotency records came back too: the retry of a request made before the backup replays.
            again = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": x["id"], "label": _truth(before, x)}
                                                                for x in before["samples"][:12]],
                               headers={"Idempotency-Key": "k1"})
            assert again.headers.get("idempotent-replayed") == "true"
            # The restored service goes on: accounts sign in, new rows get fresh ids, leases hold.
            alice = Api(client).login_as("alice", "user-password-1")
            unlabelled = [s for s in before["samples"] if s["status"] == "unlabelled"]
            r = alice.post(f"/projects/{pid}/labels", json={"sample_id": unlabelled[-1]["id"], "label": "3"})
            assert r.status_code == 201, r.text
            assert r.json()["items"][0]["id"] > max(h["id"] for hs in before["histories"].values() for h in hs)
            assert admin.new_user("bob").get(f"/projects/{pid}").status_code == 404
            assert admin.post("/projects", json={"name": "new", "classes": ["a"]}).status_code == 201

        # Restore never writes over what is there: not into a used media store, not into a used database.
        refused = loupe(dst, "restore", str(archive), check=False)
        assert refused.returncode == 1 and "media directory" in _flat(refused.stdout), refused.stdout
        import shutil

        shutil.rmtree(dst.media_path)
        refused = loupe(dst, "restore", str(archive), check=False)
        assert refused.returncode == 1 and "the database is not empty" in _flat(refused.stdout), refused.stdout


def _flat(text: str) -> str:
    return " ".join(text.split())


def _truth(before: dict, sample: dict) -> str:
    from sklearn.datasets import load_digits  # noqa: F401 - the seed labels used the true classes

    return next(h["label"] for h in reversed(before["histories"][sample["id"]]) if h["action"] == "set"
                and h["username"] == "admin")


class _empty_database:  # noqa: N801 - a context manager used like fresh_database
    """Like tests.conftest.fresh_database, but not migrated: restore must bring its own schema."""

    def __init__(self, kind: str, tmp_path: Path, request) -> None:
        self.kind, self.tmp_path, self.request = kind, tmp_path, request

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.tmp_path / 'restored.db'}"
        import uuid

        from sqlalchemy import text

        from tests.conftest import PG_ADMIN_URL, _pg_admin_engine

        self.request.getfixturevalue("pg_template")  # skips (with the reason) when PostgreSQL is absent
        self.name = f"loupe_r_{uuid.uuid4().hex[:10]}"
        self.engine = _pg_admin_engine()
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{self.name}"

    def __exit__(self, *exc) -> None:
        if self.kind == "sqlite":
            return
        from sqlalchemy import text

        from app.db import get_engine

        get_engine.cache_clear()
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.engine.dispose()


def test_backup_refuses_an_unmigrated_database_and_restore_refuses_a_foreign_archive(tmp_path):
    import tarfile

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'never.db'}")
    import sqlite3

    sqlite3.connect(tmp_path / "never.db").close()
    r = loupe(settings, "backup", str(tmp_path / "b.tar"), check=False)
    assert r.returncode == 1 and "never been migrated" in _flat(r.stdout), r.stdout + r.stderr
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 0
        tar.addfile(info)
    r = loupe(settings, "restore", str(evil), check=False)
    assert r.returncode == 1 and "unsafe" in _flat(r.stdout), r.stdout + r.stderr
    assert not (tmp_path.parent / "outside.txt").exists()
    _ = select  # keep the import for readers of the seed helpers
