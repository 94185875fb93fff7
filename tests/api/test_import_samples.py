"""Importing real images through the API: files, zips in ImageFolder layout, duplicates, rejects."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

from tests.conftest import digits_pngs, imagefolder_zip, upload


def _stored_files(settings) -> list[Path]:
    root = Path(settings.media_dir)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_import_files_then_duplicates(admin, digits_project, settings):
    pid = digits_project["id"]
    files = [(n, d) for n, d, _ in digits_pngs(12)]
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 12, "duplicates": 0, "rejected": [], "labelled": 0, "unknown_labels": []}
    again = upload(admin, pid, files[:3])
    assert again.status_code == 200
    assert again.json()["duplicates"] == 3 and again.json()["created"] == 0
    assert len(_stored_files(settings)) == 24  # 12 images + 12 thumbnails, each stored once


def test_import_imagefolder_zip_keeps_folders(admin, digits_project):
    pid = digits_project["id"]
    items = digits_pngs(20)
    r = upload(admin, pid, [("digits.zip", imagefolder_zip(items))])
    assert r.status_code == 201 and r.json()["created"] == 20
    page = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()
    by_name = {s["filename"]: s for s in page["items"]}
    for name, _data, cls in items:
        assert by_name[f"digits/{cls}/{name}"]["source_folder"] == cls


def test_bad_files_are_listed_and_good_ones_imported(admin, digits_project, settings):
    pid = digits_project["id"]
    good = digits_pngs(2)
    png = good[0][1]
    files = [
        (good[0][0], good[0][1]),
        (good[1][0], good[1][1]),
        ("empty.png", b""),
        ("notes.jpg", b"this is plain text, not a JPEG"),
        ("truncated.png", png[: len(png) // 2]),
    ]
    r = upload(admin, pid, files)
    assert r.status_code == 201
    body = r.json()
    assert body["created"] == 2
    reasons = {x["filename"]: x["reason"] for x in body["rejected"]}
    assert reasons["empty.png"] == "empty file"
    assert "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.png"] or "corrupt" in reasons["truncated.png"]
    assert len(_stored_files(settings)) == 4


def test_a_batch_of_only_bad_files_is_422_and_stores_nothing(admin, digits_project, settings):
    pid = digits_project["id"]
    r = upload(admin, pid, [("a.png", b"\x89PNG\r\n\x1a\nbroken"), ("b.gif", b"")])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert {x["filename"] for x in detail["rejected"]} == {"a.png", "b.gif"}
    assert admin.get(f"/projects/{pid}").json()["sample_count"] == 0
    assert _stored_files(settings) == []


def test_zip_with_unsafe_paths_and_nested_zip(admin, digits_project):
    pid = digits_project["id"]
    (name, data, _), = digits_pngs(1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.png", data)
        zf.writestr("/abs.png", data)
        zf.writestr("inner.zip", b"PK\x05\x06" + b"\0" * 18)
        zf.writestr("ok/" + name, data)
        zf.writestr("__MACOSX/._junk", b"junk")
    r = upload(admin, pid, [("mixed.zip", buf.getvalue())])
    assert r.status_code == 201
    assert r.json()["created"] == 1
    reasons = sorted(x["reason"] for x in r.json()["rejected"])
    assert len(reasons) == 3
    assert sum("unsafe path" in x for x in reasons) == 2 and any("nested zip" in x for x in reasons)


def test_image_modes_are_accepted_and_thumbnailed(admin, digits_project):
    pid = digits_project["id"]
    (_, png, _), = digits_pngs(1)
    grey = Image.open(io.BytesIO(png)).resize((40, 30))
    files = []
    for mode, fmt in [("RGB", "JPEG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")]:
        img = grey.convert("RGB").convert(mode) if mode != "I;16" else Image.frombytes(
            "I;16", grey.size, bytes(b for v in grey.tobytes() for b in (0, v)))
        buf = io.BytesIO()
        img.save(buf, fmt)
        files.append((f"{mode.replace(';', '')}.{fmt.lower()}", buf.getvalue()))
    r = upload(admin, pid, files)
    assert r.status_code == 201, r.text
    assert r.json()["created"] == 5, r.json()
    for s in admin.get(f"/projects/{pid}/samples").json()["items"]:
        assert (s["width"], s["height"]) == (40, 30)
        thumb = admin.get(f"/samples/{s['id']}/thumbnail")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(thumb.content)).size == (40, 30)


def test_listing_pages_with_a_cursor_and_serves_original_bytes(admin, digits_project):
    pid = digits_project["id"]
    items = digits_pngs(25)
    upload(admin, pid, [(n, d) for n, d, _ in items])
    seen, cursor = [], None
    while True:
        params = {"limit": 10} | ({"cursor": cursor} if cursor else {})
        page = admin.get(f"/projects/{pid}/samples", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 and len({s["id"] for s in seen}) == 25
    original = dict((n, d) for n, d, _ in items)
    s = seen[7]
    assert admin.get(f"/samples/{s['id']}/image").content == original[s["filename"]]
    assert admin.get(f"/projects/{pid}/samples", params={"cursor": "garbage!"}).status_code == 422
    assert admin.get("/samples/99999/image").status_code == 404


def test_only_admins_import(admin, digits_project):
    pid = digits_project["id"]
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    (n, d, _), = digits_pngs(1)
    assert upload(alice, pid, [(n, d)]).status_code == 403
