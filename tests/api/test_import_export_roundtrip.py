"""Import and export that round-trip (issue 17, item 6), over HTTP on SQLite and PostgreSQL: an ImageFolder
zip uploaded with ``labels_from_folders`` keeps its sub-folders as imported labels (not an expert's), the
export gives them back in every format (COCO-style JSON among them), and ``suggestions`` adds the model's
confident suggestions, marked as such."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from tests.conftest import digits_pngs, imagefolder_zip, running_worker, upload, wait_for_job

CLASSES = [str(i) for i in range(10)]


def _project(admin, name: str, **settings) -> int:
    cfg = {"auto_pretrain": False, "auto_embed": False} | settings
    r = admin.post("/projects", json={"name": name, "classes": CLASSES, "settings": cfg})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload_zip(admin, pid: int, data: bytes, labels_from_folders: bool | None = True):
    params = {} if labels_from_folders is None else {"labels_from_folders": str(labels_from_folders).lower()}
    return admin.post(f"/projects/{pid}/samples", params=params, files=[("files", ("set.zip", data))])


def _export(admin, pid: int, fmt: str, **params):
    r = admin.get(f"/projects/{pid}/export", params={"format": fmt, **params})
    assert r.status_code == 200, r.text
    return r


def _csv(admin, pid: int, **params) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_export(admin, pid, "csv", **params).text)))


def _jsonl(admin, pid: int, **params) -> list[dict]:
    return [json.loads(line) for line in _export(admin, pid, "jsonl", **params).text.splitlines()]


def _zip_pairs(admin, pid: int, **params) -> set[tuple[str, str]]:
    """(class folder, sha256 of the file) of every image in the ImageFolder export."""
    zf = zipfile.ZipFile(io.BytesIO(_export(admin, pid, "imagefolder", **params).content))
    return {(m.split("/")[0], hashlib.sha256(zf.read(m)).hexdigest()) for m in zf.namelist() if "/" in m}


def check_coco(doc: dict, classes: list[str]) -> None:
    """A COCO-style document for image-level classification: complete categories, unique ids, every
    annotation's image and category present, one annotation per image."""
    assert set(doc) >= {"info", "images", "categories", "annotations"}
    assert [c["name"] for c in sorted(doc["categories"], key=lambda c: c["id"])] == classes
    cat_ids = {c["id"] for c in doc["categories"]}
    assert len(cat_ids) == len(classes)
    image_ids = [i["id"] for i in doc["images"]]
    assert len(set(image_ids)) == len(image_ids)
    assert all(i["width"] > 0 and i["height"] > 0 and i["file_name"] for i in doc["images"])
    ann_ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ann_ids)) == len(ann_ids)
    assert {a["image_id"] for a in doc["annotations"]} <= set(image_ids)
    assert {a["category_id"] for a in doc["annotations"]} <= cat_ids
    assert sorted(a["image_id"] for a in doc["annotations"]) == sorted(image_ids)


def test_an_imagefolder_zip_keeps_its_folders_as_imported_labels_and_exports_them_back(admin):
    items = digits_pngs(30)
    strays = [(name, data, "cat") for name, data, _ in digits_pngs(3, offset=40)]  # a folder naming no class
    pid = _project(admin, "first")
    r = _upload_zip(admin, pid, imagefolder_zip(items + strays))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["created"], body["labelled"], body["unknown_labels"]) == (33, 30, ["cat"])

    # Imported labels: the samples are labelled, by no expert.
    project = admin.get(f"/projects/{pid}").json()
    assert (project["sample_count"], project["labelled_count"]) == (33, 30)
    metrics = admin.get(f"/projects/{pid}/metrics").json()
    assert metrics["human_label_count"] == 0 and metrics["labelled_count"] == 30
    truth = {hashlib.sha256(data).hexdigest(): cls for _, data, cls in items}
    rows = _csv(admin, pid)
    assert {(x["content_hash"], x["label"]) for x in rows} == set(truth.items())
    assert {(x["source"], x["annotator"], x["confidence"]) for x in rows} == {("import", "", "")}
    assert {(x["content_hash"], x["label"], x["source"]) for x in _jsonl(admin, pid)} == \
        {(h, c, "import") for h, c in truth.items()}
    assert _zip_pairs(admin, pid) == {(c, h) for h, c in truth.items()}
    doc = _export(admin, pid, "coco").json()
    check_coco(doc, CLASSES)
    names = {c["id"]: c["name"] for c in doc["categories"]}
    hashes = {i["id"]: i["sha256"] for i in doc["images"]}
    assert {(hashes[a["image_id"]], names[a["category_id"]]) for a in doc["annotations"]} == set(truth.items())
    assert {a["source"] for a in doc["annotations"]} == {"import"}

    # An expert's label beside them is exported as human, and counted as such.
    one = admin.get(f"/projects/{pid}/samples", params={"status": "unlabelled"}).json()["items"][0]
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": one["id"], "label": "7"}).status_code == 201
    sources = {int(x["sample_id"]): (x["source"], x["annotator"]) for x in _csv(admin, pid)}
    assert sources[one["id"]] == ("human", "admin")
    assert admin.get(f"/projects/{pid}/metrics").json()["human_label_count"] == 1

    # The round trip: the exported ImageFolder zip, imported into a new project, gives the same labels.
    exported = _export(admin, pid, "imagefolder").content
    again = _project(admin, "second")
    r = _upload_zip(admin, again, exported)
    assert r.status_code == 201 and r.json()["labelled"] == 31, r.text
    assert {(x["content_hash"], x["label"]) for x in _csv(admin, again)} == \
        {(x["content_hash"], x["label"]) for x in _csv(admin, pid)}

    # Without the option (or with it false) the folders stay folders: nothing is labelled.
    for flag in (None, False):
        plain = _project(admin, f"plain-{flag}")
        r = _upload_zip(admin, plain, imagefolder_zip(items), labels_from_folders=flag)
        assert r.status_code == 201 and r.json()["labelled"] == 0, r.text
        assert admin.get(f"/projects/{plain}").json()["labelled_count"] == 0


