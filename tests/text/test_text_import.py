"""Text projects (issue 19): the kind at creation, the text import (CSV, JSON Lines, plain text, zips of
.txt), its report of bad rows by line, duplicates by normalised content, limits, nothing half-written,
GET /samples/{sid}/text and the queue items' text. Real documents from the AG News pool."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, upload

AG_NEWS = ROOT.parent / "shared" / "data" / "text" / "ag_news" / "train.jsonl"
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def ag_news(n: int, offset: int = 0) -> list[dict]:
    if not AG_NEWS.exists():
        pytest.skip(f"{AG_NEWS} is missing")
    with AG_NEWS.open() as fh:
        rows = [json.loads(line) for _, line in zip(range(offset + n), fh, strict=False)]
    return rows[offset:]


def csv_of(rows: list[list[str]]) -> bytes:
    import csv

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode()


@pytest.fixture
def text_project(admin) -> dict:
    r = admin.post("/projects", json={"name": "news", "kind": "text", "classes": CLASSES,
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()


def counts(db_url: str, pid: int) -> tuple[int, int]:
    """(samples, texts) of the project, straight from the tables."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as c:
            return (c.execute(text("SELECT count(*) FROM samples WHERE project_id = :p"), {"p": pid}).scalar_one(),
                    c.execute(text("SELECT count(*) FROM sample_texts WHERE project_id = :p"), {"p": pid}).scalar_one())
    finally:
        engine.dispose()


def test_kind_is_chosen_at_creation(admin, text_project):
    assert text_project["kind"] == "text"
    r = admin.post("/projects", json={"name": "pictures", "classes": ["a"]})
    assert r.status_code == 201 and r.json()["kind"] == "image"
    assert admin.get(f"/projects/{text_project['id']}").json()["kind"] == "text"
    bad = admin.post("/projects", json={"name": "sounds", "kind": "audio", "classes": ["a"]})
    assert bad.status_code == 422 and "kind" in bad.text


def test_a_new_text_project_gets_the_text_defaults(admin, text_project):
    """A text project's default strategy is the one that won the text benchmarks (typical_first); an image
    project keeps mixed, and a strategy named at creation is kept."""
    assert text_project["settings"]["strategy"] == "typical_first"
    assert text_project["settings"]["estimator"] == "logistic"
    assert admin.get(f"/projects/{text_project['id']}").json()["settings"]["strategy"] == "typical_first"
    image = admin.post("/projects", json={"name": "pictures", "classes": ["a"]}).json()
    assert image["settings"]["strategy"] == "mixed"
    chosen = admin.post("/projects", json={"name": "tickets", "kind": "text", "classes": ["a"],
                                           "settings": {"strategy": "margin"}}).json()
    assert chosen["settings"]["strategy"] == "margin"


