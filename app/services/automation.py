"""What the service does by itself: embed new samples, pretrain once, retrain after every K labels."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import jobs as job_repo
from app.repos import label_counts
from app.repos import labels as label_repo
from app.repos.label_counts import LabelTotals
from app.services.jobs import create_job
from app.services.project_settings import effective_settings


def human_label_count(session: Session, project_id: int) -> int:
    """Labelled samples whose current label a person gave (not an import's folder)."""
    return label_repo.human_label_count(session, project_id)


def labels_until_retrain(session: Session, project: Project, totals: LabelTotals | None = None) -> int:
    """K minus the new labels since the model in use read its labels (``totals``: the counters as this
    transaction left them, if the caller has them, else they are read).

    "New labels" are the project's new-label counter (``label_counts.set_labels``): primary "set"
    revisions of every source, that is first labels and corrections (a relabel, a label after an
    undo, a review's decision, an import's folder labels). Second opinions do not count (the model
    never learns from them) and neither do undos. The train job stores the same counter, read with
    the labels it fits on, in ``model_versions.label_revisions``: like is subtracted from like, so
    undo, relabel and second opinions cannot open a gap that makes every label queue a retrain."""
    every = int(effective_settings(project.settings)["retrain_every"])
    trained_on = 0
    if project.current_model_version_id is not None:
        trained_on = label_counts.trained_on(session, project.current_model_version_id)
    return max(0, every - max(0, (totals or label_counts.totals(session, project.id)).set_labels - trained_on))


def after_labels(session: Session, project: Project, broker_url: str, totals: LabelTotals | None = None) -> None:
    """Schedule a retrain once K labels have arrived since the model in use was trained (one pending
    train job per project: a newer request folds into it). ``totals``: as ``labels_until_retrain``."""
    if labels_until_retrain(session, project, totals) == 0:
        create_job(session, project, None, "train", {"reason": "new labels"}, broker_url)


def after_import(session: Session, project: Project, created: int, broker_url: str) -> None:
    if created == 0:
        return
    cfg = effective_settings(project.settings)
    # Embedding first: it is quick, and it gives the queue a cold-start order while pretraining runs.
    if cfg["auto_embed"]:
        create_job(session, project, None, "embed", {"reason": f"{created} new samples"}, broker_url)
    # A registered backbone used frozen or fine-tuned is not pretrained (only "continue" pretrains it).
    registered_only = cfg.get("backbone") is not None and cfg.get("backbone_mode") != "continue"
    # A text project's encoder is pretrained as an image project's backbone is (issue 19): in the background,
    # in chunks, each judged on the labels before the project switches to TF-IDF and the encoder side by
    # side. The service's own loop on AG News gained with it: docs/benchmarks.md, "Tenth session: text loop".
    if cfg["auto_pretrain"] and project.current_backbone_version_id is None and not registered_only:
        if not job_repo.any_of_kind(session, project.id, "pretrain"):
            create_job(session, project, None, "pretrain", {"reason": "first import"}, broker_url)
