"""Second opinions on purpose: which samples the project's ``overlap`` sends to a second annotator.

A sample the overlap picks waits, after its first label, for a label from another annotator: the queue
serves it to anyone but its first labeller (``app/repos/queue.py``: ``_SECOND``), without that label,
and the two labels feed the dashboard's agreement (``app/services/agreement.py``); a disagreement opens
a review as any second opinion does (``app/services/labels.py``). The sample row names the annotator
whose label awaits (``samples.awaiting_second``, schema 0017), so the queue reads only those samples.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.models import Label, Project, Sample
from app.repos import labels as label_repo
from app.repos import reviews as review_repo
from app.services.errors import Invalid, listed
from app.services.project_settings import effective_settings

# Knuth's multiplicative hash: 2^32 divided by the golden ratio. The hashes of consecutive ids are a
# low-discrepancy sequence in [0, 2^32), so among any run of imported samples (a class folder, a day's
# upload) the overlap picks very nearly its share, not just on average.
_GOLDEN = 2654435761
_SPAN = 2**32


class Rule:
    """A project's overlap: the share of samples (``overlap``) and the classes (``overlap_classes``) whose
    samples, after their first label, go to a second annotator."""

    def __init__(self, project: Project) -> None:
        settings = effective_settings(project.settings)
        self.share: float = float(settings["overlap"])
        self.classes: frozenset[str] = frozenset(settings["overlap_classes"])

    @property
    def active(self) -> bool:
        return self.share > 0 or bool(self.classes)

    def wants(self, sample_id: int, label: str | None) -> bool:
        """Whether a sample first labelled ``label`` awaits a second opinion."""
        return picked(sample_id, self.share) or label in self.classes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and (self.share, self.classes) == (other.share, other.classes)

    __hash__ = None  # type: ignore[assignment]


def check_classes(project: Project) -> None:
    """``overlap_classes`` names classes of the project (422 naming those it does not have)."""
    unknown = sorted(set(effective_settings(project.settings)["overlap_classes"]) - set(project.classes))
    if unknown:
        verb = "is not a class" if len(unknown) == 1 else "are not classes"
        raise Invalid(f"overlap_classes: {listed(unknown)} {verb} of project '{project.name}' (classes: "
                      f"{listed(project.classes)})")


def picked(sample_id: int, overlap: float) -> bool:
    """Whether the overlap picks a sample. Stable (a sample's draw never changes, whoever asks, and a
    larger overlap picks every sample a smaller one did) and spread evenly over the ids."""
    return (sample_id * _GOLDEN) % _SPAN < overlap * _SPAN


def awaiting(status: str, sample_id: int, label: str | None, rows: Sequence[Label], rule: Rule) -> int | None:
    """Who, if anyone, awaits a second opinion on a sample with this history (all its revisions, oldest
    first) and current ``label``: the one annotator behind all its live labels, all first opinions by a
    person, on a labelled sample the rule wants. An import's label, a review's decision or a second
    opinion ends the wait."""
    if status != "labelled" or not rule.wants(sample_id, label):
        return None
    live = label_repo.live(rows)
    if any(r.opinion != "primary" or r.source != "human" or r.user_id is None for r in live):
        return None
    people = {r.user_id for r in live}
    return people.pop() if len(people) == 1 else None


def settings_changed(session: Session, project: Project, before: Rule) -> None:
    """A new overlap applies at once to the samples already labelled: those it now picks and only one
    annotator labelled await a second opinion; those it no longer picks await nothing (one aggregate
    over the project's live labels: an admin's change, not a label call)."""
    now = Rule(project)
    if now == before:
        return
    want: dict[int, int] = {}
    if now.active:
        want = {sid: uid for sid, uid, label in review_repo.sole_labellers(session, project.id)
                if now.wants(sid, label)}
    have = review_repo.awaiting_of(session, project.id)
    changes: dict[int | None, list[int]] = {}
    for sid, uid in want.items():
        if have.get(sid) != uid:
            changes.setdefault(uid, []).append(sid)
    changes.setdefault(None, []).extend(sid for sid in have if sid not in want)
    label_repo.set_awaiting(session, changes)


# ---------------------------------------------------------------- blindness

# Who sees a first label that awaits a second opinion: its labeller, and those who judge opinions (they
# settle the disagreements). Anyone else may be the second annotator, and must not see it first.
SEES_FIRST_LABELS = ("admin", "reviewer")


def blind_for(role: str, user_id: int) -> int | None:
    """The user to keep blind, as the sample queries take it (``samples_repo.Browse.blind_for``), or None
    for a role that sees every label."""
    return None if role in SEES_FIRST_LABELS else user_id


def hides(sample: Sample, blind: int | None) -> bool:
    """Whether ``sample``'s label is hidden from user ``blind``: it awaits a second opinion they may give
    (someone else's first label). Their own second opinion, or anyone's, ends it."""
    return blind is not None and sample.awaiting_second is not None and sample.awaiting_second != blind


def hidden_ids(session: Session, project_id: int, blind: int | None) -> set[int]:
    """The project's samples whose label ``hides`` from ``blind`` (none for a role that sees them all):
    for the lists built from labels elsewhere than the samples table (label issues, guideline examples)."""
    if blind is None:
        return set()
    return {sid for sid, uid in review_repo.awaiting_of(session, project_id).items() if uid != blind}
