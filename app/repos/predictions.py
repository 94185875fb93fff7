"""Queries of a training round: the pool it reads (one binary COPY on PostgreSQL), the model version it
records with its predictions (COPY on PostgreSQL, batched INSERTs elsewhere), the switch of the queue to
it, and the clean-up of older versions' predictions.

These take a database URL, not a session: a round is several transactions (the queue must not wait for
a million rows to be written), and COPY needs the driver's own connection."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.db import get_engine, session_scope
from app.models import ModelVersion, Prediction, Project, Sample
from app.repos import data_checks

CHUNK = 20_000
COLUMNS = ("model_version_id", "sample_id", "label", "confidence", "score", "priority", "reason")
KEEP_VERSIONS = 2  # predictions of the current and the previous version; older ones are dropped


@dataclass
class Predictions:
    """A model version's suggestions, row i for sample ``sample_ids[i]``."""

    sample_ids: np.ndarray
    classes: Sequence[str]
    proba: np.ndarray | None  # (N, C); None before the first label: no suggestion
    scores: np.ndarray  # non-finite scores are stored as 0
    priority: np.ndarray
    reasons: list[str | None]


@dataclass
class NewModelVersion:
    """What a training round records about itself (the ``model_versions`` row)."""

    project_id: int
    job_id: int | None
    estimator: str
    strategy: str
    label_count: int
    embedding_version_id: int
    label_revisions: int
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingPool:
    ids: np.ndarray  # int64, ascending: every sample of the project
    is_audit: np.ndarray  # bool
    labels: dict[int, str]  # sample id -> current label, of the labelled samples


def training_pool(db_url: str, project_id: int) -> TrainingPool:
    """Every sample's id and audit flag, and the labels of the labelled ones, but for samples taken out
    of the pool (issue 18): those are scored like unlabelled ones, and neither fitted nor counted in the
    audit estimate, so the model's figures leave them out too.

    On PostgreSQL the two columns of every sample come as one binary COPY read straight into numpy
    (1.6 s at 1M samples, where building a million result rows took 6 s); the labels of the few
    labelled samples by a query of their own."""
    engine = get_engine(db_url)
    with session_scope(db_url) as s:
        labelled = s.execute(select(Sample.id, Sample.label).where(
            Sample.project_id == project_id, Sample.status == "labelled", Sample.label.is_not(None),
            data_checks.in_pool(Sample.id)))
        labels = {sid: label for sid, label in labelled if label is not None}
        if engine.dialect.name != "postgresql":
            rows = s.execute(select(Sample.id, Sample.is_audit).where(Sample.project_id == project_id)
                             .order_by(Sample.id)).all()
            return TrainingPool(np.array([r[0] for r in rows], dtype=np.int64),
                                np.array([bool(r[1]) for r in rows], dtype=bool), labels)
    ids, audit = _decode_id_flag_rows(_copy_out(
        db_url, f"COPY (SELECT id, is_audit::int FROM samples WHERE project_id = {int(project_id)} ORDER BY id) "
        "TO STDOUT (FORMAT binary)"))
    return TrainingPool(ids, audit, labels)


def _copy_out(db_url: str, statement: str) -> bytes:
    raw: Any = get_engine(db_url).raw_connection()  # psycopg's: its cursors are context managers and COPY
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:
            data = b"".join(bytes(block) for block in copy)
        raw.commit()
    finally:
        raw.close()
    return data


def _decode_id_flag_rows(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, bool flags) from a binary COPY of two int4 columns."""
    # 19-byte header, then per row: int16 field count, and (int32 length, int32 value) twice; int16 trailer.
    row = np.dtype([("n", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"), ("audit", ">i4")])
    rows = np.frombuffer(data, dtype=row, offset=19, count=(len(data) - 21) // row.itemsize)
    if len(rows) and not ((rows["n"] == 2).all() and (rows["l1"] == 4).all() and (rows["l2"] == 4).all()):
        raise ValueError("unexpected binary COPY layout reading the samples")
    return rows["id"].astype(np.int64), rows["audit"].astype(bool)


def learning_curve(session: Session, project_id: int) -> list[tuple[int, float]]:
    """(labels, audit accuracy estimate) of the project's model versions that have one, oldest first."""
    curve = [(v.label_count, (v.metrics or {}).get("accuracy_estimate")) for v in session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id))]
    return [(n, a) for n, a in curve if a is not None]


