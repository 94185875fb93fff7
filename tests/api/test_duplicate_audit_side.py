"""A duplicate group stays on one side of the audit sample (issue 18, item 2): the data check moves its
unlabelled members to the side of its labelled ones, or of its member with the lowest ``rand_key``, and
never moves a label; a group labelled on both sides stays flagged in GET /duplicates."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import insert, select

from app.db import session_scope
from app.models import Project, Sample
from app.repos.data_checks import keep_groups_on_one_side


def _pool(url: str, rows: list[tuple[str, bool, int]]) -> tuple[int, list[int]]:
    """A project with one sample per (status, is_audit, rand_key); (project id, sample ids in order)."""
    with session_scope(url) as s:
        project = Project(name="audit side", classes=["a", "b"], settings={})
        s.add(project)
        s.flush()
        s.execute(insert(Sample), [
            {"project_id": project.id, "filename": f"{i}.png", "content_hash": f"{i:064x}", "storage_key": "k",
             "thumbnail_key": "t", "width": 1, "height": 1, "mode": "L", "byte_size": 1,
             "created_at": datetime.now(UTC), "status": status, "label": "a" if status == "labelled" else None,
             "rand_key": rk, "is_audit": audit} for i, (status, audit, rk) in enumerate(rows)])
        ids = list(s.scalars(select(Sample.id).where(Sample.project_id == project.id).order_by(Sample.id)))
        return project.id, ids


def test_each_duplicate_group_ends_on_one_side_of_the_audit_sample(db_url):
    U, L = "unlabelled", "labelled"
    pid, ids = _pool(db_url, [
        (U, True, 5), (U, False, 9), (U, False, 7),      # 0-2: no label; the lowest rand_key (5) is audit
        (U, True, 1), (L, False, 8),                     # 3-4: the label is outside: the copy leaves the audit
        (L, True, 3), (U, False, 2), (U, True, 4),       # 5-7: the label is in the audit: the copy joins it
        (L, True, 6), (L, False, 1), (U, True, 0),       # 8-10: labelled on both sides: left as it is
        (U, False, 3), (U, False, 4),                    # 11-12: one side already
    ])
    # As the data check passes them: numpy rows of sample ids.
    groups = [np.array(ids[a:b]) for a, b in ((0, 3), (3, 5), (5, 8), (8, 11), (11, 13))]
    with session_scope(db_url) as s:
        moved = keep_groups_on_one_side(s, pid, groups)
    with session_scope(db_url) as s:
        audit = dict(s.execute(select(Sample.id, Sample.is_audit).where(Sample.project_id == pid)).tuples().all())
    side = [bool(audit[sid]) for sid in ids]
    assert side[0:3] == [True, True, True]
    assert side[3:5] == [False, False]
    assert side[5:8] == [True, True, True]
    assert side[8:11] == [True, False, True]
    assert side[11:13] == [False, False]
    assert moved == 2 + 1 + 1
    with session_scope(db_url) as s:  # a second run finds nothing more to move
        assert keep_groups_on_one_side(s, pid, groups) == 0
