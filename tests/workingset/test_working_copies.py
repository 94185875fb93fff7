"""Working copies made at import: a large photo is decoded once and kept beside its original at 256 px
(short side), upright, in the mode the backbone reads; small plain images are their own working copy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from app.storage import BlobStore
from imaging.normalise import load_image, to_l_or_rgb, working_mode
from imaging.working_copy import WORK_SIDE
from tests.conftest import digits_pngs, upload
from tests.workingset.photos import photo, sha256


def _project(admin) -> int:
    return admin.post("/projects", json={"name": "photos", "classes": ["a", "b"],
                                         "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]


def _work_files(settings) -> list[Path]:
    root = Path(settings.media_dir) / "work"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_a_large_photo_gets_an_upright_256_px_working_copy_and_keeps_its_original(admin, settings):
    pid = _project(admin)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 2000 wide x 1500 high; upright (as a phone shows it) 1500 x 2000
    data = photo(2000, 1500, seed=1, exif=exif.tobytes())
    assert upload(admin, pid, [("field.jpg", data)]).status_code == 201
    (sample,) = admin.get(f"/projects/{pid}/samples").json()["items"]
    assert admin.get(f"/samples/{sample['id']}/image").content == data  # the original, byte for byte

    key = BlobStore.working_key(sha256(data), WORK_SIDE, ".jpg")
    assert _work_files(settings) == [Path(settings.media_dir) / key]
    work = Image.open(Path(settings.media_dir) / key)
    assert work.format == "JPEG" and work.mode == "RGB" and work.size == (256, 341)
    # The same pixels as the original, upright, reduced: compared with a reduction made here.
    expected = np.asarray(load_image(data).resize((256, 341), Image.Resampling.BICUBIC), dtype=float)
    got = np.asarray(work, dtype=float)
    assert np.abs(got - expected).mean() < 4.0
    # Upright: the dark band the photo has along its stored top edge is now down its right side.
    assert got[:, -20:].mean() < 40 and got[:, :60].mean() > 60


def test_small_plain_images_serve_as_their_own_copy_and_odd_modes_get_one(admin, settings):
    pid = _project(admin)
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(cmyk, "JPEG", quality=95)
    grey16 = io.BytesIO()
    Image.fromarray(np.tile(np.linspace(0, 4000, 400), (300, 1)).astype(np.uint16)).save(grey16, "PNG")
    (name, digit, _), = digits_pngs(1)
    files = [(name, digit), ("red.jpg", cmyk.getvalue()), ("ramp16.png", grey16.getvalue())]
    assert upload(admin, pid, files).json()["created"] == 3
    by_hash = {p.name.split("-")[0]: p for p in _work_files(settings)}
    assert sha256(digit) not in by_hash  # 8x8 grey PNG: nothing to convert or reduce
    red = Image.open(by_hash[sha256(cmyk.getvalue())])
    assert red.format == "PNG" and red.mode == "RGB" and red.size == (40, 30)  # kept at its size, lossless
    assert np.asarray(red)[..., 0].mean() > 200 and np.asarray(red)[..., 1].mean() < 60
    ramp = Image.open(by_hash[sha256(grey16.getvalue())])
    assert ramp.format == "PNG" and ramp.mode == "L" and ramp.size == (341, 256)
    row = np.asarray(ramp, dtype=float)[100]
    assert row[:5].mean() < 10 and row[-5:].mean() > 245  # 12-bit data stretched, as the backbone sees it


def test_working_mode_names_what_the_conversion_gives():
    from tests.ml.ssl.test_images import _modes

    for mode, img in _modes().items():
        assert working_mode(mode) == to_l_or_rgb(img).mode, mode