def store_version(db_url: str, version: NewModelVersion, predictions: Predictions) -> int:
    """Record the version, write its predictions, then switch the project's queue to it; returns its id.

    The version's metrics gain ``write_seconds``. Older versions' predictions (all but the newest
    ``KEEP_VERSIONS``) are dropped after the switch, in transactions of their own: the queue does not
    wait for them."""
    with session_scope(db_url) as s:
        number = s.scalar(select(func.coalesce(func.max(ModelVersion.number), 0))
                          .where(ModelVersion.project_id == version.project_id))
        mv = ModelVersion(project_id=version.project_id, job_id=version.job_id, estimator=version.estimator,
                          strategy=version.strategy, params=version.params, label_count=version.label_count,
                          embedding_version_id=version.embedding_version_id, metrics=version.metrics,
                          label_revisions=version.label_revisions, number=int(number or 0) + 1)
        s.add(mv)
        s.flush()
        mv_id = mv.id
    t0 = time.perf_counter()
    write(db_url, mv_id, predictions)
    _switch(db_url, version.project_id, mv_id, {**version.metrics,
                                                "write_seconds": round(time.perf_counter() - t0, 3)})
    with session_scope(db_url) as s:
        old = list(s.scalars(select(ModelVersion.id).where(ModelVersion.project_id == version.project_id)
                             .order_by(ModelVersion.id.desc()).offset(KEEP_VERSIONS)))
        if old:
            s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
    return mv_id


def _switch(db_url: str, project_id: int, mv_id: int, metrics: dict) -> None:
    with session_scope(db_url) as s:
        project = s.get(Project, project_id)
        assert project is not None
        mv = s.get(ModelVersion, mv_id)
        assert mv is not None
        mv.metrics = metrics
        # The queue switches here, atomically, and only forwards: a run that outlived a newer one (a
        # stale job retried while the first process still ran) never switches it back to older picks.
        if project.current_model_version_id is None or project.current_model_version_id < mv_id:
            project.current_model_version_id = mv_id


def _rows(mv_id: int, p: Predictions) -> Iterator[tuple]:
    if p.proba is not None:
        best = p.proba.argmax(axis=1)
        conf = p.proba[np.arange(len(p.proba)), best]
    for i, sid in enumerate(p.sample_ids.tolist()):
        yield (
            mv_id, sid,
            p.classes[int(best[i])] if p.proba is not None else None,
            float(conf[i]) if p.proba is not None else None,
            float(p.scores[i]) if math.isfinite(float(p.scores[i])) else 0.0,
            float(p.priority[i]),
            p.reasons[i],
        )


def _escape(text: str) -> str:
    """A value as COPY's text format spells it."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_text(mv_id: int, p: Predictions, chunk: int = 100_000) -> Iterator[str]:
    """The rows as COPY text, a block of ``chunk`` rows at a time: columns are converted by numpy and
    joined once per row (write_row's per-value adaptation cost ~10 us a row, 10 s a million)."""
    labels = [_escape(c) for c in p.classes]
    null = "\\N"
    mv = str(mv_id)
    for s in range(0, len(p.sample_ids), chunk):
        e = min(len(p.sample_ids), s + chunk)
        n = e - s
        if p.proba is not None:
            block = p.proba[s:e]
            best = block.argmax(axis=1)
            lab = [labels[b] for b in best.tolist()]
            conf = list(map(repr, block[np.arange(n), best].astype(np.float64).tolist()))
        else:
            lab = conf = [null] * n
        finite = np.asarray(p.scores[s:e], dtype=np.float64)
        sc = list(map(repr, np.where(np.isfinite(finite), finite, 0.0).tolist()))
        pr = list(map(repr, np.asarray(p.priority[s:e], dtype=np.float64).tolist()))
        rs = [null if r is None else _escape(r) for r in p.reasons[s:e]]
        sids = list(map(str, p.sample_ids[s:e].tolist()))
        yield "".join([f"{mv}\t{a}\t{b}\t{c}\t{d}\t{f}\t{h}\n"
                       for a, b, c, d, f, h in zip(sids, lab, conf, sc, pr, rs, strict=True)])


def write(db_url: str, mv_id: int, predictions: Predictions) -> None:
    """Store ``predictions`` as model version ``mv_id``'s, exactly as given."""
    engine = get_engine(db_url)
    if engine.dialect.name == "postgresql":
        # COPY streams a million rows in seconds; INSERT would take minutes.
        raw: Any = engine.raw_connection()  # psycopg's: its cursors are context managers and COPY
        try:
            with raw.cursor() as cur, cur.copy(f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for block in _copy_text(mv_id, predictions):
                    copy.write(block)
            raw.commit()
            # Statistics that know the new version before the queue switches to it: until autovacuum
            # got round to it, the planner took the version for a rare value and read a lookup of ten
            # rows through the priority index, every row of the version (2 s at 1M).
            with raw.cursor() as cur:
                cur.execute("ANALYZE predictions")
            raw.commit()
        finally:
            raw.close()
        return
    batch: list[dict] = []
    with session_scope(db_url) as s:
        for row in _rows(mv_id, predictions):
            batch.append(dict(zip(COLUMNS, row, strict=True)))
            if len(batch) >= CHUNK:
                s.execute(insert(Prediction), batch)
                batch.clear()
        if batch:
            s.execute(insert(Prediction), batch)