def test_bad_export_format_or_threshold_is_a_422_naming_it(admin):
    pid = _project(admin, "p")
    for params, field in (({"format": "xml"}, "format"), ({"suggestions": "1.5"}, "suggestions"),
                          ({"suggestions": "-0.1"}, "suggestions"), ({"suggestions": "lots"}, "suggestions"),
                          ({"suggestions": "nan"}, "suggestions")):
        r = admin.get(f"/projects/{pid}/export", params=params)
        assert r.status_code == 422, (params, r.text)
        assert any(e["loc"][-1] == field for e in r.json()["detail"]), (params, r.text)
    r = admin.post(f"/projects/{pid}/samples", params={"labels_from_folders": "perhaps"},
                   files=[("files", ("a.zip", imagefolder_zip(digits_pngs(2))))])
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "labels_from_folders", r.text


def test_suggestions_at_or_above_the_threshold_are_exported_as_the_models(admin, settings):
    pid = _project(admin, "suggest", auto_embed=True, retrain_every=100_000)
    items = digits_pngs(80)
    labelled, rest = items[:40], items[40:]
    assert _upload_zip(admin, pid, imagefolder_zip(labelled)).json()["labelled"] == 40
    assert upload(admin, pid, [(name, data) for name, data, _ in rest]).status_code == 201
    with running_worker(settings):
        for job in admin.get(f"/projects/{pid}/jobs").json():
            assert wait_for_job(admin, job["id"])["state"] == "succeeded", job
        train = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        assert wait_for_job(admin, train["id"])["state"] == "succeeded"
    unlabelled = {s["id"] for s in admin.get(f"/projects/{pid}/samples",
                                            params={"status": "unlabelled", "limit": 1000}).json()["items"]}
    preds = {p["sample_id"]: (p["label"], p["confidence"])
             for p in admin.get(f"/projects/{pid}/predictions").json()["items"] if p["sample_id"] in unlabelled}
    assert len(preds) == 40
    confidences = sorted(c for _, c in preds.values())
    threshold = round(confidences[len(confidences) // 2], 3)  # about half above, half below
    expected = {sid: lab for sid, (lab, conf) in preds.items() if conf >= threshold}
    assert 0 < len(expected) < 40

    rows = _csv(admin, pid, suggestions=threshold)
    model = {int(x["sample_id"]): x for x in rows if x["source"] == "model"}
    assert {sid: x["label"] for sid, x in model.items()} == expected
    assert all(float(x["confidence"]) >= threshold and x["annotator"] == "" and x["labelled_at"] == ""
               for x in model.values())
    assert {x["source"] for x in rows if x["source"] != "model"} == {"import"} and len(rows) == 40 + len(expected)
    assert not [x for x in _csv(admin, pid) if x["source"] == "model"]  # only when asked
    assert len([x for x in _jsonl(admin, pid, suggestions=0) if x["source"] == "model"]) == 40
    assert not [x for x in _jsonl(admin, pid, suggestions=1) if x["source"] == "model" and x["confidence"] < 1]

    doc = _export(admin, pid, "coco", suggestions=threshold).json()
    check_coco(doc, CLASSES)
    scored = {a["image_id"]: a for a in doc["annotations"] if a["source"] == "model"}
    assert set(scored) == set(expected) and all(a["score"] >= threshold for a in scored.values())
    assert doc["info"]["suggestions"] == threshold

    zf = zipfile.ZipFile(io.BytesIO(_export(admin, pid, "imagefolder", suggestions=threshold).content))
    listed = list(csv.DictReader(io.StringIO(zf.read("labels.csv").decode())))
    assert sorted(x["path"] for x in listed) == sorted(m for m in zf.namelist() if m != "labels.csv")
    assert {int(x["sample_id"]) for x in listed if x["source"] == "model"} == set(expected)
    assert all(x["path"].startswith(f"{x['label']}/") for x in listed)
