"""One round of active learning on arrays: fit the project's estimator on the labels, estimate its
accuracy honestly on the audit labels, score every sample with the query strategy and order the queue.

The train job (``workers/jobs/train.py``) reads the arrays, calls ``fit_round`` and stores what it
returns; everything between is here, with no database in sight, and tested on arrays
(``tests/ml/active/test_fit.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.estimators import create_estimator
from ml.estimators.base import LoupeClassifier
from ml.estimators.block_weighted import BlockWeighted
from ml.evaluation import audit_accuracy, fit_learning_curve, labels_to_target
from ml.strategies import create_strategy
from ml.strategies.reasons import past_batch

# Queue items past the selected batch are served too (by score) until the next model: this many of them
# carry a reason as well (a string each in the bulk write; the rest are rarely reached before a retrain).
REASONED_PAST_BATCH = 2000
FEW_LABELS = 5  # a class with fewer labels is flagged on the dashboard (app/services/figures.py says so too)
UNEXPLORED = 48  # typical samples of groups nobody has labelled: where a class never seen may hide

Report = Callable[[float, str], None]


@dataclass
class Pool:
    """The samples a round works on, row i for sample ``ids[i]``."""

    ids: np.ndarray  # (N,) int64 sample ids, ascending
    X: np.ndarray  # (N, D) embeddings (may be a float16 memory map: read block by block)
    y: np.ndarray  # (N,) int64 class index, -1 where unlabelled
    audit: np.ndarray  # (N,) bool, in the random audit sample
    # Widths of the backbone blocks X holds side by side (the embedding version's record; None for pixels):
    # co-training's two views, and the groups a weighted:k layer weighs.
    blocks: tuple[int, ...] | None = None
    weighted: bool = False  # the layer is weighted:k: the blocks' weights are learned on the labels

    @property
    def labelled(self) -> np.ndarray:
        return self.y >= 0


@dataclass
class RoundResult:
    """What a round gives the queue: per row of the pool, the suggestion's probabilities, the
    acquisition score, the queue order (the selected batch first) and why it was picked."""

    proba: np.ndarray | None  # (N, C) float32; None without labels (no model)
    scores: np.ndarray  # (N,) the strategy's acquisition scores
    priority: np.ndarray  # (N,) float64, the queue's order: higher first
    reasons: list[str | None]  # (N,) reason codes (ml/strategies/reasons.py), None past those reasoned
    chosen_by: str  # what really chose the batch: "random" for margin with no model, "cold_start", ...
    estimator: str  # the estimator fitted, "none" without labels
    metrics: dict[str, Any]  # counts, the audit estimate and confusion, labels to the target, ...
    fit_seconds: float
    score_seconds: float
    # The queue's model itself (None without labels), for what reads it beyond the pool's rows: the
    # occlusion of a text project's words (workers/jobs/explain_occlusion.py) scores documents re-embedded.
    model: LoupeClassifier | None = None


def align(emb_ids: np.ndarray, X: np.ndarray, pool_ids: np.ndarray, pool_audit: np.ndarray,
          label_ids: np.ndarray, label_codes: np.ndarray, *, blocks: tuple[int, ...] | None = None,
          weighted: bool = False) -> Pool:
    """The embedded rows (``emb_ids``, ``X``) that are samples of the pool (``pool_ids`` ascending, with
    ``pool_audit``), with the class index ``label_codes`` of the labelled samples ``label_ids``.

    Rows of samples no longer in the pool are dropped; samples imported after this embedding are left
    to the next round."""
    pos = np.searchsorted(pool_ids, emb_ids)
    keep = (pos < len(pool_ids)) & (pool_ids[np.minimum(pos, len(pool_ids) - 1)] == emb_ids)
    y_all = np.full(len(pool_ids), -1, dtype=np.int64)
    if len(label_ids):
        y_all[np.searchsorted(pool_ids, label_ids)] = label_codes
    pos = pos[keep]
    return Pool(ids=emb_ids[keep], X=X if keep.all() else X[keep], y=y_all[pos], audit=pool_audit[pos],
                blocks=blocks, weighted=weighted)


def fit_round(pool: Pool, n_classes: int, *, estimator: str, strategy: str, batch_size: int,
              curve: list[tuple[int, float]], target_accuracy: float, progress: Report | None = None) -> RoundResult:
    """Fit ``estimator`` on the pool's labels and score it with ``strategy``, picking ``batch_size``.

    ``curve``: (labels, accuracy estimate) of the earlier rounds, for the labels needed to reach
    ``target_accuracy``. ``progress(fraction, message)``: 0 when fitting starts, 0.5 when scoring does."""
    report = progress or (lambda f, msg: None)
    labelled = pool.labelled
    n = int(labelled.sum())
    metrics: dict[str, Any] = {"estimator": estimator, "strategy": strategy, "samples": int(len(pool.ids)),
                               "labels": n, "audit_labels": int((labelled & pool.audit).sum())}
    t0 = time.perf_counter()
    report(0.0, f"fitting {estimator} on {n} labels")
    model = _fit_models(pool, n_classes, estimator, metrics)
    proba = _proba(model, pool.X) if model is not None else None
    fit_s = time.perf_counter() - t0
    report(0.5, "scoring every sample")
    scores, priority, reasons, chosen_by = _score(pool, proba, strategy, batch_size, n_classes, metrics)
    score_s = time.perf_counter() - t0 - fit_s
    if "accuracy_estimate" in metrics:
        metrics["labels_to_target"] = _labels_to_target(curve + [(n, metrics["accuracy_estimate"])], target_accuracy)
    return RoundResult(proba=proba, scores=scores, priority=priority, reasons=reasons, chosen_by=chosen_by,
                       estimator=estimator if proba is not None else "none", metrics=metrics,
                       fit_seconds=fit_s, score_seconds=score_s, model=model)


def views(pool: Pool) -> tuple[int | None, str]:
    """Where co-training's second view starts, and in words: the last block against the blocks before it
    (two layers of one backbone); halves of the columns when the embedding is one block or pixels."""
    if pool.blocks is not None and len(pool.blocks) >= 2:
        before = len(pool.blocks) - 1
        return int(sum(pool.blocks[:-1])), f"the last block ({pool.blocks[-1]} wide) and the {before} before it"
    return None, "halves of the embedding's columns (one block or pixels: no two layers to split)"


def create(name: str, n_classes: int, pool: Pool) -> LoupeClassifier:
    """The estimator ``name`` as this pool asks for it: co-training split into its two views, and behind a
    learned weighting of the blocks when the layer is weighted:k."""
    est = create_estimator(name, n_classes=n_classes)
    if "view_split" in est.get_params():
        est.set_params(view_split=views(pool)[0])
    if pool.weighted and pool.blocks is not None and len(pool.blocks) >= 2:
        est = BlockWeighted(est, blocks=pool.blocks)
    return est


def _fit(name: str, n_classes: int, pool: Pool, train_rows: np.ndarray) -> LoupeClassifier:
    est = create(name, n_classes, pool)
    if est.semi_supervised:  # the whole pool takes part, -1 for unlabelled (label spreading's graph)
        y = np.where(train_rows, pool.y, -1)
        return est.fit(pool.X, y)
    return est.fit(pool.X[train_rows], pool.y[train_rows])


def _proba(est: LoupeClassifier, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    # Small blocks: their temporaries (a few MB) are reused by the allocator, where 100k-row blocks were
    # fresh memory each time and page faults alone cost seconds per million rows.
    out = None
    for i in range(0, len(X), chunk):
        p = est.predict_proba(np.asarray(X[i:i + chunk], dtype=np.float32))
        if out is None:
            out = np.empty((len(X), p.shape[1]), dtype=np.float32)
        out[i:i + len(p)] = p
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def _fit_models(pool: Pool, n_classes: int, estimator: str, metrics: dict) -> LoupeClassifier | None:
    """The queue's model, fitted on every label (None without labels).

    The honest estimate first: a model fitted without the audit labels, scored on them."""
    labelled = pool.labelled
    if not labelled.any():
        return None
    train_rows, audit_rows = labelled & ~pool.audit, labelled & pool.audit
    if audit_rows.any() and train_rows.any():
        metrics.update(_audit_estimate(pool, n_classes, estimator, train_rows, audit_rows))
    est = _fit(estimator, n_classes, pool, labelled)
    _describe(est, pool, metrics)
    return est


def _describe(est: LoupeClassifier, pool: Pool, metrics: dict) -> None:
    """What the fitted model was made of, for the version's metrics: the blocks' weights (and whether they
    were learned or left equal, and why), co-training's views and the pseudo-labels it handed over."""
    if isinstance(est, BlockWeighted):
        metrics["block_weights"] = est.weights_.as_dict()
        est = est.estimator_
    elif pool.weighted:
        metrics["block_weights"] = {"blocks": list(pool.blocks or []), "learned": False,
                                    "note": "one block (or pixels): nothing to weigh"}
    if "view_split" in est.get_params():
        metrics["views"] = views(pool)[1]
        metrics["pseudo_labelled"] = list(getattr(est, "pseudo_labelled_", []))


