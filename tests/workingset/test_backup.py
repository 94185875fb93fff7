"""A backup carries the working copies (made once, from originals that may be large) and leaves out the
working sets (derived from them, as large as all of them together, rebuilt by the first job)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

from app.backup import backup
from app.storage import BlobStore
from imaging.working_copy import WORK_SIDE
from tests.conftest import upload
from tests.workingset.photos import photo, sha256


def test_backup_carries_working_copies_and_leaves_out_working_sets(admin, settings, tmp_path):
    pid = admin.post("/projects", json={"name": "photos", "classes": ["a"], "settings": {
        "auto_pretrain": False, "auto_embed": False}}).json()["id"]
    data = photo(1200, 900, seed=3)
    assert upload(admin, pid, [("big.jpg", data)]).status_code == 201
    media = Path(settings.media_dir)
    workset = media / "workset" / f"p{pid}"
    workset.mkdir(parents=True)
    np.save(workset / "s192-c3.npy", np.zeros((1, 192, 192, 3), np.uint8))
    out = tmp_path / "backup.tar"
    manifest = backup(settings.database_url, media, out, log=lambda _: None)
    with tarfile.open(out) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile() and m.name.startswith("media/")}
    assert f"media/{BlobStore.working_key(sha256(data), WORK_SIDE, '.jpg')}" in files
    assert not [n for n in files if n.startswith("media/workset")]
    assert manifest["media_files"] == len(files)
