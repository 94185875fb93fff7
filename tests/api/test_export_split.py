"""A train/test split of the export (issue 18, item 2): ``test_share`` gives each row a side, fixed per
sample from export to export and the same in every format; the ImageFolder zip holds one ImageFolder per
side; a bad share is a 422 naming it; without the data check's duplicate groups the export says it cannot
keep copies together (``Loupe-Warning``). Groups kept on one side: tests/api/test_duplicates_outliers.py."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest

from tests.conftest import digits_pngs, upload


def _export(admin, pid: int, fmt: str, **params):
    r = admin.get(f"/projects/{pid}/export", params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    return r


def test_each_row_has_a_side_that_stays_and_every_format_agrees(admin):
    pid = admin.post("/projects", json={"name": "split", "classes": ["a", "b"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(60)])
    ids = sorted(s["id"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"])
    first, later = ids[:40], ids[40:]
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "ab"[s % 2]} for s in first])
    assert r.status_code == 201, r.text

    r = _export(admin, pid, "csv", test_share=0.25)
    assert "near-duplicates have not been checked" in r.headers["loupe-warning"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    sides = {int(row["sample_id"]): row["split"] for row in rows}
    assert sorted(sides) == first and set(sides.values()) == {"train", "test"}
    assert 3 <= sum(v == "test" for v in sides.values()) <= 18  # about a quarter of 40
    # The same sides in JSON Lines, in COCO's images and in the zip's folders.
    jsonl = [json.loads(x) for x in _export(admin, pid, "jsonl", test_share=0.25).text.splitlines()]
    assert {x["sample_id"]: x["split"] for x in jsonl} == sides
    coco = _export(admin, pid, "coco", test_share=0.25).json()
    assert {i["id"]: i["split"] for i in coco["images"]} == sides
    with zipfile.ZipFile(io.BytesIO(_export(admin, pid, "imagefolder", test_share=0.25).content)) as z:
        names = z.namelist()
    assert len(names) == 40
    for name in names:
        side, label, file = name.split("/")
        sid = int(file.split("_", 1)[0])
        assert side == sides[sid] and label == "ab"[sid % 2], name
    # More labels later: a sample keeps its side, so a model tested on the old test set is not now trained on it.
    admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "a"} for s in later])
    rows = list(csv.DictReader(io.StringIO(_export(admin, pid, "csv", test_share=0.25).text)))
    again = {int(row["sample_id"]): row["split"] for row in rows}
    assert {s: again[s] for s in first} == sides and sorted(again) == ids
    # No split asked: no column, no warning.
    plain = _export(admin, pid, "csv")
    assert "split" not in plain.text.splitlines()[0] and "loupe-warning" not in plain.headers


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "-0.2", "nan", "most"])
def test_a_share_outside_0_to_1_is_refused_naming_it(admin, bad):
    pid = admin.post("/projects", json={"name": "split", "classes": ["a", "b"]}).json()["id"]
    r = admin.get(f"/projects/{pid}/export", params={"format": "csv", "test_share": bad})
    assert r.status_code == 422 and "test_share" in r.text, r.text
