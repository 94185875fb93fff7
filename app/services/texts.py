"""A text project's documents as the API serves them (issue 19)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.models import Project, Sample
from app.repos import texts as texts_repo
from app.services.errors import Invalid, NotFound

QUEUE_CHARS = 2000  # a queue item carries the start of its document; GET /samples/{sid}/text the whole
SNIPPET_CHARS = 300  # what the sample browser, the teach view and the review list show of each
MAX_SNIPPETS = 200  # ids per request: one page of any of those views


def document(session: Session, sample: Sample) -> str:
    text = texts_repo.text_of(session, sample.id)
    if text is None:
        raise NotFound(f"sample {sample.id} has no text: it is an image (GET /samples/{sample.id}/image)")
    return text


def queue_heads(session: Session, project: Project, sample_ids: Sequence[int]) -> dict[int, str]:
    """The start of each queued sample's document; nothing for an image project (no query)."""
    if project.kind != "text":
        return {}
    return texts_repo.heads(session, sample_ids, QUEUE_CHARS)


def snippets(session: Session, project: Project, sample_ids: Sequence[int], chars: int) -> dict[int, str]:
    """The start of each of ``sample_ids``' documents that belongs to ``project`` (others are left out:
    an image, another project's sample, an id that does not exist)."""
    if len(sample_ids) > MAX_SNIPPETS:
        raise Invalid(f"at most {MAX_SNIPPETS} sample ids a request, not {len(sample_ids)}")
    ids = sorted({i for i in sample_ids if 0 < i < 2**62})  # no row has another (and SQL's integers end)
    return texts_repo.heads_in_project(session, project.id, ids, chars)
