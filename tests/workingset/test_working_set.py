"""The working set through a real worker: built once from the working copies, reused by the next
pretraining without touching an original, extended by new imports, and read at the admin's input size."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.storage import BlobStore
from imaging.working_copy import WORK_SIDE
from tests.conftest import ADMIN_PASSWORD, Api, make_settings, running_worker, upload, wait_for_job
from tests.workingset.photos import photo, sha256


@pytest.fixture
def api(tmp_path, sqlite_url):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    settings = make_settings(tmp_path, sqlite_url)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
        yield settings, Api(client).login_as("admin", ADMIN_PASSWORD)


def _project(admin: Api, **settings) -> int:
    body = {"name": "photos", "classes": ["a", "b"], "settings": {"auto_pretrain": False} | settings}
    return admin.post("/projects", json=body).json()["id"]


def _photos(n: int, offset: int = 0) -> list[tuple[str, bytes]]:
    return [(f"p{i}.jpg", photo(480 + 8 * (i % 5), 360, seed=i)) for i in range(offset, offset + n)]


def _run(admin: Api, pid: int, kind: str, **params) -> dict:
    job = admin.post(f"/projects/{pid}/jobs", json={"kind": kind, "params": params}).json()
    done = wait_for_job(admin, job["id"], timeout=90)
    assert done["state"] == "succeeded", done
    return done


def _wait_idle(admin: Api, pid: int) -> None:
    for job in admin.get(f"/projects/{pid}/jobs").json():
        if job["kind"] != "pretrain":
            assert wait_for_job(admin, job["id"], timeout=90)["state"] == "succeeded", job


def _set(settings, pid: int, side: int) -> tuple[Path, np.ndarray]:
    folder = Path(settings.media_dir) / "workset" / f"p{pid}"
    return folder / f"s{side}-c3.npy", np.load(folder / f"s{side}-c3.ids.npy")


def test_built_once_reused_without_the_originals_and_a_lost_copy_remade(api):
    settings, admin = api
    pid = _project(admin)
    files = _photos(16)
    assert upload(admin, pid, files).json()["created"] == 16
    media = Path(settings.media_dir)
    lost = media / BlobStore.working_key(sha256(files[3][1]), WORK_SIDE, ".jpg")
    lost.unlink()  # as for a sample imported before working copies existed
    with running_worker(settings):
        _wait_idle(admin, pid)  # the pixel embedding reads working copies: it remakes the lost one
        assert lost.is_file()
        first = _run(admin, pid, "pretrain", budget_seconds=2, seed=0)
        bv = admin.get(f"/projects/{pid}/versions").json()["backbones"][0]
        assert bv["params"]["image_size"] == 96 and bv["params"]["input_size_from"] == "automatic"
        path, ids = _set(settings, pid, 192)  # 2 x the 96 px input chosen for 360 px photos on a CPU
        assert len(ids) == 16 and np.load(path, mmap_mode="r").shape == (16, 192, 192, 3)
        built = os.stat(path)
        # Every original unreadable now: a second pretraining and its embedding must not need them.
        for original in (media / "images").rglob("*.jpg"):
            original.write_bytes(b"not a jpeg any more")
        second = _run(admin, pid, "pretrain", budget_seconds=2, seed=1)
        assert second["result"]["backbone_version"] != first["result"]["backbone_version"]
        again = os.stat(path)
        assert (again.st_ino, again.st_mtime_ns) == (built.st_ino, built.st_mtime_ns), "the set was rebuilt"


def test_the_admins_input_size_is_used_and_new_imports_extend_the_set(api):
    settings, admin = api
    pid = _project(admin)
    assert admin.patch(f"/projects/{pid}", json={"settings": {"input_size": 48}}).status_code == 200
    assert upload(admin, pid, _photos(12)).json()["created"] == 12
    with running_worker(settings):
        _wait_idle(admin, pid)
        _run(admin, pid, "pretrain", budget_seconds=2)
        bv = admin.get(f"/projects/{pid}/versions").json()["backbones"][0]
        assert bv["params"]["image_size"] == 48 and bv["params"]["input_size_from"] == "project setting"
        path, ids = _set(settings, pid, 96)
        assert len(ids) == 12
        first = np.load(path, mmap_mode="r")[:12].copy()
        # Four more photos: their embedding under the backbone adds them to the set (old rows copied).
        assert upload(admin, pid, _photos(4, offset=12)).json()["created"] == 4
        _wait_idle(admin, pid)
        path, ids = _set(settings, pid, 96)
        assert len(ids) == 16 and np.array_equal(np.load(path, mmap_mode="r")[:12], first)
        assert admin.get(f"/projects/{pid}/versions").json()["embeddings"][0]["count"] == 16


@pytest.mark.parametrize("value", [62, 8, 228, "big", 12.5])
def test_input_size_outside_16_to_224_or_not_a_multiple_of_4_is_refused(api, value):
    _, admin = api
    pid = _project(admin)
    r = admin.patch(f"/projects/{pid}", json={"settings": {"input_size": value}})
    assert r.status_code == 422 and "input_size" in r.text, r.text
    assert admin.get(f"/projects/{pid}").json()["settings"]["input_size"] is None


def test_input_size_set_and_back_to_automatic(api):
    _, admin = api
    pid = _project(admin)
    set_to = lambda v: admin.patch(f"/projects/{pid}", json={"settings": {"input_size": v}}).json()["settings"]  # noqa: E731
    assert set_to(128)["input_size"] == 128
    assert set_to("auto")["input_size"] is None


def test_the_automatic_input_size_follows_the_images_and_the_device():
    from PIL import Image

    from ml.images import choose_input

    photos = [Image.new("RGB", (640, 480), (200, 30, 30))] * 3
    xrays = [Image.new("L", (512, 512), 90)] * 3
    assert choose_input(photos) == (96, 3) and choose_input(photos, device="cuda") == (224, 3)
    assert choose_input(xrays) == (64, 1) and choose_input(xrays, device="cuda") == (224, 1)
    cifar = [Image.new("RGB", (32, 32), (0, 0, 200))] * 3
    assert choose_input(cifar, device="cuda") == (32, 3)  # a GPU never upscales small images


def test_the_working_side_is_twice_the_input_but_never_above_the_images_own():
    from workers.jobs.working_set import working_side

    assert working_side(64, work_side=256, native=1500) == 128  # photographs: twice the input
    assert working_side(96, work_side=256, native=3000) == 192
    assert working_side(224, work_side=256, native=3000) == 256  # capped at the working copies
    assert working_side(64, work_side=256, native=64) == 64  # 64 px photos are not blown up to 128
    assert working_side(64, work_side=256, native=90) == 88
    assert working_side(32, work_side=256, native=8) == 32  # tiny digits: the input side itself