def _audit_estimate(pool: Pool, n_classes: int, estimator: str, train_rows: np.ndarray,
                    audit_rows: np.ndarray) -> dict:
    """Accuracy on the audit labels (with a Wilson interval) and the confusion matrix (true, predicted)
    of a model that never saw them."""
    est = _fit(estimator, n_classes, pool, train_rows)
    # A semi-supervised model was fitted on the whole pool; the audit rows are scored within it.
    pred = _proba(est, pool.X if est.semi_supervised else pool.X[audit_rows]).argmax(1)
    if est.semi_supervised:
        pred = pred[audit_rows]
    truth = pool.y[audit_rows]
    acc, lo, hi = audit_accuracy(truth, pred)
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (truth, pred), 1)
    return {"accuracy_estimate": acc, "ci_low": lo, "ci_high": hi, "confusion": confusion.tolist()}


def _score(pool: Pool, proba: np.ndarray | None, strategy_name: str, batch_size: int, n_classes: int,
           metrics: dict) -> tuple[np.ndarray, np.ndarray, list[str | None], str]:
    """(scores, priority, reasons, chosen_by): the strategy's scores, the queue order with the selected
    batch first in its order, and a reason for the batch and for the items served after it."""
    labelled, audit = pool.labelled, pool.audit
    strategy = create_strategy(strategy_name, seed=int(labelled.sum()))
    # The strategies read the (memory-mapped, float16) embeddings block by block; a float32 copy of the
    # whole pool would be 2 GB at 1M samples, and seconds of page faults to make.
    scores = strategy.score_all(pool.X, proba, labelled, exclude_mask=audit)
    sel = strategy.select(pool.X, proba, labelled, batch_size=batch_size, exclude_mask=audit)
    priority = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, neginf=-1e9, posinf=1e9)
    top = float(priority.max()) if len(priority) else 0.0
    reasons: list[str | None] = [None] * len(pool.ids)
    for rank, (i, why) in enumerate(zip(sel.indices, sel.reasons, strict=True)):
        priority[i] = top + 1.0 + (len(sel.indices) - rank)  # the selected batch first, in its order
        reasons[i] = why
    chosen_by = sel.strategy or strategy_name  # what really chose: "random" for margin with no model
    _classes_needing_labels(metrics, pool, proba, n_classes)
    rest = np.flatnonzero(~(labelled | audit))
    rest = rest[~np.isin(rest, sel.indices)]
    if len(rest) > REASONED_PAST_BATCH:
        rest = rest[np.argpartition(-priority[rest], REASONED_PAST_BATCH - 1)[:REASONED_PAST_BATCH]]
    measure = getattr(strategy, "measure", None)  # what ranks the uncertain ones (mixed names its own)
    measure = measure if isinstance(measure, str) else strategy.name
    for i, why in zip(rest, past_batch(proba, rest, chosen_by, measure, scores), strict=True):
        reasons[i] = why
    return scores, priority, reasons, chosen_by


