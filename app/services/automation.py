"""What the service does by itself: embed new samples, pretrain once, retrain after every K labels."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.models import Job, Label, ModelVersion, Project, Sample
from app.services import labels
from app.services.jobs import create_job
from app.services.project_settings import effective_settings


def human_label_count(session: Session, project_id: int) -> int:
    """Labelled samples whose current label a person gave (not an import's folder), counted as the
    export counts them: by the newest "set" revision of each labelled sample."""
    last_set = (select(Label.sample_id, func.max(Label.id).label("lid"))
                .where(Label.project_id == project_id, Label.action == "set").group_by(Label.sample_id).subquery())
    return int(session.scalar(
        select(func.count()).select_from(Sample).join(last_set, last_set.c.sample_id == Sample.id)
        .join(Label, Label.id == last_set.c.lid)
        .where(Sample.project_id == project_id, Sample.status == "labelled", Label.source != "import")
    ) or 0)


# The one column (the row's metrics, curves and confusion matrix, are JSON to parse for nothing), in a
# statement built once: every label call of a project with a model asks.
_TRAINED_ON = select(ModelVersion.label_revisions).where(ModelVersion.id == bindparam("mv"))


def labels_until_retrain(session: Session, project: Project) -> int:
    """K minus the new labels since the model in use read its labels.

    "New labels" are the project's new-label counter (``label_counts.set_labels``): primary "set"
    revisions of every source, that is first labels and corrections (a relabel, a label after an
    undo, a review's decision, an import's folder labels). Second opinions do not count (the model
    never learns from them) and neither do undos. The train job stores the same counter, read with
    the labels it fits on, in ``model_versions.label_revisions``: like is subtracted from like, so
    undo, relabel and second opinions cannot open a gap that makes every label queue a retrain."""
    every = int(effective_settings(project.settings)["retrain_every"])
    trained_on = 0
    if project.current_model_version_id is not None:
        trained_on = int(session.scalar(_TRAINED_ON, {"mv": project.current_model_version_id}) or 0)
    return max(0, every - max(0, labels.current_totals(session, project.id).set_labels - trained_on))


def after_labels(session: Session, project: Project, broker_url: str) -> None:
    """Schedule a retrain once K labels have arrived since the model in use was trained (one pending
    train job per project: a newer request folds into it)."""
    if labels_until_retrain(session, project) == 0:
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
    if cfg["auto_pretrain"] and project.current_backbone_version_id is None and not registered_only:
        pretrained = session.scalar(select(Job.id).where(Job.project_id == project.id, Job.kind == "pretrain"))
        if pretrained is None:
            create_job(session, project, None, "pretrain", {"reason": "first import"}, broker_url)