def test_csv_with_named_columns_labels_and_ids(admin, text_project, settings):
    pid = text_project["id"]
    rows = ag_news(30)
    body = csv_of([["doc", "body", "topic"]] + [[f"n{i}", r["text"], r["label"]] for i, r in enumerate(rows)])
    r = admin.post(f"/projects/{pid}/samples", files=[("files", ("news.csv", body))],
                   data={"text_column": "body", "label_column": "topic", "id_column": "doc"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["created"] == 30 and out["duplicates"] == 0 and out["rejected"] == []
    assert out["labelled"] == 30 and out["unknown_labels"] == []
    assert counts(settings.database_url, pid) == (30, 30)
    page = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
    by_name = {s["filename"]: s for s in page}
    first = by_name["n0"]
    assert first["label"] == rows[0]["label"] and first["status"] == "labelled"
    got = admin.get(f"/samples/{first['id']}/text")
    assert got.status_code == 200 and got.json()["text"] == rows[0]["text"].strip()
    assert admin.get(f"/samples/{first['id']}/image").status_code == 404


def test_jsonl_plain_text_and_zip_of_txt(admin, text_project, settings):
    pid = text_project["id"]
    rows = ag_news(20)
    jsonl = "\n".join(json.dumps(r) for r in rows[:8]).encode()
    plain = "\n".join(r["text"].strip() for r in rows[8:14]).encode()  # one document a line
    # Folder names cannot hold "Sci/Tech": six documents of the other classes.
    in_zip = [r for r in ag_news(40, offset=20) if "/" not in r["label"]][:6]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, r in enumerate(in_zip):
            zf.writestr(f"corpus/{r['label']}/doc{i}.txt", r["text"] + "\n")
        zf.writestr("corpus/Unknown topic/other.txt", "a document in a folder that names no class")
    r = upload(admin, pid, [("a.jsonl", jsonl), ("b.txt", plain), ("c.zip", buf.getvalue())])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["created"] == 21 and out["rejected"] == [], out
    # 8 labels from the JSON Lines' label field, 6 from the zip's sub-folders; none from plain text.
    assert out["labelled"] == 14 and out["unknown_labels"] == ["Unknown topic"]
    assert counts(settings.database_url, pid) == (21, 21)
    names = {s["filename"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]}
    assert "b.txt:1" in names and "a.jsonl:8" in names and "c.zip/corpus/Unknown topic/other.txt" in names


def test_bad_rows_are_named_by_line_and_the_rest_imported(admin, text_project, settings):
    pid = text_project["id"]
    rows = ag_news(6)
    lines = ["text,label", f'"{rows[0]["text"]}",World',
             'only,two,three',  # line 3: three fields
             f'"{rows[1]["text"]}",Sports',
             ',Business',  # line 5: empty text
             f'"{rows[2]["text"]}",Business',
             '"x" y,World',  # line 7: a stray quote (strict CSV)
             f'"{rows[3]["text"]}",World']
    jsonl = "\n".join([json.dumps(rows[4]), "{not json", json.dumps({"label": "World"}), json.dumps(rows[5])])
    r = upload(admin, pid, [("bad.csv", "\n".join(lines).encode()), ("bad.jsonl", jsonl.encode()),
                            ("notes.pdf", b"%PDF-1.4")])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["created"] == 6, out
    bad = {(b["filename"], b["line"]): b["reason"] for b in out["rejected"]}
    assert set(bad) == {("bad.csv", 3), ("bad.csv", 5), ("bad.csv", 7), ("bad.jsonl", 2), ("bad.jsonl", 3),
                        ("notes.pdf", None)}, bad
    assert "3 fields" in bad[("bad.csv", 3)] and "empty" in bad[("bad.csv", 5)]
    assert "malformed" in bad[("bad.csv", 7)] and "JSON" in bad[("bad.jsonl", 2)]
    assert "'text'" in bad[("bad.jsonl", 3)] and "not a text file" in bad[("notes.pdf", None)]
    assert counts(settings.database_url, pid) == (6, 6)


def test_duplicates_by_normalised_content(admin, text_project, settings):
    pid = text_project["id"]
    doc = ag_news(1)[0]["text"].strip()
    # Case, white space, and a fullwidth "a" (NFKC makes it "a"): one document.
    variants = [doc, doc.upper(), "  " + doc.replace(" ", "   ") + "  ", doc.replace("a", "\uff41")]
    r = upload(admin, pid, [("d.txt", "\n".join(variants).encode())])
    assert r.status_code == 201 and r.json()["created"] == 1 and r.json()["duplicates"] == 3, r.text
    again = upload(admin, pid, [("e.jsonl", json.dumps({"text": doc.lower()}).encode())])
    assert again.status_code == 200 and again.json()["created"] == 0 and again.json()["duplicates"] == 1
    assert counts(settings.database_url, pid) == (1, 1)


def test_limits_and_nothing_half_written(admin, text_project, settings, app_client):
    pid = text_project["id"]
    app_client.app.state.settings.text_max_chars = 300
    app_client.app.state.settings.text_max_rows = 10
    rows = ag_news(40)
    long_doc = next(r["text"] for r in rows if len(r["text"].strip()) > 300)
    short = [r["text"] for r in rows if len(r["text"].strip()) <= 300]
    # Over the row limit: nothing of the upload is written, and the answer says where the limit was passed.
    r = upload(admin, pid, [("many.txt", "\n".join(short[:11]).encode())])
    assert r.status_code == 422 and "text_max_rows" in r.text and "line 11 of many.txt" in r.text, r.text
    assert counts(settings.database_url, pid) == (0, 0)
    # Nothing importable: 422 naming the bad rows, nothing written.
    r = upload(admin, pid, [("long.jsonl", json.dumps({"text": long_doc}).encode() + b"\n\n{")])
    assert r.status_code == 422, r.text
    rejected = r.json()["detail"]["rejected"]
    assert [(b["line"], "over the limit of 300" in b["reason"]) for b in rejected] == [(1, True), (3, False)]
    assert counts(settings.database_url, pid) == (0, 0)
    # Not UTF-8: named by its line.
    r = upload(admin, pid, [("latin.txt", short[0].encode() + b"\ncaf\xe9\n")])
    assert r.status_code == 422 and r.json()["detail"]["rejected"][0]["line"] == 2
    ok = upload(admin, pid, [("few.txt", "\n".join(short[:10]).encode())])
    assert ok.status_code == 201 and ok.json()["created"] == 10
    assert counts(settings.database_url, pid) == (10, 10)


def test_csv_missing_column_is_named(admin, text_project):
    r = admin.post(f"/projects/{text_project['id']}/samples", data={"label_column": "topic"},
                   files=[("files", ("x.csv", b"body,topic\nhello,World\n"))])
    assert r.status_code == 422
    [bad] = r.json()["detail"]["rejected"]
    assert bad["line"] == 1 and "'text'" in bad["reason"] and "body" in bad["reason"]


def test_queue_items_carry_the_text(admin, text_project, digits_project):
    pid = text_project["id"]
    long_doc = "word " * 1000  # 5,000 characters
    docs = [r["text"].strip() for r in ag_news(5)] + [long_doc.strip()]
    body = "\n".join(json.dumps({"text": d}) for d in docs).encode()
    assert upload(admin, pid, [("q.jsonl", body)]).status_code == 201
    items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 10}).json()["items"]
    assert len(items) == 6
    texts = {i["text"] for i in items}
    assert set(docs[:5]) <= texts and long_doc.strip()[:2000] in texts
    assert all(len(i["text"]) <= 2000 for i in items)
    # An image project's items carry none.
    from tests.conftest import digits_pngs

    upload(admin, digits_project["id"], [(n, d) for n, d, _ in digits_pngs(3)])
    img = admin.post(f"/projects/{digits_project['id']}/queue/lease").json()["items"]
    assert img and all(i["text"] is None for i in img)
    assert admin.get(f"/samples/{img[0]['sample_id']}/text").status_code == 404


