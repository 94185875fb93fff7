"""A text upload's labels are written with their samples (issue 19, import speed): a document whose label
names a class is inserted already labelled, its imported revision and the counters in its batch's own
transaction. What it stores must be what labelling the samples after the import stored (``add_labels``,
source 'import', no user, as the image import's folder labels once were): the same revisions, sample
columns, counts (``sample_counts`` on PostgreSQL, the label counters), history and metrics; and a batch
that fails leaves none of its samples, texts or labels."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from app.db import session_scope
from app.models import Project
from app.services import text_import
from app.services.labels import LabelRequest, add_labels
from tests.text.test_text_import import CLASSES, ag_news, csv_of

UNKNOWN = "Politics"  # names no class of the project


def _upload(admin, pid: int, rows: list[list[str]]):
    return admin.post(f"/projects/{pid}/samples", files=[("files", ("news.csv", csv_of(rows), "text/csv"))])


def _project(admin, name: str) -> int:
    r = admin.post("/projects", json={"name": name, "kind": "text", "classes": CLASSES,
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _documents() -> tuple[list[list[str]], dict[str, str | None]]:
    """(id, text, label) rows with every kind of label (a class, one that names none, none at all), a
    bad row (line 9: an empty text) and a duplicate of row d0; and each id's label as given."""
    docs = ag_news(40)
    rows: list[list[str]] = []
    given: dict[str, str | None] = {}
    for i, d in enumerate(docs):
        label = UNKNOWN if i % 13 == 5 else "" if i % 11 == 7 else d["label"]
        rows.append([f"d{i}", d["text"], label])
        given[f"d{i}"] = label or None
    rows.insert(7, ["bad", "   ", "World"])  # line 9 of the file (1 = the header)
    rows.append(["copy", docs[0]["text"].upper(), "Sports"])  # the same document as d0
    return rows, given


def _state(url: str, pid: int) -> dict:
    """Per file name, the sample's label columns and its revisions (less ids and times); the counters."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            samples = {r[0]: tuple(r[1:]) for r in c.execute(text(
                "SELECT filename, status, label, awaiting_second, leased_by, lease_expires_at, lease_client "
                "FROM samples WHERE project_id = :p"), {"p": pid})}
            revisions = sorted(tuple(r) for r in c.execute(text(
                "SELECT s.filename, l.user_id, l.action, l.label, l.undoes_id, l.source, l.opinion, "
                "l.model_version_id, l.suggested_label, l.suggested_confidence, l.duration_ms, l.batch_id "
                "FROM labels l JOIN samples s ON s.id = l.sample_id WHERE l.project_id = :p"), {"p": pid}))
            counters = tuple(c.execute(text(
                "SELECT shard, set_labels, labelled, audit_labelled FROM label_counts WHERE project_id = :p "
                "ORDER BY shard"), {"p": pid}).all())
            audit_labelled = c.execute(text(
                "SELECT count(*) FROM samples WHERE project_id = :p AND is_audit AND status = 'labelled'"),
                {"p": pid}).scalar_one()
            reviews = c.execute(text("SELECT count(*) FROM reviews WHERE project_id = :p"), {"p": pid}).scalar_one()
            texts = c.execute(text("SELECT count(*) FROM sample_texts WHERE project_id = :p"),
                              {"p": pid}).scalar_one()
            folders = dict(c.execute(text("SELECT filename, source_folder FROM samples WHERE project_id = :p"),
                                     {"p": pid}).tuples().all())
    finally:
        engine.dispose()
    return {"samples": samples, "revisions": revisions, "counters": counters, "audit_labelled": audit_labelled,
            "reviews": reviews, "texts": texts, "folders": folders}


def _api_view(admin, pid: int) -> dict:
    """What the API shows of the labels: counts (``sample_counts`` on PostgreSQL), the browser's status
    filters, the metrics, and every labelled sample's history by file name."""
    project = admin.get(f"/projects/{pid}").json()
    by_status, ids = {}, {}
    for status in ("labelled", "unlabelled"):
        items = admin.get(f"/projects/{pid}/samples", params={"status": status, "limit": 1000}).json()["items"]
        by_status[status] = sorted((s["filename"], s["label"]) for s in items)
        ids |= {s["filename"]: s["id"] for s in items}
    histories = {name: [{k: v for k, v in h.items() if k not in ("id", "sample_id", "created_at")}
                        for h in admin.get(f"/samples/{ids[name]}").json()["history"]]
                 for name, _label in by_status["labelled"]}
    metrics = admin.get(f"/projects/{pid}/metrics").json()
    return {"counts": (project["sample_count"], project["labelled_count"]), "by_status": by_status,
            "histories": histories, "metrics": metrics}


