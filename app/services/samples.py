"""Browsing a project's samples: pages by an opaque cursor, and a sample as its project's members see it."""

from __future__ import annotations

import base64

from sqlalchemy.orm import Session

from app.models import Project, Sample, User
from app.repos import samples as samples_repo
from app.services import projects as project_service
from app.services.errors import Invalid, NotFound


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API gave out") from None


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(str(last_id).encode()).decode()


def page(session: Session, project: Project, cursor: str | None, limit: int, status: str | None,
         label: str | None) -> tuple[list[Sample], str | None]:
    """Up to ``limit`` samples after ``cursor``, in id order, and the cursor of the next page (None: last)."""
    rows = samples_repo.page(session, project.id, _decode_cursor(cursor), limit + 1, status, label)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _encode_cursor(rows[-1].id) if more else None


def visible(session: Session, user: User, sample_id: int) -> Sample:
    """The sample, if the caller may see its project; 404 alike if it is missing or they may not."""
    sample = samples_repo.get(session, sample_id)
    if sample is None or project_service.role_in(session, user, sample.project_id) is None:
        raise NotFound(f"sample {sample_id} not found")
    return sample
