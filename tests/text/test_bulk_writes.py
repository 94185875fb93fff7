"""The import's bulk writes (app/repos/bulk.py on PostgreSQL: each column one array, one placeholder a
column): the rows and their ids come back as written, the columns' Python defaults are filled, duplicates
by content are skipped, a batch with one bad row leaves nothing, and a batch past PostgreSQL's 65,535
parameters a statement goes in as one statement. SQLite runs the same checks through Core's INSERT."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.db import session_scope
from app.models import Label, Sample, SampleText
from app.models.base import utcnow
from app.repos import labels as label_repo
from app.repos import samples as samples_repo
from app.repos import texts as texts_repo


def _rows(pid: int, n: int, start: int = 0) -> list[dict]:
    return [{"project_id": pid, "filename": f"d{i}", "content_hash": f"{i:064d}", "storage_key": "",
             "thumbnail_key": "", "width": 0, "height": 0, "mode": "text", "byte_size": 3,
             "source_folder": None if i % 3 else "a", "status": "unlabelled", "rand_key": secrets.randbits(62),
             "is_audit": i % 20 == 0} for i in range(start, start + n)]


@pytest.fixture
def pid(admin) -> int:
    r = admin.post("/projects", json={"name": "bulk", "kind": "text", "classes": ["a", "b"],
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_samples_and_texts_go_in_whole_with_their_ids_defaults_and_duplicates_skipped(db_url, pid):
    n = 6000  # 13 columns: 78,000 values, past 65,535 parameters were each its own
    with session_scope(db_url) as s:
        inserted = samples_repo.insert_samples(s, _rows(pid, n))
        texts_repo.insert_texts(s, [{"sample_id": sid, "project_id": pid, "text": f"doc\t{h}\n\\N"}
                                    for sid, h in inserted])
    assert sorted(h for _, h in inserted) == [f"{i:064d}" for i in range(n)]
    with session_scope(db_url) as s:
        stored = {x.id: x for x in s.scalars(select(Sample).where(Sample.project_id == pid))}
        assert len(stored) == n
        for sid, digest in inserted:
            x = stored[sid]
            assert x.content_hash == digest and x.filename == f"d{int(digest)}"
            assert x.source_folder == (None if int(digest) % 3 else "a") and x.created_at is not None
        texts = dict(s.execute(select(SampleText.sample_id, SampleText.text)).tuples().all())
        assert texts == {sid: f"doc\t{h}\n\\N" for sid, h in inserted}  # COPY's specials kept as they are
        # Sent again with 10 new ones: the project's contents are skipped, only the new ones come back.
        again = samples_repo.insert_samples(s, _rows(pid, 10, start=n - 5))
        assert sorted(h for _, h in again) == [f"{i:064d}" for i in range(n, n + 5)]


def test_a_batch_with_one_bad_row_writes_nothing(db_url, pid):
    rows = _rows(pid, 500)
    rows[321]["filename"] = None  # NOT NULL
    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        samples_repo.insert_samples(s, rows)
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(Sample).where(Sample.project_id == pid)) == 0


def test_many_labels_get_each_its_own_id(db_url, pid):
    with session_scope(db_url) as s:
        inserted = samples_repo.insert_samples(s, _rows(pid, 3000))
        stored = [label_repo.StoredLabel(
            id=0, project_id=pid, sample_id=sid, user_id=None, label="ab"[k % 2], source="import", opinion="primary",
            model_version_id=None, suggested_label=None, suggested_confidence=None, duration_ms=k,
            batch_id=None, created_at=utcnow()) for k, (sid, _) in enumerate(inserted)]
        label_repo.insert_labels(s, stored)
    with session_scope(db_url) as s:
        rows = {x.id: x for x in s.scalars(select(Label).where(Label.project_id == pid))}
    assert len({x.id for x in stored}) == len(stored) == len(rows)
    for x in stored:
        assert (rows[x.id].sample_id, rows[x.id].label, rows[x.id].duration_ms) == (x.sample_id, x.label, x.duration_ms)
        assert rows[x.id].action == "set" and rows[x.id].undoes_id is None


def test_a_bad_text_row_takes_its_batch_samples_back(db_url, pid):
    """The texts go in the samples' transaction (PostgreSQL: COPY on the session's own connection): one
    text naming no sample fails as SQLAlchemy's IntegrityError, and the batch's samples go with it."""
    with pytest.raises(IntegrityError), session_scope(db_url) as s:
        inserted = samples_repo.insert_samples(s, _rows(pid, 300))
        texts = [{"sample_id": sid, "project_id": pid, "text": f"doc\t{h}\n\\N"} for sid, h in inserted]
        texts[150]["sample_id"] = 2**30
        texts_repo.insert_texts(s, texts)
        s.flush()  # SQLite checks the foreign key at the statement
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(Sample).where(Sample.project_id == pid)) == 0
        assert s.scalar(select(func.count()).select_from(SampleText)) == 0
