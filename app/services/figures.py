"""The dashboard's figures about accuracy, the target and the next retrain, said honestly: an estimate
always with its interval and the number of audit labels behind it, a target "reached" only on enough of
them, labels to the target capped at what is left to label, "due" only when a retrain is queued."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import jobs as jobs_repo
from app.repos import samples as samples_repo
from app.services.project_settings import effective_settings

# Fewer audit labels than this, and an estimate at the target says little: with 10 all correct, the 95 %
# interval still reaches down to 72 %. The dashboard says "keep labelling" instead of "reached".
MIN_AUDIT_LABELS = 30


def target(project: Project, metrics: dict, unlabelled: int) -> dict | None:
    """Where the project stands against its target accuracy, as a status the UI words:

    reached, on_few_labels (at the target, on fewer than MIN_AUDIT_LABELS audit labels), needs (about
    ``labels_needed`` more by the fitted learning curve), not_reachable (the fitted curve levels off below
    the target, or would need more labels than are left unlabelled), unknown (too few model versions)."""
    estimate = metrics.get("accuracy_estimate")
    if estimate is None:
        return None
    stored = metrics.get("labels_to_target") or {}
    goal = float(stored.get("target", effective_settings(project.settings)["target_accuracy"]))
    audit = int(metrics.get("audit_labels", 0))
    need, levels = stored.get("labels_needed"), stored.get("curve_levels_at")
    out = {"target": goal, "labels_needed": None, "audit_labels": audit, "unlabelled": unlabelled,
           "curve_levels_at": levels}
    if estimate >= goal:
        return out | {"status": "reached" if audit >= MIN_AUDIT_LABELS else "on_few_labels",
                      "labels_needed": 0 if audit >= MIN_AUDIT_LABELS else None}
    if need is None:
        below = levels is not None and levels < goal
        return out | {"status": "not_reachable" if below else "unknown"}
    if need > unlabelled:  # "171,092 more labels" on a 400-image project: more than there is to label
        return out | {"status": "not_reachable"}
    return out | {"status": "needs", "labels_needed": int(need)}


def retrain(session: Session, project: Project, labels_to_go: int) -> dict:
    """The next retrain: labels still to go, and the train job queued or running, if there is one."""
    trains = [j for j in jobs_repo.active(session, project.id) if j.kind == "train"]
    job = max(trains, key=lambda j: j.id, default=None)
    return {"labels_to_go": labels_to_go, "job": {"id": job.id, "state": job.state} if job else None}


def class_balance(session: Session, project: Project) -> dict[str, int]:
    """Labelled samples per class of the project (0 for a class nobody labelled)."""
    counts = samples_repo.class_balance(session, project.id)
    return {c: counts.get(c, 0) for c in project.classes}


FEW_LABELS = 5  # as the train job's (workers/jobs/train.py): below it, a class is flagged


def classes_needing_labels(project: Project, balance: dict[str, int], metrics: dict) -> list[dict]:
    """Classes with no or few labels, and how often the current model predicts each (``None`` without a
    model): a class the model never predicts never comes up by suggestion, and in a queue ordered by the
    model it may never come up at all."""
    predicted = metrics.get("predicted")
    out = []
    for i, c in enumerate(project.classes):
        if balance.get(c, 0) < FEW_LABELS:
            out.append({"class": c, "labels": balance.get(c, 0),
                        "predicted": predicted[i] if predicted and i < len(predicted) else None})
    return out
