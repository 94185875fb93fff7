"""The bulk prediction writer stores exactly what it is given, by COPY (PostgreSQL) or INSERT (SQLite)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from app.db import session_scope
from app.models import ModelVersion, Prediction, Project, Sample
from app.repos.predictions import Predictions, write


def _pool(url: str, n: int, classes: list[str]) -> tuple[int, np.ndarray]:
    with session_scope(url) as s:
        p = Project(name="w", classes=classes, settings={})
        s.add(p)
        s.flush()
        s.add_all([Sample(project_id=p.id, filename=f"{i}.png", content_hash=f"{i:064x}", storage_key="k",
                          thumbnail_key="t", width=1, height=1, mode="L", byte_size=1, rand_key=i)
                   for i in range(n)])
        s.flush()
        mv = ModelVersion(project_id=p.id, estimator="logistic", strategy="mixed")
        s.add(mv)
        s.flush()
        ids = np.array(s.scalars(select(Sample.id).where(Sample.project_id == p.id).order_by(Sample.id)).all())
        return mv.id, ids


def test_written_predictions_read_back_exactly(db_url):
    classes = ["plain", "tab\there", "back\\slash", "new\nline", "ünïcode"]
    n = 257
    mv_id, ids = _pool(db_url, n, classes)
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(len(classes)), n).astype(np.float32)
    scores = rng.standard_normal(n)
    scores[3] = np.nan
    priority = rng.standard_normal(n)
    reasons = [None] * n
    reasons[1], reasons[5] = "mixed: uncertain\t(0.1)", "fill \\ back"
    write(db_url, mv_id, Predictions(ids, classes, proba, scores, priority, reasons))
    with session_scope(db_url) as s:
        rows = {p.sample_id: p for p in s.scalars(select(Prediction).where(Prediction.model_version_id == mv_id))}
    assert len(rows) == n
    for i, sid in enumerate(ids.tolist()):
        p = rows[sid]
        best = int(proba[i].argmax())
        assert p.label == classes[best]
        assert p.confidence == float(proba[i, best])
        assert p.score == (0.0 if i == 3 else float(scores[i]))
        assert p.priority == float(priority[i])
        assert p.reason == reasons[i]


def test_cold_start_predictions_have_no_label(db_url):
    mv_id, ids = _pool(db_url, 10, ["a", "b"])
    scores = np.arange(10, dtype=np.float64)
    write(db_url, mv_id, Predictions(ids, ["a", "b"], None, scores, scores, [None] * 10))
    with session_scope(db_url) as s:
        rows = s.scalars(select(Prediction).where(Prediction.model_version_id == mv_id)).all()
    assert len(rows) == 10 and all(p.label is None and p.confidence is None for p in rows)
    assert sorted(p.priority for p in rows) == list(map(float, range(10)))


def test_the_training_pool_reads_every_sample_with_its_audit_flag_and_label(db_url):
    from app.repos.predictions import training_pool

    _, ids = _pool(db_url, 300, ["a", "b"])
    with session_scope(db_url) as s:
        samples = s.scalars(select(Sample).where(Sample.id.in_(ids.tolist()))).all()
        for sample in samples:
            sample.is_audit = sample.id % 3 == 0
            if sample.id % 7 == 0:
                sample.status, sample.label = "labelled", "ab"[sample.id % 2]
        pid = samples[0].project_id
    pool = training_pool(db_url, pid)
    np.testing.assert_array_equal(pool.ids, ids)
    assert pool.ids.dtype == np.int64
    np.testing.assert_array_equal(pool.is_audit, ids % 3 == 0)
    assert pool.labels == {int(i): "ab"[int(i) % 2] for i in ids if i % 7 == 0}
