"""Registered backbones through the REST API with real files and a real worker: each format registers,
embeds a project's samples and survives an API restart; bad files are refused with the reason and
leave nothing behind; the project settings refuse what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.backbones.conftest import REGISTRATIONS
from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, running_worker, upload, wait_for_job


def register(admin: Api, path: Path, **form: str):
    with path.open("rb") as fh:
        return admin.post("/backbones", files={"file": (path.name, fh.read())}, data=form)


def stored_files(settings) -> list[Path]:
    folder = Path(settings.media_dir) / "backbones"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _project(admin: Api, n: int = 40, **settings) -> int:
    cfg = {"auto_pretrain": False, "auto_embed": False, **settings}
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    assert upload(admin, pid, [(n_, d) for n_, d, _ in digits_pngs(n)]).status_code == 201
    return pid


@pytest.mark.parametrize("case", sorted(REGISTRATIONS))
def test_each_format_registers_embeds_and_survives_a_restart(case, loop, backbone_files):
    settings, admin = loop
    key, form, width = REGISTRATIONS[case]
    r = register(admin, backbone_files[key], name=f"team {case}", **form)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["name"], out["format"], out["embedding_dim"], out["input_size"]) == (
        f"team {case}", form["format"], width, 32)

    pid = _project(admin)
    changed = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": out["id"]}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"]["backbone"] == out["id"]
    assert changed.json()["settings"]["backbone_mode"] == "frozen"
    embed = [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["kind"] == "embed"]
    assert len(embed) == 1, "choosing a backbone queues the embed that switches the queue to it"
    with running_worker(settings):
        done = wait_for_job(admin, embed[0]["id"], timeout=90)
    assert done["state"] == "succeeded", done
    assert done["result"]["registered_backbone"] == out["id"] and done["result"]["embedded"] == 40
    project = admin.get(f"/projects/{pid}").json()
    assert project["current_backbone_version"] == done["result"]["backbone_version"]
    versions = admin.get(f"/projects/{pid}/versions").json()
    bv = next(b for b in versions["backbones"] if b["current"])
    assert bv["method"] == "registered" and bv["params"]["registered_backbone"] == out["id"]
    ev = next(e for e in versions["embeddings"] if e["current"])
    # The project's embedding layer applies to a registered backbone too (default concat:3): a ResNet's
    # last three stages (128 + 256 + 512), a one-block TorchScript or ONNX file's only output.
    expected = 128 + 256 + 512 if form["format"] == "torchvision" else width
    assert (ev["kind"], ev["layer"], ev["dim"], ev["count"]) == ("backbone", "concat:3", expected, 40)

    # A new API process over the same database and media store: still listed, still downloadable.
    from app.main import create_app

    with TestClient(create_app(settings)) as client:
        again = Api(client).login_as("admin", ADMIN_PASSWORD)
        listed = again.get("/backbones").json()
        assert [(b["id"], b["name"], b["embedding_dim"]) for b in listed] == [(out["id"], out["name"], width)]
        file = again.get(f"/backbones/{out['id']}/file")
        assert file.status_code == 200 and file.content == backbone_files[key].read_bytes()


@pytest.mark.parametrize("file,form,status,reason", [
    ("garbage", {"format": "torchvision", "architecture": "resnet18"}, 422, "neither a PyTorch state dict"),
    ("garbage", {"format": "torchscript"}, 422, "not a TorchScript module"),
    ("garbage", {"format": "onnx"}, 422, "not an ONNX model"),
    ("pth", {"format": "torchvision", "architecture": "resnet50"}, 422, "does not fit torchvision resnet50"),
    ("pth", {"format": "tensorflow"}, 422, "unknown backbone format 'tensorflow'"),
    ("pth", {"format": "torchvision"}, 422, "needs an architecture"),
])
def test_bad_files_are_refused_with_the_reason_and_nothing_is_stored(file, form, status, reason, loop,
                                                                     backbone_files):
    settings, admin = loop
    r = register(admin, backbone_files[file], name="bad", **form)
    assert r.status_code == status and reason in r.json()["detail"], r.text
    assert admin.get("/backbones").json() == []
    assert stored_files(settings) == []  # not even the upload's temporary copy


def test_settings_refuse_unknown_backbones_and_training_an_onnx_model(loop, backbone_files):
    settings, admin = loop
    onnx = register(admin, backbone_files["onnx"], name="onnx", format="onnx", input_size="32").json()
    pid = _project(admin, n=4)
    before = admin.get(f"/projects/{pid}").json()["settings"]
    r = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": 999}})
    assert r.status_code == 422 and "backbone 999 is not registered" in r.json()["detail"]
    r = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": onnx["id"], "backbone_mode": "continue"}})
    assert r.status_code == 422 and "onnx backbone can only be used frozen" in r.json()["detail"]
    r = admin.patch(f"/projects/{pid}", json={"settings": {"backbone_mode": "mostly"}})
    assert r.status_code == 422
    assert admin.get(f"/projects/{pid}").json()["settings"] == before
    assert admin.get(f"/projects/{pid}/jobs").json() == []  # refused changes queue nothing

    ok = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": onnx["id"]}})
    assert ok.status_code == 200 and ok.json()["settings"]["backbone"] == onnx["id"]
    cleared = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": None}})
    assert cleared.status_code == 200 and cleared.json()["settings"]["backbone"] is None
    r = admin.post("/projects", json={"name": "other", "classes": ["a", "b"], "settings": {"backbone": 12345}})
    assert r.status_code == 422 and "not registered" in r.json()["detail"]
    assert [p["name"] for p in admin.get("/projects").json()] == ["digits"]


def test_names_are_unique_and_only_admins_register(loop, backbone_files):
    settings, admin = loop
    assert register(admin, backbone_files["onnx"], name="shared", format="onnx").status_code == 201
    dup = register(admin, backbone_files["torchscript"], name="shared", format="torchscript")
    assert dup.status_code == 409 and "already registered" in dup.json()["detail"]
    annotator = admin.new_user("ann")
    assert register(annotator, backbone_files["onnx"], name="mine", format="onnx").status_code == 403
    assert [b["name"] for b in annotator.get("/backbones").json()] == ["shared"]
    assert annotator.get("/backbones/1/file").status_code == 403
    assert len(stored_files(settings)) == 1


def test_a_backbone_is_deleted_only_when_no_project_has_chosen_it_and_its_file_goes_with_it(loop, backbone_files):
    settings, admin = loop
    onnx = register(admin, backbone_files["onnx"], name="team onnx", format="onnx", input_size="32").json()
    twin = register(admin, backbone_files["onnx"], name="same bytes", format="onnx", input_size="32").json()
    assert len(stored_files(settings)) == 1  # the same bytes are stored once
    pid = _project(admin, n=4)
    assert admin.patch(f"/projects/{pid}", json={"settings": {"backbone": onnx["id"]}}).status_code == 200

    assert admin.new_user("ann").delete(f"/backbones/{onnx['id']}").status_code == 403
    refused = admin.delete(f"/backbones/{onnx['id']}")
    assert refused.status_code == 409 and "'digits'" in refused.json()["detail"], refused.text
    assert admin.get(f"/backbones/{onnx['id']}").status_code == 200 and len(stored_files(settings)) == 1

    assert admin.patch(f"/projects/{pid}", json={"settings": {"backbone": None}}).status_code == 200
    assert admin.delete(f"/backbones/{onnx['id']}").status_code == 204
    assert admin.get(f"/backbones/{onnx['id']}").status_code == 404
    # Its twin still downloads: the shared file stays until the last backbone keeping it goes.
    assert admin.get(f"/backbones/{twin['id']}/file").content == backbone_files["onnx"].read_bytes()
    assert admin.delete(f"/backbones/{twin['id']}").status_code == 204
    assert stored_files(settings) == [] and admin.get("/backbones").json() == []
    assert admin.delete(f"/backbones/{twin['id']}").status_code == 404
    r = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": twin["id"]}})
    assert r.status_code == 422 and "not registered" in r.json()["detail"]


def test_two_registrations_racing_for_one_name_give_one_backbone_and_a_409(loop, backbone_files):
    """Both requests pass the name check before either stores its row (each spends seconds in the
    file check): the unique index decides, and the loser answers 409 with nothing stored (it was a 500)."""
    from concurrent.futures import ThreadPoolExecutor

    settings, admin = loop
    files = [(backbone_files["onnx"], "onnx"), (backbone_files["torchscript"], "torchscript")]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda f: register(admin, f[0], name="twin", format=f[1]), files))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    assert "already registered" in next(r for r in answers if r.status_code == 409).json()["detail"]
    assert [b["name"] for b in admin.get("/backbones").json()] == ["twin"]
    assert len(stored_files(settings)) == 1


def _checker_running() -> bool:
    """Whether a ``python -m ml.backbones.check`` child of this process (the app runs in it) runs now
    (Linux: /proc); another test's checker, running beside this one under pytest-xdist, is not it."""
    import os

    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                if b"ml.backbones.check" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


def test_labelling_goes_on_while_a_backbone_file_is_checked(loop, backbone_files):
    """On SQLite a write request's first query takes the write lock; the check of a backbone file (seconds:
    a subprocess loads the network) now runs before it, so a label call does not wait for the check."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    settings, admin = loop
    pid = _project(admin, n=4)
    sid = admin.get(f"/projects/{pid}/samples").json()["items"][0]["id"]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        registering = pool.submit(register, admin, backbone_files["pth"], name="r18", format="torchvision",
                                  architecture="resnet18", input_size="32")
        while not _checker_running() and not registering.done():
            time.sleep(0.05)  # the upload arrives, then the check begins (a subprocess, seconds)
        assert not registering.done(), registering.result().text
        label_started = time.monotonic()
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "3"}).status_code == 201
        label_s = time.monotonic() - label_started
        assert registering.result().status_code == 201
        register_s = time.monotonic() - started
    assert label_s < max(1.0, register_s / 3), (label_s, register_s)