def test_labels_written_with_their_samples_are_those_labelling_after_the_import_wrote(admin, settings):
    rows, given = _documents()
    header = ["id", "text", "label"]
    # Labelled at insert: the import as it is.
    pid = _project(admin, "at insert")
    r = _upload(admin, pid, [header] + rows)
    assert r.status_code == 201, r.text
    out = r.json()
    named = {n for n, lab in given.items() if lab in CLASSES}
    assert out["created"] == 40 and out["duplicates"] == 1 and out["labelled"] == len(named)
    assert out["unknown_labels"] == [UNKNOWN]
    assert [(b["line"], "empty" in b["reason"]) for b in out["rejected"]] == [(9, True)]
    # The reference: the same documents imported unlabelled, then their labels stored after the import
    # (add_labels, source 'import', no user), where they name a class.
    ref = _project(admin, "after")
    assert _upload(admin, ref, [header[:2]] + [row[:2] for row in rows]).json()["labelled"] == 0
    with session_scope(settings.database_url) as s:
        ids = dict(s.execute(text("SELECT filename, id FROM samples WHERE project_id = :p"), {"p": ref}).tuples().all())
        project = s.get(Project, ref)
        assert project is not None
        add_labels(s, project, None, [LabelRequest(ids[n], str(given[n])) for n in sorted(named)], source="import")

    got, want = _state(settings.database_url, pid), _state(settings.database_url, ref)
    for key in ("samples", "revisions", "reviews", "texts"):
        assert got[key] == want[key], key
    assert len(got["revisions"]) == len(named) and got["reviews"] == 0 and got["texts"] == 40
    assert {n: s[:2] for n, s in got["samples"].items()} == {
        n: ("labelled", lab) if lab in CLASSES else ("unlabelled", None) for n, lab in given.items()}
    # The label given is kept as the sample's folder, whether or not it names a class.
    assert got["folders"] == given and set(want["folders"].values()) == {None}
    # The counters: one row for labels with no user, the audit share as each project drew it at import.
    for state in (got, want):
        assert state["counters"] == ((0, len(named), len(named), state["audit_labelled"]),)

    view, ref_view = _api_view(admin, pid), _api_view(admin, ref)
    assert view["counts"] == ref_view["counts"] == (40, len(named))
    assert view["by_status"] == ref_view["by_status"]
    assert len(view["by_status"]["labelled"]) == len(named)
    assert view["histories"] == ref_view["histories"]
    assert all(h == [{"label": given[n], "action": "set", "source": "import", "opinion": "primary", "username": None,
                      "suggested_label": None, "suggested_confidence": None, "model_version": None,
                      "duration_ms": None}] for n, h in view["histories"].items())
    assert view["metrics"] == ref_view["metrics"]

    # Sent again: every document a duplicate, nothing labelled twice.
    again = _upload(admin, pid, [header] + rows)
    assert again.status_code == 200 and again.json()["created"] == 0 and again.json()["labelled"] == 0
    assert _state(settings.database_url, pid) == got


def test_a_batch_whose_labels_fail_leaves_nothing_of_it(admin, settings, monkeypatch):
    """Batches of 5; the database refuses the label of a row of the second batch: the first batch stays
    whole (samples, texts, labels, counts) and nothing of the second or later is written."""
    monkeypatch.setattr(text_import, "BATCH", 5)
    pid = _project(admin, "refused")
    docs = ag_news(12)
    labels = ["World", "Business", "World", "Business", "World", "World", "Sports", "World", "World", "World",
              "Business", "World"]
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as c:
            if engine.dialect.name == "postgresql":
                c.execute(text("ALTER TABLE labels ADD CONSTRAINT test_no_sports CHECK (label <> 'Sports')"))
            else:
                c.execute(text("CREATE TRIGGER test_no_sports BEFORE INSERT ON labels WHEN NEW.label = 'Sports' "
                               "BEGIN SELECT RAISE(ABORT, 'no Sports label here'); END"))
    finally:
        engine.dispose()
    r = _upload(admin, pid, [["id", "text", "label"]] + [[f"d{i}", d["text"], lab]
                                                         for i, (d, lab) in enumerate(zip(docs, labels, strict=True))])
    assert r.status_code in (500, 503), r.text
    assert "5 new samples were stored" in r.json()["detail"], r.text
    state = _state(settings.database_url, pid)
    assert sorted(state["samples"]) == [f"d{i}" for i in range(5)] and state["texts"] == 5
    assert {n: s[:2] for n, s in state["samples"].items()} == {f"d{i}": ("labelled", labels[i]) for i in range(5)}
    assert [rev[:4] for rev in state["revisions"]] == [(f"d{i}", None, "set", labels[i]) for i in range(5)]
    assert state["counters"] == ((0, 5, 5, state["audit_labelled"]),)
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 5
