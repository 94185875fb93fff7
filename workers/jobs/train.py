"""The train job: fit the project's estimator on the current labels, score every sample with its
query strategy, and switch the queue to the new model version in one transaction."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import delete, select

from app import embedding_store
from app.db import session_scope
from app.models import ModelVersion, Prediction, Project
from app.repos import samples as samples_repo
from workers.jobs import prediction_writer
from workers.jobs.context import load_context, load_samples
from workers.jobs.runner import Progress

KEEP_VERSIONS = 2  # predictions of the current and the previous version; older ones are dropped


def _ensure_embeddings(job_id: int, progress: Progress):  # noqa: ANN202
    from workers.jobs import embed

    embed.run(job_id, lambda f, msg="", force=False: progress(0.3 * f, msg, force))
    return load_context(job_id)


def _fit(name: str, n_classes: int, X: np.ndarray, y_full: np.ndarray, train_rows: np.ndarray):  # noqa: ANN202
    from ml.estimators import create_estimator

    est = create_estimator(name, n_classes=n_classes)
    if name == "label_spreading":  # transductive: the whole pool, -1 for unlabelled
        y = np.where(train_rows, y_full, -1)
        return est.fit(X, y)
    return est.fit(X[train_rows], y_full[train_rows])


def _proba(est, X: np.ndarray, chunk: int = 4096) -> np.ndarray:  # noqa: ANN001
    # Small blocks: their temporaries (a few MB) are reused by the allocator, where 100k-row blocks were
    # fresh memory each time and page faults alone cost seconds per million rows.
    out = None
    for i in range(0, len(X), chunk):
        p = est.predict_proba(np.asarray(X[i:i + chunk], dtype=np.float32))
        if out is None:
            out = np.empty((len(X), p.shape[1]), dtype=np.float32)
        out[i:i + len(p)] = p
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def run(job_id: int, progress: Progress) -> dict:
    from ml.evaluation import audit_accuracy, labels_to_target
    from ml.strategies import create_strategy

    ctx = load_context(job_id)
    if ctx.current_embedding is None:
        ctx = _ensure_embeddings(job_id, progress)
    emb = ctx.current_embedding
    assert emb is not None
    t0 = time.perf_counter()
    emb_ids, X = embedding_store.read(ctx.media, emb.file_key, emb.ids_key)
    samples = load_samples(ctx)
    # Samples imported after this embedding version are left to the next embed/train round.
    pos = np.searchsorted(samples.ids, emb_ids)
    keep = (pos < len(samples.ids)) & (samples.ids[np.minimum(pos, len(samples.ids) - 1)] == emb_ids)
    emb_ids, X, pos = emb_ids[keep], X[keep] if not keep.all() else X, pos[keep]
    index = {c: i for i, c in enumerate(ctx.classes)}
    # One pass that touches only the labelled rows (a Python loop over every sample is seconds at 1M).
    y_all = np.full(len(samples.ids), -1, dtype=np.int64)
    for j, lab in enumerate(samples.labels):
        if lab:
            y_all[j] = index.get(lab, -1)
    y_full = y_all[pos]
    audit = samples.is_audit[pos]
    labelled = y_full >= 0
    C = len(ctx.classes)
    estimator, strategy_name = ctx.settings["estimator"], ctx.settings["strategy"]
    metrics: dict = {"estimator": estimator, "strategy": strategy_name, "samples": int(len(emb_ids)),
                     "labels": int(labelled.sum()), "audit_labels": int((labelled & audit).sum())}
    progress(0.35, f"fitting {estimator} on {int(labelled.sum())} labels", force=True)
    proba = None
    if labelled.any():
        # The honest estimate: a model fitted without the audit labels, scored on them. The model the
        # queue uses is then fitted on every label.
        train_rows, audit_rows = labelled & ~audit, labelled & audit
        if audit_rows.any() and train_rows.any():
            est_a = _fit(estimator, C, X, y_full, train_rows)
            pred = _proba(est_a, X[audit_rows] if estimator != "label_spreading" else X).argmax(1)
            if estimator == "label_spreading":
                pred = pred[audit_rows]
            acc, lo, hi = audit_accuracy(y_full[audit_rows], pred)
            metrics.update(accuracy_estimate=acc, ci_low=lo, ci_high=hi)
            confusion = np.zeros((C, C), dtype=int)
            np.add.at(confusion, (y_full[audit_rows], pred), 1)
            metrics["confusion"] = confusion.tolist()
        est = _fit(estimator, C, X, y_full, labelled)
        proba = _proba(est, X)
    fit_s = time.perf_counter() - t0
    progress(0.6, "scoring every sample", force=True)
    strategy = create_strategy(strategy_name, seed=int(labelled.sum()))
    # The strategies read the (memory-mapped, float16) embeddings block by block; a float32 copy of the
    # whole pool would be 2 GB at 1M samples, and seconds of page faults to make.
    scores = strategy.score_all(X, proba, labelled, exclude_mask=audit)
    sel = strategy.select(X, proba, labelled, batch_size=int(ctx.settings["batch_size"]), exclude_mask=audit)
    priority = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, neginf=-1e9, posinf=1e9)
    top = float(priority.max()) if len(priority) else 0.0
    probability = np.full(len(emb_ids), np.nan)
    reasons: list[str | None] = [None] * len(emb_ids)
    for rank, (i, p, why) in enumerate(zip(sel.indices, sel.probabilities, sel.reasons, strict=True)):
        priority[i] = top + 1.0 + (len(sel.indices) - rank)  # the selected batch first, in its order
        probability[i], reasons[i] = p, why
    score_s = time.perf_counter() - t0 - fit_s

    with session_scope(ctx.db_url) as s:
        curve = [(v.label_count, (v.metrics or {}).get("accuracy_estimate")) for v in s.scalars(
            select(ModelVersion).where(ModelVersion.project_id == ctx.project_id).order_by(ModelVersion.id))]
    curve = [(n, a) for n, a in curve if a is not None]
    if "accuracy_estimate" in metrics:
        curve.append((int(labelled.sum()), metrics["accuracy_estimate"]))
        need = labels_to_target(curve, float(ctx.settings["target_accuracy"]))
        metrics["labels_to_target"] = {"target": ctx.settings["target_accuracy"], "labels_needed": need}

    progress(0.75, f"writing {len(emb_ids)} suggestions", force=True)
    with session_scope(ctx.db_url) as s:
        mv = ModelVersion(project_id=ctx.project_id, job_id=job_id, estimator=estimator if proba is not None else "none",
                          strategy=strategy_name if proba is not None else "cold_start",
                          params={"batch_size": ctx.settings["batch_size"]}, label_count=int(labelled.sum()),
                          embedding_version_id=emb.id, metrics=metrics)
        s.add(mv)
        s.flush()
        mv_id = mv.id
    t_write = time.perf_counter()
    prediction_writer.write(ctx.db_url, mv_id, emb_ids, ctx.classes, proba, scores, priority, probability, reasons)
    metrics.update(fit_seconds=round(fit_s, 3), score_seconds=round(score_s, 3),
                   write_seconds=round(time.perf_counter() - t_write, 3))
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        assert project is not None
        mv = s.get(ModelVersion, mv_id)
        assert mv is not None
        mv.metrics = metrics
        project.current_model_version_id = mv_id  # the queue switches here, atomically
        old = list(s.scalars(select(ModelVersion.id).where(ModelVersion.project_id == ctx.project_id)
                             .order_by(ModelVersion.id.desc()).offset(KEEP_VERSIONS)))
        if old:
            s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
    with session_scope(ctx.db_url) as s:
        samples_repo.compact_counts(s, ctx.project_id)
    return {"model_version": mv_id, "labels": int(labelled.sum()), "samples": int(len(emb_ids)),
            **{k: metrics[k] for k in ("accuracy_estimate",) if k in metrics}}
