"""Browsing a project's samples (filters, orders, keyset pages by an opaque cursor), and a sample as its
project's members see it, with its history."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from app.models import Label, Project, Sample, User
from app.repos import data_checks as data_checks_repo
from app.repos import samples as samples_repo
from app.services import explore, overlap
from app.services import labels as label_service
from app.services import projects as project_service
from app.services.errors import Invalid, NotFound
from app.settings import Settings


def visible(session: Session, user: User, sample_id: int) -> Sample:
    """The sample, if the caller may see its project; 404 alike if it is missing or they may not."""
    sample = samples_repo.get(session, sample_id)
    if sample is None or project_service.role_in(session, user, sample.project_id) is None:
        raise NotFound(f"sample {sample_id} not found")
    return sample


# ---------------------------------------------------------------- the sample browser

SIMILAR_MAX = 1000  # the nearest samples a similarity order pages through (computed again for each page)
BROWSE_STATUSES = ("unlabelled", "labelled", "unsure", "in_review")


@dataclass(frozen=True)
class BrowseQuery(samples_repo.Filters):
    """The browser's filters and order as the route parsed them (types and ranges already checked)."""
    sort: str | None = None  # one of samples_repo.BROWSE_SORTS, or "similarity" (with similar_to)
    similar_to: int | None = None


@dataclass(frozen=True)
class BrowseItem:
    row: samples_repo.BrowseRow
    in_review: bool
    similarity: float | None = None
    # A first label the viewer may yet give a second opinion on (``overlap.hides``): not shown to them.
    blind: bool = False
    # Why an expert took it out of the pool (duplicate, outlier, ...): the figures and the queue leave it
    # out, so a label given here counts nowhere until it is brought back. None: in the pool.
    set_aside: str | None = None


