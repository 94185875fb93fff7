"""Bulk-write a model version's predictions: COPY on PostgreSQL, batched INSERTs elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sqlalchemy import insert

from app.db import get_engine, session_scope
from app.models import Prediction

CHUNK = 20_000
COLUMNS = ("model_version_id", "sample_id", "label", "confidence", "score", "priority", "probability", "reason")


def _rows(mv_id: int, ids: np.ndarray, classes: Sequence[str], proba: np.ndarray | None, scores: np.ndarray,
          priority: np.ndarray, probability: np.ndarray, reasons: list):  # noqa: ANN202
    if proba is not None:
        best = proba.argmax(axis=1)
        conf = proba[np.arange(len(proba)), best]
    for i, sid in enumerate(ids.tolist()):
        p = probability[i]
        yield (
            mv_id, sid,
            classes[int(best[i])] if proba is not None else None,
            float(conf[i]) if proba is not None else None,
            float(scores[i]) if math.isfinite(float(scores[i])) else 0.0,
            float(priority[i]),
            None if math.isnan(p) else float(p),
            reasons[i],
        )


def write(db_url: str, mv_id: int, ids: np.ndarray, classes: Sequence[str], proba: np.ndarray | None,
          scores: np.ndarray, priority: np.ndarray, probability: np.ndarray, reasons: list) -> None:
    rows = _rows(mv_id, ids, classes, proba, scores, priority, probability, reasons)
    engine = get_engine(db_url)
    if engine.dialect.name == "postgresql":
        # COPY streams a million rows in seconds; INSERT would take minutes.
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur, cur.copy(f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        return
    batch: list[dict] = []
    with session_scope(db_url) as s:
        for row in rows:
            batch.append(dict(zip(COLUMNS, row, strict=True)))
            if len(batch) >= CHUNK:
                s.execute(insert(Prediction), batch)
                batch.clear()
        if batch:
            s.execute(insert(Prediction), batch)
