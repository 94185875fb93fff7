"""The train job: fit the project's estimator on the current labels, score every sample with its
query strategy, and switch the queue to the new model version in one transaction.

Thin: it reads the arrays (``app.repos.predictions.training_pool``, the embedding file), hands them to
``ml.fit.fit_round`` and stores the result (``app.repos.predictions.store_version``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from app import embedding_store
from app.db import session_scope
from app.repos import predictions as predictions_repo
from app.repos import samples as samples_repo
from app.repos.label_counts import totals as label_totals
from workers.jobs import data_check, explain_occlusion, explain_terms, label_issues
from workers.jobs.context import JobContext, load_context
from workers.jobs.progress import Progress

if TYPE_CHECKING:
    from ml.fit import Pool


def _ensure_embeddings(job_id: int, progress: Progress) -> JobContext:
    from workers.jobs import embed

    # Keyword arguments (eta_s, figures) pass through: the embed job reports them.
    embed.run(job_id, lambda f, msg="", force=False, **kw: progress(0.3 * f, msg, force, **kw), follow_up_train=False)
    return load_context(job_id)


def _read_pool(ctx: JobContext) -> Pool:
    """The current embedding's rows with each sample's class index (-1 unlabelled) and audit flag."""
    from ml.block_weights import is_weighted
    from ml.fit import align

    emb = ctx.current_embedding
    assert emb is not None
    emb_ids, X = embedding_store.read(ctx.media, emb.file_key, emb.ids_key)
    pool = predictions_repo.training_pool(ctx.db_url, ctx.project_id)
    index = {c: i for i, c in enumerate(ctx.classes)}
    label_ids = np.fromiter(pool.labels, np.int64, len(pool.labels))
    codes = np.array([index.get(lab, -1) for lab in pool.labels.values()], dtype=np.int64)
    # The blocks the embedding lays side by side (recorded by the embed job; co-training's views) and
    # whether its layer asks for their weights to be learned on the labels.
    blocks = (emb.metrics or {}).get("blocks")
    return align(emb_ids, X, pool.ids, pool.is_audit, label_ids, codes, blocks=tuple(blocks) if blocks else None,
                 weighted=is_weighted(emb.layer or ""))


def run(job_id: int, progress: Progress) -> dict:
    from ml.fit import fit_round

    ctx = load_context(job_id)
    if ctx.current_embedding is None:
        ctx = _ensure_embeddings(job_id, progress)
    assert ctx.current_embedding is not None
    t0 = time.perf_counter()
    # The new-label counter the retrain trigger compares with (app/services/automation.py), read
    # before the labels: a label arriving in between is fitted and still counts towards the next retrain.
    with session_scope(ctx.db_url) as s:
        label_revisions = label_totals(s, ctx.project_id).set_labels
        curve = predictions_repo.learning_curve(s, ctx.project_id)
    pool = _read_pool(ctx)
    read_s = time.perf_counter() - t0
    cfg = ctx.settings
    result = fit_round(pool, len(ctx.classes), estimator=cfg["estimator"], strategy=cfg["strategy"],
                       batch_size=int(cfg["batch_size"]), curve=curve, target_accuracy=cfg["target_accuracy"],
                       progress=lambda f, msg: progress(0.35 + 0.5 * f, msg, force=True))
    progress(0.75, f"writing {len(pool.ids)} suggestions", force=True)
    labels = int(pool.labelled.sum())
    metrics = {**result.metrics, "fit_seconds": round(read_s + result.fit_seconds, 3),
               "score_seconds": round(result.score_seconds, 3)}
    mv_id = predictions_repo.store_version(
        ctx.db_url,
        predictions_repo.NewModelVersion(
            project_id=ctx.project_id, job_id=job_id, estimator=result.estimator, strategy=result.chosen_by,
            params={"batch_size": cfg["batch_size"]}, label_count=labels,
            embedding_version_id=ctx.current_embedding.id, metrics=metrics, label_revisions=label_revisions),
        predictions_repo.Predictions(sample_ids=pool.ids, classes=ctx.classes, proba=result.proba,
                                     scores=result.scores, priority=result.priority, reasons=result.reasons))
    with session_scope(ctx.db_url) as s:
        samples_repo.compact_counts(s, ctx.project_id)
    # The labels the model doubts (issue 18), on the same pool: after the queue has switched, so the
    # expert's next item never waits for it.
    progress(0.9, f"checking {labels} labels for likely errors", force=True)
    doubted = label_issues.refresh(ctx, pool, mv_id)
    # A text project's words that drive each class (issue 19): the label view highlights them.
    explained = explain_terms.refresh(ctx, pool, result.proba, mv_id)
    # ... and, once its embedding holds the project's encoder, by occlusion for the documents served next.
    progress(0.91, "finding the words behind the next suggestions", force=True)
    occluded = explain_occlusion.refresh(ctx, pool, result.model, result.proba, result.priority, mv_id)
    # Near-duplicates and outliers (issue 18), once per embedding version.
    checked = data_check.refresh(ctx, pool, lambda f, msg: progress(0.92 + 0.08 * f, msg))
    return {"model_version": mv_id, "labels": labels, "samples": int(len(pool.ids)), "doubted_labels": doubted,
            **({"data_check": checked} if checked else {}), **({"explained_terms": explained} if explained else {}),
            **({"occluded_documents": occluded} if occluded else {}),
            **{k: metrics[k] for k in ("accuracy_estimate",) if k in metrics}}