def _browse_cursor(cursor: str, sort: str) -> tuple:
    """The keyset a cursor carries; a cursor of the plain id pages (before sorts existed) is ``created``."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this API gave out") from None
    if isinstance(data, int) and not isinstance(data, bool):
        data = {"o": "created", "k": [data]}
    if not isinstance(data, dict) or not isinstance(data.get("k"), list) or not data["k"] \
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data["k"]):
        raise Invalid("cursor is not one this API gave out")
    if data.get("o") != sort:
        raise Invalid(f"cursor was given for sort={data.get('o')}, not sort={sort}: start again without it")
    return tuple(data["k"])


def _next_cursor(sort: str, key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": sort, "k": key}).encode()).decode()


def _check_query(project: Project, q: BrowseQuery) -> str:
    """The order to use, once the filters are checked against the project (422 naming the parameter)."""
    for name in ("label", "suggested"):
        value = getattr(q, name)
        if value is not None and value not in project.classes:
            raise Invalid(f"{name}: '{value}' is not a class of project '{project.name}'")
    if q.min_confidence is not None and q.max_confidence is not None and q.min_confidence > q.max_confidence:
        raise Invalid(f"min_confidence ({q.min_confidence}) is above max_confidence ({q.max_confidence})")
    if q.similar_to is not None:
        if q.sort not in (None, "similarity"):
            raise Invalid(f"sort: with similar_to the order is by similarity, not '{q.sort}'")
        return "similarity"
    if q.sort == "similarity":
        raise Invalid("sort: 'similarity' needs similar_to, the sample to compare with")
    return q.sort or "created"


def browse(session: Session, settings: Settings, project: Project, q: BrowseQuery, cursor: str | None,
           limit: int, blind: int | None = None) -> tuple[list[BrowseItem], str | None]:
    """A page of the project's samples that pass the filters, in the chosen order, and the cursor of the
    next page (None: the last). Keyset pages: no OFFSET and no count, whatever the pool's size.
    ``blind``: the viewer kept from first labels awaiting their second opinion (``overlap.blind_for``)."""
    sort = _check_query(project, q)
    after = _browse_cursor(cursor, sort) if cursor else None
    b = samples_repo.Browse(
        **samples_repo.filters_of(q), project_id=project.id, model_version_id=project.current_model_version_id,
        limit=limit + 1, sort=sort if sort != "similarity" else "created",
        after=None if sort == "similarity" else after, blind_for=blind,
        words=project.kind == "text")
    if sort == "similarity":
        return _similar_page(session, settings, project, b, q.similar_to or 0, after, limit)
    rows = samples_repo.browse(session, b)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more:
        last = rows[-1]
        value = last.confidence if sort in ("confidence", "-confidence") else last.score
        nxt = _next_cursor(sort, [last.sample.id] if sort in ("created", "-created") else [value, last.sample.id])
    return _items(session, [(r, None) for r in rows], blind), nxt


def _items(session: Session, rows: list[tuple[samples_repo.BrowseRow, float | None]],
           blind: int | None) -> list[BrowseItem]:
    """The page's rows with what the browser shows beside each: an open review, a hidden first label,
    a reason it was set aside, its similarity."""
    ids = [r.sample.id for r, _ in rows]
    reviewing = samples_repo.open_review_ids(session, ids)
    aside = data_checks_repo.reasons_among(session, ids)
    return [BrowseItem(r, r.sample.id in reviewing, sim, overlap.hides(r.sample, blind), aside.get(r.sample.id))
            for r, sim in rows]


def _similar_page(session: Session, settings: Settings, project: Project, b: samples_repo.Browse, sid: int,
                  after: tuple | None, limit: int) -> tuple[list[BrowseItem], str | None]:
    """The samples nearest ``sid`` (cosine, current embeddings; at most SIMILAR_MAX), most similar first,
    that pass the filters; the cursor is the rank of the last one shown."""
    if not samples_repo.ids_in_project(session, project.id, [sid]):
        raise Invalid(f"similar_to: sample {sid} is not in project '{project.name}'")
    if project.current_embedding_version_id is None:
        raise Invalid("similar_to: the project has no embeddings yet (they are computed after an import)")
    try:
        near = explore.neighbours(session, settings, project, [sid], SIMILAR_MAX, unlabelled_only=False)
    except NotFound as exc:
        raise Invalid(f"similar_to: {exc.detail}") from None
    start = int(after[0]) + 1 if after else 0
    ranked = near[start:]
    rows = {r.sample.id: r for r in samples_repo.browse(
        session, replace(b, among=[i for i, _ in ranked]))}
    hits = [(start + k, i, sim) for k, (i, sim) in enumerate(ranked) if i in rows]
    page, more = hits[:limit], len(hits) > limit
    items = _items(session, [(rows[i], sim) for _, i, sim in page], b.blind_for)
    return items, _next_cursor("similarity", [page[-1][0]]) if more else None


@dataclass(frozen=True)
class SampleDetail:
    item: BrowseItem
    history: list[Label]  # every revision, oldest first (a blind viewer's own only)
    usernames: dict[int, str]


def detail(session: Session, sample: Sample, user: User) -> SampleDetail:
    """A sample as the browser opens it: the current model's view of it and its whole label history,
    less what ``user`` may not see yet (a first label awaiting their second opinion)."""
    project = session.get(Project, sample.project_id)
    assert project is not None
    blind = viewer_blind(session, user, sample)
    rows = samples_repo.browse(session, samples_repo.Browse(
        project_id=project.id, model_version_id=project.current_model_version_id, limit=1, among=[sample.id]))
    history, names = _history(session, sample, user, blind)
    return SampleDetail(_items(session, [(rows[0], None)], blind)[0], history, names)


def viewer_blind(session: Session, user: User, sample: Sample) -> int | None:
    """``overlap.blind_for`` of ``user`` in the sample's project (the caller checked they may see it)."""
    return overlap.blind_for(project_service.role_in(session, user, sample.project_id) or "", user.id)


def history_for(session: Session, sample: Sample, user: User) -> tuple[list[Label], dict[int, str]]:
    """The sample's revisions, oldest first, and their labellers' names, as ``user`` may see them."""
    return _history(session, sample, user, viewer_blind(session, user, sample))


def _history(session: Session, sample: Sample, user: User, blind: int | None) -> tuple[list[Label], dict[int, str]]:
    """While the sample's first label awaits ``user``'s second opinion, their own revisions only (an undone
    one of theirs, say), none of the first labeller's."""
    rows, names = label_service.history_with_names(session, sample.id)
    if overlap.hides(sample, blind):
        rows = [r for r in rows if r.user_id == user.id]
        names = {user.id: user.username} if rows else {}
    return rows, names
