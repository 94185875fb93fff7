"""What the model thinks and what the experts said: the current predictions page by page, and the
dashboard's metrics (its figures worded by ``app/services/figures.py``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Project
from app.repos import results as results_repo
from app.repos import samples as samples_repo
from app.services import agreement, automation, figures, notes


def predictions_page(session: Session, project: Project, cursor: int, limit: int) \
        -> tuple[int | None, list[Prediction], str | None]:
    """(the current model version, up to ``limit`` of its predictions after sample id ``cursor``, the next
    page's cursor or None)."""
    mv = project.current_model_version_id
    if mv is None:
        return None, [], None
    rows = results_repo.predictions_page(session, mv, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return mv, rows, str(rows[-1].sample_id) if more else None


def _curve_point(v: ModelVersion) -> dict:
    m = v.metrics or {}
    return {"model_version": v.id, "number": v.number, "labels": v.label_count,
            "accuracy": m.get("accuracy_estimate"), "ci_low": m.get("ci_low"), "ci_high": m.get("ci_high"),
            "created_at": v.created_at.isoformat()}


def metrics(session: Session, project: Project) -> dict:
    """Counts, class balance, the learning curve (audit accuracy per model version vs labels), the
    confusion on the audit set, and how many labels the target accuracy still needs."""
    pid = project.id
    total, labelled = samples_repo.counts(session, [pid]).get(pid, (0, 0))
    versions = results_repo.model_versions(session, pid)
    current = next((v for v in versions if v.id == project.current_model_version_id), None)
    cur = (current.metrics or {}) if current else {}
    until = automation.labels_until_retrain(session, project)
    balance = figures.class_balance(session, project)
    unsure = notes.unsure_count(session, project)
    return {
        "sample_count": total,
        "labelled_count": labelled,
        "human_label_count": automation.human_label_count(session, pid),
        "unsure_count": unsure,  # in doubt: counted neither labelled nor unlabelled
        "class_balance": balance,
        "classes_needing_labels": figures.classes_needing_labels(project, balance, cur),
        "model_version": project.current_model_version_id,
        "model_number": current.number if current else None,
        "estimator": current.estimator if current else None,
        "strategy": current.strategy if current else None,
        "accuracy_estimate": cur.get("accuracy_estimate"),
        "accuracy_ci": [cur.get("ci_low"), cur.get("ci_high")] if "ci_low" in cur else None,
        "audit_label_count": cur.get("audit_labels", 0),
        "confusion": {"classes": project.classes, "matrix": cur["confusion"]} if "confusion" in cur else None,
        # Left to label: neither labelled nor in doubt (a reviewer, not the queue, labels those).
        "labels_to_target": figures.target(project, cur, max(0, total - labelled - unsure)),
        "labels_until_retrain": until,
        "retrain": figures.retrain(session, project, until),
        "agreement": agreement.of_project(session, project),
        "learning_curve": [_curve_point(v) for v in versions],
    }
