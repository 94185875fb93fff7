"""What the service does by itself: embed new samples, pretrain once, retrain after every K labels."""

from __future__ import annotations

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.models import Job, Label, ModelVersion, Project
from app.services import labels
from app.services.jobs import create_job
from app.services.project_settings import effective_settings


def human_label_count(session: Session, project_id: int) -> int:
    """Labels people gave and did not undo (imported folder labels do not count)."""
    undone = select(Label.undoes_id).where(Label.project_id == project_id, Label.action == "undo",
                                           Label.undoes_id.is_not(None))
    return int(session.scalar(
        select(func.count()).where(Label.project_id == project_id, Label.action == "set", Label.source != "import",
                                   Label.id.not_in(undone))
    ) or 0)


# The one column (the row's metrics, curves and confusion matrix, are JSON to parse for nothing), in a
# statement built once: every label call of a project with a model asks.
_TRAINED_ON = select(ModelVersion.label_count).where(ModelVersion.id == bindparam("mv"))


def labels_until_retrain(session: Session, project: Project) -> int:
    """K minus the label revisions ("set" rows, every source) since the model in use was trained.

    The revisions are the project's counters (schema 0007), not a count over its labels each call."""
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
    if cfg["auto_pretrain"] and project.current_backbone_version_id is None:
        pretrained = session.scalar(select(Job.id).where(Job.project_id == project.id, Job.kind == "pretrain"))
        if pretrained is None:
            create_job(session, project, None, "pretrain", {"reason": "first import"}, broker_url)
