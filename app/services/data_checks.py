"""Near-duplicates, outliers and the samples taken out of the pool (issue 18, items 2 and 3).

The train job leaves one set per embedding version (``workers/jobs/data_check.py``); the lists answer
409 until it has run on the current one. Images "far from every class" come from the current model's
stored predictions (lowest confidence among unlabelled samples), so they follow each retrain.

Leaks: a duplicate group with samples on both sides of the random audit sample lets a copy the model
was fitted on be scored as unseen. The data check moves each group's unlabelled members to one side
(``app.repos.data_checks.keep_groups_on_one_side``); a group already labelled on both sides cannot be
moved and is flagged (``splits_audit``) and counted in a warning. An export's train/test split keeps each
group on one side as well (``app/services/export_split.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Project, User
from app.repos import data_checks as repo
from app.services import overlap
from app.services.errors import Conflict, Invalid

NOT_YET = ("{what} have not been computed for the current embeddings yet: the train job looks for them once "
           "per embedding version, after its model (import images and let the first train finish)")
REASONS = ("blank", "atypical", "far_from_classes")
EXCLUDE_REASONS = ("duplicate", "outlier", "blank", "other")


def _current(session: Session, project: Project, what: str):  # -> DataCheckSet
    if project.current_embedding_version_id is None:
        raise Conflict(NOT_YET.format(what=what))
    found = repo.latest(session, project.id, project.current_embedding_version_id)
    if found is None:
        raise Conflict(NOT_YET.format(what=what))
    return found


def _facts_seen_by(session: Session, project: Project, ids: list[int],
                   blind: int | None) -> tuple[dict[int, tuple[str | None, bool]], set[int]]:
    """``repo.sample_facts`` (label, is_audit) with the labels ``blind`` may not see yet set to None, and
    those samples' ids (labelled, but "unlabelled" would be untrue: the list says they await an opinion)."""
    facts = repo.sample_facts(session, project.id, ids)
    hidden = overlap.hidden_ids(session, project.id, blind) & facts.keys()
    return {sid: (None, f[1]) if sid in hidden else f for sid, f in facts.items()}, hidden


def duplicates(session: Session, project: Project, limit: int, blind: int | None = None) -> dict[str, Any]:
    """Groups of near-duplicate samples, largest first, each with its members' labels, whether it spans
    the audit sample and which members are out of the pool. ``blind`` (``overlap.blind_for``): a first
    label awaiting that viewer's second opinion shows as None."""
    found = _current(session, project, "duplicate groups")
    groups = found.groups[:limit]
    ids = [sid for g in groups for sid in g["sample_ids"]]
    facts, hidden = _facts_seen_by(session, project, ids, blind)
    out = repo.exclusions(session, project.id)
    shown = []
    for g in groups:
        members = [sid for sid in g["sample_ids"] if sid in facts]  # a deleted sample leaves its group
        if len(members) < 2:
            continue
        audit = {facts[sid][1] for sid in members}
        shown.append({"sample_ids": members, "similarity": g["similarity"],
                      "labels": {str(sid): facts[sid][0] for sid in members},
                      "awaiting_your_opinion": [sid for sid in members if sid in hidden],
                      "splits_audit": len(audit) == 2,
                      "excluded": [sid for sid in members if sid in out]})
    leaks = sum(g["splits_audit"] for g in shown)
    warning = (f"{leaks} duplicate group(s) have samples both in the audit sample and outside it: the accuracy "
               "estimate may be optimistic when they are labelled (a copy the model learnt is scored as unseen); "
               "exclude the copies outside the audit sample" if leaks else None)
    return {"groups": shown, "total_groups": len(found.groups), "leak_warning": warning,
            "embedding_version_id": found.embedding_version_id, "computed_at": found.created_at,
            "thresholds": {k: found.metrics.get(k)
                           for k in ("threshold", "hash_threshold", "max_hamming", "low_freq_threshold")}}


def outliers(session: Session, project: Project, limit: int, reason: str | None = None,
             blind: int | None = None) -> dict[str, Any]:
    """The most unusual samples: blank images first, then the least typical and those far from every
    class taken in turn; ``reason`` keeps one kind; labels as ``duplicates`` shows them to ``blind``."""
    if reason is not None and reason not in REASONS:
        raise Invalid(f"unknown outlier reason {reason!r}: use one of {', '.join(REASONS)}")
    found = _current(session, project, "outliers")
    by_reason: dict[str, list[dict[str, Any]]] = {r: [] for r in REASONS}
    for item in found.outliers:
        by_reason.setdefault(item["reason"], []).append(item)
    if project.current_model_version_id is not None and reason in (None, "far_from_classes"):
        by_reason["far_from_classes"] = [
            {"sample_id": sid, "score": round(1.0 - conf, 4), "reason": "far_from_classes"}
            for sid, conf in repo.least_confident(session, project.current_model_version_id, limit)
            if len(project.classes) > 1 and conf < 1.0]
    if reason is not None:
        merged = by_reason[reason]
    else:
        merged = list(by_reason["blank"])
        a, f = by_reason["atypical"], by_reason["far_from_classes"]
        for i in range(max(len(a), len(f))):
            merged += a[i:i + 1] + f[i:i + 1]
    seen: set[int] = set()
    items = []
    out = repo.exclusions(session, project.id)
    for item in merged:
        if item["sample_id"] in seen:
            continue
        seen.add(item["sample_id"])
        items.append({**item, "excluded": item["sample_id"] in out})
        if len(items) >= limit:
            break
    facts, hidden = _facts_seen_by(session, project, [i["sample_id"] for i in items], blind)
    items = [{**i, "label": facts[i["sample_id"]][0], "awaiting_your_opinion": i["sample_id"] in hidden}
             for i in items if i["sample_id"] in facts]
    return {"items": items, "embedding_version_id": found.embedding_version_id, "computed_at": found.created_at}


def exclusions(session: Session, project: Project) -> dict[str, Any]:
    rows = sorted(repo.exclusions(session, project.id).values(), key=lambda e: e.created_at, reverse=True)
    return {"items": [{"sample_id": e.sample_id, "reason": e.reason, "note": e.note, "user_id": e.user_id,
                       "created_at": e.created_at} for e in rows]}


def _own(session: Session, project: Project, sample_ids: list[int]) -> list[int]:
    if not sample_ids:
        raise Invalid("sample_ids is empty: name the samples to take out or bring back")
    known = repo.project_sample_ids(session, project.id, sample_ids)
    unknown = [sid for sid in sample_ids if sid not in known]
    if unknown:
        raise Invalid(f"samples {unknown[:10]} are not in project {project.id}")
    return sample_ids


def exclude(session: Session, project: Project, user: User, sample_ids: list[int], reason: str,
            note: str | None) -> dict[str, Any]:
    """Take samples out of the pool: the queue no longer serves them (a copy of another, an odd image)."""
    if reason not in EXCLUDE_REASONS:
        raise Invalid(f"unknown exclusion reason {reason!r}: use one of {', '.join(EXCLUDE_REASONS)}")
    added = repo.exclude(session, project.id, _own(session, project, sample_ids), reason, note, user.id)
    return {"excluded": added, "already": len(set(sample_ids)) - added}


def include(session: Session, project: Project, sample_ids: list[int]) -> dict[str, Any]:
    """Bring excluded samples back into the pool."""
    return {"included": repo.include(session, project.id, _own(session, project, sample_ids))}
