"""The sample browser's word search paged by its cursor (issue 19): every document holding the word, each
exactly once, in the page order, with filters, another project's documents interleaved in the word index.
On SQLite the pages are read off the word index's ids a chunk at a time (app/repos/samples.py,
``_browse_by_words``): the chunks are made tiny here so that a page spans several, a chunk may pass none
of its ids (another project's, labelled ones), and the search goes on past the chunks it reads by itself."""

from __future__ import annotations

import json

import pytest

from app.repos import samples as samples_repo
from tests.conftest import Api, upload

CLASSES = ["a", "b"]


def _project(admin: Api, name: str) -> int:
    r = admin.post("/projects", json={"name": name, "kind": "text", "classes": CLASSES,
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _import(admin: Api, pid: int, docs: list[tuple[str, str | None]]) -> list[int]:
    """The documents' sample ids, in the upload's order."""
    body = "\n".join(json.dumps({"id": f"d{i}", "text": t, **({"label": lab} if lab else {})})
                     for i, (t, lab) in enumerate(docs)).encode()
    r = upload(admin, pid, [("docs.jsonl", body)])
    assert r.status_code == 201 and r.json()["created"] == len(docs), r.text
    items, cursor = [], None
    while True:
        page = admin.get(f"/projects/{pid}/samples", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        items += page.json()["items"]
        if not (cursor := page.json()["next_cursor"]):
            break
    by_name = {s["filename"]: s["id"] for s in items}
    return [by_name[f"d{i}"] for i in range(len(docs))]


def _all_pages(admin: Api, pid: int, limit: int, **params) -> list[int]:
    out, cursor = [], None
    for _ in range(1000):
        r = admin.get(f"/projects/{pid}/samples", params={"limit": limit, **params,
                                                          **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        out += [s["id"] for s in r.json()["items"]]
        if not (cursor := r.json()["next_cursor"]):
            return out
    raise AssertionError("the cursor never ended")


@pytest.mark.parametrize("chunk", [7, 2000])
def test_paging_through_a_word_gives_each_match_once_in_order(admin, monkeypatch, chunk):
    monkeypatch.setattr(samples_repo, "WORD_CHUNK", chunk)
    monkeypatch.setattr(samples_repo, "WORD_CHUNKS", 3)
    pid, other = _project(admin, "mine"), _project(admin, "other")
    docs: list[tuple[str, str | None]] = []
    for i in range(240):
        words = ["common"] + (["harbour"] if i % 4 == 0 else []) + (["lonely"] if i in (5, 233) else [])
        docs.append((f"doc {i} " + " ".join(words), "a" if 60 <= i < 200 else None))
    # The other project's documents arrive between ours in the word index: whole chunks of them at a time.
    mine, theirs = [], []
    for part in range(4):
        mine += _import(admin, pid, docs[part * 60:(part + 1) * 60])
        theirs += _import(admin, other, [(f"theirs {part} {k} common harbour lonely", None) for k in range(30)])
    harbour = [mine[i] for i in range(240) if i % 4 == 0]
    for limit in (1, 6, 25):
        assert _all_pages(admin, pid, limit, q="harbour") == harbour
        assert _all_pages(admin, pid, limit, q="harbour", sort="-created") == harbour[::-1]
        # Unlabelled only: the 140 labelled in the middle are skipped, many chunks passing none.
        unl = [mine[i] for i in range(240) if i % 4 == 0 and not 60 <= i < 200]
        assert _all_pages(admin, pid, limit, q="harbour", status="unlabelled") == unl
        assert _all_pages(admin, pid, limit, q="common harbour", status="unlabelled", sort="-created") == unl[::-1]
    assert _all_pages(admin, pid, 1, q="lonely") == [mine[5], mine[233]]
    assert _all_pages(admin, pid, 100, q="common") == mine
    assert _all_pages(admin, other, 7, q="lonely") == theirs
    assert _all_pages(admin, pid, 5, q="nowhere") == []


@pytest.mark.parametrize("rare", [5, 2000])
def test_a_word_in_the_models_orders_pages_each_match_once(admin, settings, monkeypatch, rare):
    """Ordered by confidence or score, a word of at most ``RARE_WORDS`` documents is looked up by its ids
    (SQLite), a commoner one by the one statement: the same pages either way."""
    from tests.api.test_sample_browser import _store_model

    monkeypatch.setattr(samples_repo, "RARE_WORDS", rare)
    pid = _project(admin, "ordered")
    ids = _import(admin, pid, [(f"doc {i} common{' harbour' if i % 3 == 0 else ''}", None) for i in range(40)])
    sugg, score = _store_model(settings, pid, ids)
    harbour = [sid for i, sid in enumerate(ids) if i % 3 == 0]
    by_conf = sorted(harbour, key=lambda sid: (sugg[sid][1], sid))
    for limit in (1, 4):
        assert _all_pages(admin, pid, limit, q="harbour", sort="confidence") == by_conf
        assert _all_pages(admin, pid, limit, q="harbour", sort="-confidence") == by_conf[::-1]
        assert _all_pages(admin, pid, limit, q="harbour", sort="score") == sorted(
            harbour, key=lambda sid: (score[sid], sid), reverse=True)
        assert _all_pages(admin, pid, limit, q="harbour", sort="confidence", min_confidence=0.5) == [
            sid for sid in by_conf if sugg[sid][1] >= 0.5]
