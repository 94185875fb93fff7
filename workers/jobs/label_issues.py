"""Likely label errors after each model (issue 18), run by the train job on the pool it just fitted.

Thin: the labelled rows of the pool go to ``ml.label_issues.find_label_issues`` (out-of-fold
probabilities, confident learning, nearest labelled neighbours) and the ranked list is stored through
``app.repos.label_issues`` against the embedding version it was computed on. Incremental: the out-of-fold
probabilities are kept in ``labelcheck/p<pid>/oof.npz`` (embedding version, sample ids, labels,
probabilities) and a retrain on the same embeddings scores only the labels that are new or changed
(``ml.label_issues.update_out_of_fold``: one fit, and the ten folds again once those pass a quarter)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.db import session_scope
from app.repos import label_issues as label_issues_repo
from app.storage import atomic_file
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


def cache_path(media: Path, project_id: int) -> Path:
    return media / "labelcheck" / f"p{project_id}" / "oof.npz"


def _known(path: Path, embedding_version_id: int, ids: np.ndarray, y: np.ndarray,
           n_classes: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(known (N,) bool, their probabilities (N, C), labels scored incrementally since the last full
    pass) from the project's cache: rows whose sample and label were scored on this embedding version
    with these classes. Anything else (another version, classes added, no cache) knows nothing."""
    known, proba = np.zeros(len(ids), bool), np.zeros((len(ids), n_classes))
    if not path.exists():
        return known, proba, 0
    with np.load(path) as f:
        if int(f["embedding_version_id"]) != embedding_version_id or f["proba"].shape[1] != n_classes:
            return known, proba, 0
        old_ids, old_y, old_p, since = f["ids"], f["y"], f["proba"], int(f["since_full"])
    pos = np.clip(np.searchsorted(old_ids, ids), 0, max(len(old_ids) - 1, 0))
    if len(old_ids):
        known = (old_ids[pos] == ids) & (old_y[pos] == y)
        proba[known] = old_p[pos[known]]
    return known, proba, since


def _save(path: Path, embedding_version_id: int, ids: np.ndarray, y: np.ndarray, proba: np.ndarray,
          since_full: int) -> None:
    with atomic_file(path, ".npz") as fh:
        np.savez(fh, embedding_version_id=embedding_version_id, ids=ids, y=y, proba=proba, since_full=since_full)


def _refresh(ctx: JobContext, pool: Pool, model_version_id: int) -> int:
    from ml.label_issues import find_label_issues, update_out_of_fold

    assert ctx.current_embedding is not None
    t0 = time.perf_counter()
    rows = np.flatnonzero(pool.labelled)
    X, y, ids = np.asarray(pool.X[rows], dtype=np.float32), pool.y[rows], pool.ids[rows]
    C = len(ctx.classes)
    # Incremental (issue 18, item 4): the out-of-fold probabilities of the labels already scored on these
    # embeddings are kept; only new or changed labels are scored, by one fit on the others.
    path = cache_path(ctx.media, ctx.project_id)
    known, known_proba, since = _known(path, ctx.current_embedding.id, ids, y, C)
    proba = None
    if len(y) >= 2 and len(np.unique(y)) >= 2 and np.bincount(y).max() >= 2:
        proba, since = update_out_of_fold(X, y, C, known, known_proba, since)
        _save(path, ctx.current_embedding.id, ids, y, proba, since)
    issues = find_label_issues(X, y, C, limit=LIMIT, proba=proba)
    items = _items(issues, ids, y, ctx.classes)
    metrics = {"seconds": round(time.perf_counter() - t0, 3), "doubted": len(items),
               "reused": int(known.sum()), "scored_since_full_pass": since,
               "thresholds": {c: (round(float(t), 4) if np.isfinite(t) else None)
                              for c, t in zip(ctx.classes, issues.thresholds, strict=True)}}
    with session_scope(ctx.db_url) as s:
        label_issues_repo.store(s, project_id=ctx.project_id, embedding_version_id=ctx.current_embedding.id,
                                model_version_id=model_version_id, labels=int(len(rows)), items=items,
                                metrics=metrics)
    return len(items)
