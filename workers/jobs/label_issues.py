"""Likely label errors after each model (issue 18), run by the train job on the pool it just fitted.

Thin: the labelled rows of the pool go to ``ml.label_issues.find_label_issues`` (out-of-fold
probabilities, confident learning, nearest labelled neighbours) and the ranked list is stored through
``app.repos.label_issues`` against the embedding version it was computed on."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from app.db import session_scope
from app.repos import label_issues as label_issues_repo
from workers.jobs.context import JobContext

if TYPE_CHECKING:
    from ml.fit import Pool
    from ml.label_issues import LabelIssues

log = logging.getLogger(__name__)
LIMIT = 500  # the list the API serves (its limit's maximum): a reviewer never reaches further


def _items(issues: LabelIssues, ids: np.ndarray, y: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    items = []
    for r, sug, score, nb, sim in zip(issues.rows, issues.suggested, issues.score, issues.neighbours,
                                      issues.neighbour_sim, strict=True):
        neighbours = [{"sample_id": int(ids[n]), "label": classes[int(y[n])], "similarity": round(float(s), 4)}
                      for n, s in zip(nb, sim, strict=True) if n >= 0]
        items.append({"sample_id": int(ids[r]), "label": classes[int(y[r])], "suggested_label": classes[int(sug)],
                      "score": round(float(score), 4), "neighbours": neighbours})
    return items


def refresh(ctx: JobContext, pool: Pool, model_version_id: int) -> int | None:
    """Score every human label of ``pool`` out of fold and store the doubted ones; the count stored, or
    None when the check failed: the model is stored and serving by then, so a failure of this extra
    check is logged and never fails the train job (the route keeps answering 409 for this version)."""
    try:
        return _refresh(ctx, pool, model_version_id)
    except Exception:
        log.exception("the label check after model version %s failed", model_version_id)
        return None


def _refresh(ctx: JobContext, pool: Pool, model_version_id: int) -> int:
    from ml.label_issues import find_label_issues

    assert ctx.current_embedding is not None
    t0 = time.perf_counter()
    rows = np.flatnonzero(pool.labelled)
    X, y, ids = np.asarray(pool.X[rows], dtype=np.float32), pool.y[rows], pool.ids[rows]
    issues = find_label_issues(X, y, len(ctx.classes), limit=LIMIT)
    items = _items(issues, ids, y, ctx.classes)
    metrics = {"seconds": round(time.perf_counter() - t0, 3), "doubted": len(items),
               "thresholds": {c: (round(float(t), 4) if np.isfinite(t) else None)
                              for c, t in zip(ctx.classes, issues.thresholds, strict=True)}}
    with session_scope(ctx.db_url) as s:
        label_issues_repo.store(s, project_id=ctx.project_id, embedding_version_id=ctx.current_embedding.id,
                                model_version_id=model_version_id, labels=int(len(rows)), items=items,
                                metrics=metrics)
    return len(items)