def _classes_needing_labels(metrics: dict, pool: Pool, proba: np.ndarray | None, n_classes: int) -> None:
    """How often the model predicts each class (a class it never predicts never comes up by suggestion),
    and, while some class has fewer than FEW_LABELS labels, the typical samples of the embedding groups
    nobody has labelled yet: the teach view offers them to find a first example of such a class."""
    labelled = pool.labelled
    if proba is not None:
        metrics["predicted"] = np.bincount(proba.argmax(1)[~labelled], minlength=n_classes).tolist()
    # (With no label at all the queue itself is the cold start: nothing to add.)
    if labelled.any() and np.bincount(pool.y[labelled], minlength=n_classes).min() < FEW_LABELS:
        sel = create_strategy("cold_start").select(pool.X, None, labelled, UNEXPLORED, exclude_mask=pool.audit)
        metrics["unexplored"] = [int(pool.ids[i]) for i in sel.indices]


def _labels_to_target(curve: list[tuple[int, float]], target: float) -> dict:
    """Labels needed for ``target`` accuracy on the learning curve, and where the curve levels off (it
    says "not reachable with this model")."""
    fitted = fit_learning_curve(curve)
    return {"target": target, "labels_needed": labels_to_target(curve, float(target)),
            "curve_levels_at": float(fitted[0]) if fitted else None}
