"""A train/test split of an export that keeps near-duplicates on one side (issue 18, item 2).

A team that trains its own model on Loupe's labels needs a held-out set that holds no copy of a training
picture: a re-encoded or cropped copy on the other side makes the held-out accuracy a memory test. The
export's ``test_share`` puts each sample in ``train`` or ``test`` by a draw from its id (a hash, so the
same sample lands on the same side in every export, however the labels grow), and a whole duplicate group
(the data check's, ``app/services/data_checks.py``) by the draw of its smallest id. Where the data check
has not run on the current embeddings, the split cannot know the groups: it says so (``warning``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import data_checks as data_check_repo

_UNCHECKED = ("near-duplicates have not been checked for the current embeddings yet (the train job does it), so "
              "copies of one picture may fall on both sides of this split")


def draw(project_id: int, sample_id: int) -> float:
    """A uniform number in [0, 1) fixed for a sample: its side does not change from export to export."""
    digest = hashlib.blake2b(f"{project_id}:{sample_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Split:
    project_id: int
    test_share: float
    group_of: dict[int, int] = field(default_factory=dict)  # a grouped sample's id -> its group's smallest id
    warning: str | None = None

    def side(self, sample_id: int) -> str:
        key = self.group_of.get(sample_id, sample_id)
        return "test" if draw(self.project_id, key) < self.test_share else "train"


def split_of(session: Session, project: Project, test_share: float) -> Split:
    """The split of ``project``'s export with ``test_share`` of the samples (and groups) held out."""
    found = None
    if project.current_embedding_version_id is not None:
        found = data_check_repo.latest(session, project.id, project.current_embedding_version_id)
    if found is None:
        return Split(project.id, test_share, warning=_UNCHECKED)
    group_of = {int(sid): min(map(int, g["sample_ids"])) for g in found.groups for sid in g["sample_ids"]}
    return Split(project.id, test_share, group_of)


def for_export(session: Session, project: Project, test_share: float | None,
               fields: list[str]) -> tuple[Split | None, list[str], dict[str, str]]:
    """What an export with ``test_share`` (or none) needs: the split, its columns and its response headers."""
    if test_share is None:
        return None, fields, {}
    split = split_of(session, project, test_share)
    return split, [*fields, "split"], {"Loupe-Warning": split.warning} if split.warning else {}


def with_sides(rows: Iterable[dict], split: Split | None) -> Iterator[dict]:
    """``rows`` with each one's side added under ``split`` (as they are without a split)."""
    for row in rows:
        yield row if split is None else {**row, "split": split.side(row["sample_id"])}
