"""An ImageFolder zip's folder labels are written with their samples (``labels_from_folders``): a sample
whose sub-folder names a class is inserted already labelled, its imported revision and the counters in
its batch's own transaction. No label is ever lost: when the import labelled its samples after they were
committed, a database error in between left them stored unlabelled, and sending the zip again counted
them as duplicates, so the labels the expert's folders gave them were gone for good. What it stores must
be what labelling the samples after the import stored (``add_labels``, source 'import', no user): the
same revisions, sample columns, counts, histories and metrics."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from app.db import session_scope
from app.models import Project
from app.services import imports
from app.services.labels import LabelRequest, add_labels
from tests.conftest import digits_pngs, imagefolder_zip, upload
from tests.text.test_text_import_labels import _api_view, _state

CLASSES = [str(i) for i in range(10)]


def _project(admin, name: str) -> int:
    r = admin.post("/projects", json={"name": name, "classes": CLASSES,
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _upload_zip(admin, pid: int, data: bytes, labels_from_folders: bool = True):
    return admin.post(f"/projects/{pid}/samples", params={"labels_from_folders": str(labels_from_folders).lower()},
                      files=[("files", ("set.zip", data))])


def _zip() -> tuple[bytes, list[tuple[str, bytes]], dict[str, str]]:
    """A zip of 30 digits in their class folders, 3 in a folder naming no class ('cat'), and a copy of the
    first digit in another class's folder (a duplicate within the zip); 3 loose digits the project holds
    before (duplicates of the zip's); and each new file's folder by its name in the zip."""
    items = digits_pngs(30)
    strays = [(name, data, "cat") for name, data, _ in digits_pngs(3, offset=40)]
    copy = [("copy.png", items[0][1], "5")]
    loose = [(name, data) for name, data, _ in items[25:28]]
    folders = {f"digits/{cls}/{name}": cls for name, _data, cls in items[:25] + items[28:] + strays}
    return imagefolder_zip(items + strays + copy), loose, folders


def test_folder_labels_written_with_their_samples_are_those_labelling_after_the_import_wrote(admin, settings):
    data, loose, folders = _zip()
    named = {n for n, cls in folders.items() if cls in CLASSES}
    pid = _project(admin, "at insert")
    assert upload(admin, pid, loose).status_code == 201
    r = _upload_zip(admin, pid, data)
    assert r.status_code == 201, r.text
    assert r.json() == {"created": 30, "duplicates": 4, "rejected": [], "labelled": 27, "unknown_labels": ["cat"]}
    # The reference: the same zip imported unlabelled, then its folder labels stored as an import's
    # (add_labels, source 'import', no user), after the import.
    ref = _project(admin, "after")
    assert upload(admin, ref, loose).status_code == 201
    assert _upload_zip(admin, ref, data, labels_from_folders=False).json()["labelled"] == 0
    with session_scope(settings.database_url) as s:
        ids = dict(s.execute(text("SELECT filename, id FROM samples WHERE project_id = :p"), {"p": ref}).tuples().all())
        project = s.get(Project, ref)
        assert project is not None
        add_labels(s, project, None, [LabelRequest(ids[n], folders[n]) for n in sorted(named)], source="import")

    got, want = _state(settings.database_url, pid), _state(settings.database_url, ref)
    for key in ("samples", "revisions", "reviews", "folders"):
        assert got[key] == want[key], key
    assert len(got["revisions"]) == 27 and got["reviews"] == 0 and len(got["samples"]) == 33
    assert {n: s[:2] for n, s in got["samples"].items()} == {
        n: ("labelled", folders[n]) if n in named else ("unlabelled", None) for n in got["samples"]}
    for state in (got, want):
        assert state["counters"] == ((0, 27, 27, state["audit_labelled"]),)

    view, ref_view = _api_view(admin, pid), _api_view(admin, ref)
    assert view["counts"] == ref_view["counts"] == (33, 27)
    assert view["by_status"] == ref_view["by_status"]
    assert view["histories"] == ref_view["histories"]
    assert all(h == [{"label": folders[n], "action": "set", "source": "import", "opinion": "primary",
                      "username": None, "suggested_label": None, "suggested_confidence": None,
                      "model_version": None, "duration_ms": None}] for n, h in view["histories"].items())
    assert view["metrics"] == ref_view["metrics"]
    assert view["metrics"]["human_label_count"] == 0 and view["metrics"]["labelled_count"] == 27

    # Sent again: every file a duplicate, nothing labelled twice.
    again = _upload_zip(admin, pid, data)
    assert again.status_code == 200 and (again.json()["created"], again.json()["labelled"]) == (0, 0), again.text
    assert _state(settings.database_url, pid) == got


def _refuse_label(url: str, label: str, refuse: bool) -> None:
    """The database refuses (or again takes) a label revision of ``label``: a constraint on PostgreSQL, a
    trigger on SQLite."""
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            pg = engine.dialect.name == "postgresql"
            if refuse:
                c.execute(text(f"ALTER TABLE labels ADD CONSTRAINT test_refused CHECK (label <> '{label}')") if pg
                          else text(f"CREATE TRIGGER test_refused BEFORE INSERT ON labels WHEN NEW.label = '{label}' "
                                    "BEGIN SELECT RAISE(ABORT, 'label refused here'); END"))
            else:
                c.execute(text("ALTER TABLE labels DROP CONSTRAINT test_refused") if pg
                          else text("DROP TRIGGER test_refused"))
    finally:
        engine.dispose()


def test_an_import_stopped_by_the_database_loses_no_folder_label(admin, settings, monkeypatch):
    """Batches of 8; the database refuses the label of a digit of the second batch. Every sample stored
    has its folder's label; once the database takes it again, sending the same zip imports the rest,
    labelled, and every digit ends labelled with its folder, once."""
    monkeypatch.setattr(imports, "BATCH", 8)
    items = digits_pngs(30)
    refused = next(cls for _n, _d, cls in items[8:] if cls not in {c for _n, _d, c in items[:8]})
    data = imagefolder_zip(items)
    folders = {f"digits/{cls}/{name}": cls for name, _data, cls in items}
    pid = _project(admin, "refused")
    _refuse_label(settings.database_url, refused, True)
    r = _upload_zip(admin, pid, data)
    assert r.status_code in (500, 503), r.text
    state = _state(settings.database_url, pid)
    assert {n: s[:2] for n, s in state["samples"].items()} == {n: ("labelled", folders[n]) for n in state["samples"]}
    assert "8 new samples were stored" in r.json()["detail"], r.text
    assert sorted(rev[:4] for rev in state["revisions"]) == sorted((n, None, "set", folders[n])
                                                                   for n in state["samples"])
    assert state["counters"] == ((0, 8, 8, state["audit_labelled"]),)

    _refuse_label(settings.database_url, refused, False)
    again = _upload_zip(admin, pid, data)
    assert again.status_code == 201, again.text
    assert (again.json()["created"], again.json()["duplicates"], again.json()["labelled"]) == (22, 8, 22), again.text
    state = _state(settings.database_url, pid)
    assert {n: s[:2] for n, s in state["samples"].items()} == {n: ("labelled", cls) for n, cls in folders.items()}
    assert sorted(rev[:4] for rev in state["revisions"]) == sorted((n, None, "set", c) for n, c in folders.items())
    assert state["counters"] == ((0, 30, 30, state["audit_labelled"]),)
    project = admin.get(f"/projects/{pid}").json()
    assert (project["sample_count"], project["labelled_count"]) == (30, 30)
