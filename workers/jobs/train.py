"""The train job: fit the project's estimator on the current labels, score every sample with its
query strategy, and switch the queue to the new model version in one transaction."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import delete, func, select

from app import embedding_store
from app.db import get_engine, session_scope
from app.models import ModelVersion, Prediction, Project, Sample
from app.repos import samples as samples_repo
from app.services.labels import totals as label_totals
from workers.jobs import prediction_writer
from workers.jobs.context import JobContext, load_context, load_samples
from workers.jobs.progress import Progress

KEEP_VERSIONS = 2  # predictions of the current and the previous version; older ones are dropped


def _ensure_embeddings(job_id: int, progress: Progress):
    from workers.jobs import embed

    # Keyword arguments (eta_s, figures) pass through: the embed job reports them.
    embed.run(job_id, lambda f, msg="", force=False, **kw: progress(0.3 * f, msg, force, **kw), follow_up_train=False)
    return load_context(job_id)


def _fit(name: str, n_classes: int, X: np.ndarray, y_full: np.ndarray, train_rows: np.ndarray):
    from ml.estimators import create_estimator

    est = create_estimator(name, n_classes=n_classes)
    if est.semi_supervised:  # the whole pool takes part, -1 for unlabelled (label spreading's graph)
        y = np.where(train_rows, y_full, -1)
        return est.fit(X, y)
    return est.fit(X[train_rows], y_full[train_rows])


def _proba(est, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
    # Small blocks: their temporaries (a few MB) are reused by the allocator, where 100k-row blocks were
    # fresh memory each time and page faults alone cost seconds per million rows.
    out = None
    for i in range(0, len(X), chunk):
        p = est.predict_proba(np.asarray(X[i:i + chunk], dtype=np.float32))
        if out is None:
            out = np.empty((len(X), p.shape[1]), dtype=np.float32)
        out[i:i + len(p)] = p
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def _pool(ctx: JobContext) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """(sample ids ascending, is_audit, {sample id: label} of the labelled ones).

    On PostgreSQL the two columns of every sample come as one binary COPY read straight into numpy
    (1.6 s at 1M samples, where building a million result rows took 6 s); the labels of the few
    labelled samples by a query of their own."""
    engine = get_engine(ctx.db_url)
    with session_scope(ctx.db_url) as s:
        labels = dict(s.execute(select(Sample.id, Sample.label).where(
            Sample.project_id == ctx.project_id, Sample.status == "labelled", Sample.label.is_not(None))).all())
    if engine.dialect.name != "postgresql":
        table = load_samples(ctx)
        return table.ids, table.is_audit, labels
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(
            f"COPY (SELECT id, is_audit::int FROM samples WHERE project_id = {int(ctx.project_id)} ORDER BY id) "
            "TO STDOUT (FORMAT binary)"
        ) as copy:
            data = b"".join(bytes(block) for block in copy)
        raw.commit()
    finally:
        raw.close()
    # 19-byte header, then per row: int16 field count, and (int32 length, int32 value) twice; int16 trailer.
    row = np.dtype([("n", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"), ("audit", ">i4")])
    rows = np.frombuffer(data, dtype=row, offset=19, count=(len(data) - 21) // row.itemsize)
    if len(rows) and not ((rows["n"] == 2).all() and (rows["l1"] == 4).all() and (rows["l2"] == 4).all()):
        raise ValueError("unexpected binary COPY layout reading the samples")
    return rows["id"].astype(np.int64), rows["audit"].astype(bool), labels


# Queue items past the selected batch are served too (by score) until the next model: this many of them
# carry a reason as well (a string each in the bulk write; the rest are rarely reached before a retrain).
REASONED_PAST_BATCH = 2000


def _past_batch(proba, priority, not_served, batch, chosen_by: str, strategy, scores):
    from ml.strategies.reasons import past_batch

    rest = np.flatnonzero(~not_served)
    rest = rest[~np.isin(rest, batch)]
    if len(rest) > REASONED_PAST_BATCH:
        rest = rest[np.argpartition(-priority[rest], REASONED_PAST_BATCH - 1)[:REASONED_PAST_BATCH]]
    measure = strategy.measure if isinstance(getattr(strategy, "measure", None), str) else strategy.name
    return rest, past_batch(proba, rest, chosen_by, measure, scores)


FEW_LABELS = 5  # a class with fewer labels is flagged on the dashboard (app/services/figures.py says so too)
UNEXPLORED = 48  # typical samples of groups nobody has labelled: where a class never seen may hide


def _classes_needing_labels(metrics: dict, ids, X, proba, y_full, labelled, audit, n_classes: int) -> None:
    """How often the model predicts each class (a class it never predicts never comes up by suggestion),
    and, while some class has fewer than FEW_LABELS labels, the typical samples of the embedding groups
    nobody has labelled yet: the teach view offers them to find a first example of such a class."""
    from ml.strategies import create_strategy

    if proba is not None:
        metrics["predicted"] = np.bincount(proba.argmax(1)[~labelled], minlength=n_classes).tolist()
    # (With no label at all the queue itself is the cold start: nothing to add.)
    if labelled.any() and np.bincount(y_full[labelled], minlength=n_classes).min() < FEW_LABELS:
        sel = create_strategy("cold_start").select(X, None, labelled, UNEXPLORED, exclude_mask=audit)
        metrics["unexplored"] = [int(ids[i]) for i in sel.indices]


def run(job_id: int, progress: Progress) -> dict:
    from ml.evaluation import audit_accuracy, fit_learning_curve, labels_to_target
    from ml.strategies import create_strategy

    ctx = load_context(job_id)
    if ctx.current_embedding is None:
        ctx = _ensure_embeddings(job_id, progress)
    emb = ctx.current_embedding
    assert emb is not None
    t0 = time.perf_counter()
    emb_ids, X = embedding_store.read(ctx.media, emb.file_key, emb.ids_key)
    # The new-label counter the retrain trigger compares with (app/services/automation.py), read
    # before the labels: a label arriving in between is fitted and still counts towards the next retrain.
    with session_scope(ctx.db_url) as s:
        label_revisions = label_totals(s, ctx.project_id).set_labels
    sample_ids, is_audit, labels = _pool(ctx)
    # Samples imported after this embedding version are left to the next embed/train round.
    pos = np.searchsorted(sample_ids, emb_ids)
    keep = (pos < len(sample_ids)) & (sample_ids[np.minimum(pos, len(sample_ids) - 1)] == emb_ids)
    emb_ids, X, pos = emb_ids[keep], X[keep] if not keep.all() else X, pos[keep]
    index = {c: i for i, c in enumerate(ctx.classes)}
    y_all = np.full(len(sample_ids), -1, dtype=np.int64)
    if labels:
        y_all[np.searchsorted(sample_ids, np.fromiter(labels, np.int64, len(labels)))] = [
            index.get(lab, -1) for lab in labels.values()]
    y_full = y_all[pos]
    audit = is_audit[pos]
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
            # A semi-supervised model was fitted on the whole pool; the audit rows are scored within it.
            pred = _proba(est_a, X if est_a.semi_supervised else X[audit_rows]).argmax(1)
            if est_a.semi_supervised:
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
    reasons: list[str | None] = [None] * len(emb_ids)
    for rank, (i, why) in enumerate(zip(sel.indices, sel.reasons, strict=True)):
        priority[i] = top + 1.0 + (len(sel.indices) - rank)  # the selected batch first, in its order
        reasons[i] = why
    chosen_by = sel.strategy or strategy_name  # what really chose: "random" for margin with no model
    _classes_needing_labels(metrics, emb_ids, X, proba, y_full, labelled, audit, C)
    for i, why in zip(*_past_batch(proba, priority, labelled | audit, sel.indices, chosen_by, strategy, scores),
                      strict=True):
        reasons[i] = why
    score_s = time.perf_counter() - t0 - fit_s

    with session_scope(ctx.db_url) as s:
        curve = [(v.label_count, (v.metrics or {}).get("accuracy_estimate")) for v in s.scalars(
            select(ModelVersion).where(ModelVersion.project_id == ctx.project_id).order_by(ModelVersion.id))]
    curve = [(n, a) for n, a in curve if a is not None]
    if "accuracy_estimate" in metrics:
        curve.append((int(labelled.sum()), metrics["accuracy_estimate"]))
        need = labels_to_target(curve, float(ctx.settings["target_accuracy"]))
        fitted = fit_learning_curve(curve)  # where the curve levels off: says "not reachable with this model"
        metrics["labels_to_target"] = {"target": ctx.settings["target_accuracy"], "labels_needed": need,
                                       "curve_levels_at": float(fitted[0]) if fitted else None}

    progress(0.75, f"writing {len(emb_ids)} suggestions", force=True)
    with session_scope(ctx.db_url) as s:
        mv = ModelVersion(project_id=ctx.project_id, job_id=job_id,
                          estimator=estimator if proba is not None else "none",
                          strategy=chosen_by,
                          params={"batch_size": ctx.settings["batch_size"]}, label_count=int(labelled.sum()),
                          embedding_version_id=emb.id, metrics=metrics, label_revisions=label_revisions,
                          number=int(s.scalar(select(func.coalesce(func.max(ModelVersion.number), 0))
                                              .where(ModelVersion.project_id == ctx.project_id))) + 1)
        s.add(mv)
        s.flush()
        mv_id = mv.id
    t_write = time.perf_counter()
    prediction_writer.write(ctx.db_url, mv_id, emb_ids, ctx.classes, proba, scores, priority, reasons)
    metrics.update(fit_seconds=round(fit_s, 3), score_seconds=round(score_s, 3),
                   write_seconds=round(time.perf_counter() - t_write, 3))
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        assert project is not None
        mv = s.get(ModelVersion, mv_id)
        assert mv is not None
        mv.metrics = metrics
        # The queue switches here, atomically, and only forwards: a run that outlived a newer one (a
        # stale job retried while the first process still ran) never switches it back to older picks.
        if project.current_model_version_id is None or project.current_model_version_id < mv_id:
            project.current_model_version_id = mv_id
    # Clean-up after the switch, in transactions of their own: the queue does not wait for them.
    with session_scope(ctx.db_url) as s:
        old = list(s.scalars(select(ModelVersion.id).where(ModelVersion.project_id == ctx.project_id)
                             .order_by(ModelVersion.id.desc()).offset(KEEP_VERSIONS)))
        if old:
            s.execute(delete(Prediction).where(Prediction.model_version_id.in_(old)))
    with session_scope(ctx.db_url) as s:
        samples_repo.compact_counts(s, ctx.project_id)
    return {"model_version": mv_id, "labels": int(labelled.sum()), "samples": int(len(emb_ids)),
            **{k: metrics[k] for k in ("accuracy_estimate",) if k in metrics}}
