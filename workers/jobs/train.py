"""The train job: fit on the current labels, write a suggestion and a score for every sample, and
switch the project's queue to the new model version in one transaction."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import insert, select

from app.db import session_scope
from app.models import Job, ModelVersion, Prediction, Project, Sample
from app.settings import get_settings
from app.storage import BlobStore
from ml.pixel_baseline import fit_predict_proba, pixel_features
from workers.jobs.runner import Progress

INSERT_CHUNK = 5000


def run(job_id: int, progress: Progress) -> dict:
    settings = get_settings()
    store = BlobStore(settings.media_path)
    t0 = time.perf_counter()
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        project = s.get(Project, job.project_id)
        assert project is not None
        pid, classes = project.id, list(project.classes)
        rows = s.execute(
            select(Sample.id, Sample.storage_key, Sample.label).where(Sample.project_id == pid).order_by(Sample.id)
        ).all()
    index = {c: i for i, c in enumerate(classes)}
    labelled = [i for i, r in enumerate(rows) if r.label in index]
    if not labelled:
        raise ValueError("the project has no labels yet: label some samples, then train")
    progress(0.05, f"reading {len(rows)} images", force=True)
    X = pixel_features([str(store.path(r.storage_key)) for r in rows],
                       progress=lambda f: progress(0.05 + 0.6 * f, "reading images"))
    y = np.array([index[rows[i].label] for i in labelled])
    progress(0.7, f"fitting on {len(labelled)} labels", force=True)
    proba = fit_predict_proba(X[labelled], y, X, len(classes))
    confidence = proba.max(axis=1)
    suggestion = proba.argmax(axis=1)
    score = 1.0 - confidence  # least confidence: the queue asks about what the model is least sure of
    progress(0.85, "writing suggestions", force=True)
    with session_scope(settings.database_url) as s:
        mv = ModelVersion(project_id=pid, job_id=job_id, estimator="pixel-logreg", strategy="least-confidence",
                          params={"features": "pixels16"}, label_count=len(labelled),
                          metrics={"train_seconds": round(time.perf_counter() - t0, 3)})
        s.add(mv)
        s.flush()
        preds = [
            {"model_version_id": mv.id, "sample_id": r.id, "label": classes[int(suggestion[i])],
             "confidence": float(confidence[i]), "score": float(score[i])}
            for i, r in enumerate(rows)
        ]
        for start in range(0, len(preds), INSERT_CHUNK):
            s.execute(insert(Prediction), preds[start : start + INSERT_CHUNK])
        project = s.get(Project, pid)
        assert project is not None
        project.current_model_version_id = mv.id
        mv_id = mv.id
    return {"model_version": mv_id, "labels": len(labelled), "samples": len(rows)}
