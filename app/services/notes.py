"""Notes and doubt: an expert marks a sample "unsure" (it goes to review and teaches the model nothing
until a reviewer decides), leaves a comment on a sample, and reads the project's guidelines.

An unsure mark is a label revision (``action = 'unsure'``: who, when, what they were shown), so it sits
in the sample's history among its labels, none of which is lost: the rule of what it holds back is
``app/repos/labels.doubted``; a reviewer's decision (``app/services/reviews.resolve``) ends it, and its
author can take it back while the review is open (``app/services/labels.undo_label``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from sqlalchemy.orm import Session

from app.db import on_rollback
from app.models import Label, Project, ProjectGuidelines, Review, Sample, SampleComment, User
from app.models.base import utcnow
from app.repos import label_counts
from app.repos import labels as label_repo
from app.repos import notes as notes_repo
from app.repos import reviews as review_repo
from app.repos import samples as samples_repo
from app.services import overlap
from app.services.errors import Invalid, NotFound, TooLarge
from app.services.image_check import EXTENSIONS, ImageRejected, check_image
from app.storage import BlobStore

COMMENT_MAX = 2000  # characters in one comment
GUIDELINES_MAX = 100_000  # characters of Markdown
EXAMPLES_MAX = 12  # example samples per class
AUTO_EXAMPLES = 4  # chosen for a class the admin left without examples
GUIDE_IMAGE_MAX = 10 * 1024 * 1024  # bytes of one image uploaded for the guidelines


# ---------------------------------------------------------------- unsure


@dataclass(frozen=True)
class Mark:
    """An unsure mark as stored (or found: marking a sample already in doubt finds its open mark)."""
    label: Label
    review: Review
    created: bool


def mark_unsure(session: Session, project: Project, user: User, sample_id: int, guess: str | None,
                note: str | None) -> Mark:
    """Mark ``sample_id`` unsure (the caller may label in ``project``): a revision that records it, the
    sample's status ``unsure`` (its current label, if any, held back: not a label to train on or to
    count), and a review (reason ``unsure``). ``guess``: a class the expert leans to, for the reviewer;
    ``note``: a comment beside it. A sample already in doubt keeps its mark (a retry finds it)."""
    if guess is not None and guess not in project.classes:
        raise Invalid(f"guess '{guess}' is not a class of project '{project.name}' (classes: {project.classes})")
    targets = label_repo.targets(session, project.id, project.current_model_version_id, [sample_id])
    t = targets.get(sample_id)
    if t is None:
        raise NotFound(f"sample {sample_id} not found in project {project.id}")
    if t.status == "unsure":
        found = notes_repo.open_mark_of_sample(session, sample_id)
        if found is not None:
            if note:
                add_comment(session, _sample(session, sample_id), user, note)
            return Mark(found, notes_repo.reviews_of_label(session, found.id)[-1], False)
    mark = Label(project_id=project.id, sample_id=sample_id, user_id=user.id, action="unsure", label=None,
                 source="human", opinion="primary",
                 model_version_id=project.current_model_version_id if t.shown else None,
                 suggested_label=t.suggested_label, suggested_confidence=t.suggested_confidence, created_at=utcnow())
    session.add(mark)
    sample = _sample(session, sample_id)
    was_labelled = sample.status == "labelled"
    sample.status, sample.label = "unsure", None
    if sample.leased_by == user.id:
        sample.leased_by, sample.lease_expires_at = None, None
    session.flush()
    if t.shown and project.current_model_version_id is not None:
        label_repo.to_queue_end(session, project.current_model_version_id, [sample_id])
    # A labelled sample in doubt is one labelled sample fewer (the retrain's new-label count is unchanged).
    if was_labelled:
        label_counts.bump(session, project.id, user.id, 0, -1, -int(sample.is_audit))
    review = review_repo.add(session, mark, "unsure", {"by": user.username, "guess": guess, "previous": t.label,
                                                       "note": note or None})
    if note:
        add_comment(session, sample, user, note)
    return Mark(mark, review, True)


def _sample(session: Session, sample_id: int) -> Sample:
    sample = samples_repo.get(session, sample_id)
    if sample is None:
        raise NotFound(f"sample {sample_id} not found")
    return sample


def unsure_count(session: Session, project: Project) -> int:
    return notes_repo.unsure_count(session, project.id)


# ---------------------------------------------------------------- comments


def add_comment(session: Session, sample: Sample, user: User, text: str) -> SampleComment:
    """A comment on ``sample`` (the caller may label in its project)."""
    text = text.strip()
    if not text:
        raise Invalid("comment text is empty")
    if len(text) > COMMENT_MAX:
        raise Invalid(f"comment text is {len(text)} characters; at most {COMMENT_MAX} are allowed")
    return notes_repo.add_comment(session, sample.project_id, sample.id, user.id, text)


def comments(session: Session, sample_id: int, limit: int = 200) -> list[dict]:
    return [{"id": c.id, "sample_id": c.sample_id, "username": name, "text": c.text, "created_at": c.created_at}
            for c, name in notes_repo.comments_of(session, sample_id, limit)]


# ---------------------------------------------------------------- guidelines

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_SAFE_SCHEMES = {"http", "https", "mailto", "sample", "image"}
_SAMPLE_REF = re.compile(r"^sample:(\d{1,18})$", re.IGNORECASE)
# An image uploaded for the guidelines: its content hash and extension (``guideline_image``).
IMAGE_NAME = r"[0-9a-f]{64}\.(?:png|jpg|gif|bmp|tif|webp)"
_IMAGE_REF = re.compile(rf"^image:({IMAGE_NAME})$")
_SAMPLE_REFS = re.compile(r"\(\s*<?sample:(\d{1,18})", re.IGNORECASE)


def _safe_link(url: str) -> bool:
    """Only a relative address, http(s), mailto, or ``sample:ID`` (a sample's image): never
    ``javascript:``, ``data:``, ``vbscript:`` or ``file:``."""
    m = _SCHEME.match(url.strip())
    return m is None or m.group(1).lower() in _SAFE_SCHEMES


def _markdown() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML is escaped, never passed through (``html``
    off), and links and images keep only the safe schemes."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
    md.validateLink = _safe_link  # type: ignore[method-assign]

    default_image = cast(RendererHTML, md.renderer).rules["image"]

    def image(renderer, tokens, idx, options, env):  # markdown-it's renderer rule signature
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        ref, upload = _SAMPLE_REF.match(src), _IMAGE_REF.match(src)
        if ref:
            token.attrSet("src", f"/api/v1/samples/{ref.group(1)}/image")
        elif upload:
            token.attrSet("src", f"/api/v1/projects/{int(env.get('pid', 0))}/guidelines/images/{upload.group(1)}")
        elif _SCHEME.match(src):
            # Another site's image: the page's Content-Security-Policy would not load it; a link instead.
            alt = renderer.renderInlineAsText(token.children or [], options, env) or src
            return f'<a href="{escapeHtml(src)}" target="_blank" rel="noopener noreferrer">{escapeHtml(alt)}</a>'
        token.attrSet("loading", "lazy")
        return default_image(tokens, idx, options, env)

    def link_open(renderer, tokens, idx, options, env):
        token = tokens[idx]
        ref = _SAMPLE_REF.match(str(token.attrGet("href") or ""))
        if ref:
            token.attrSet("href", f"/api/v1/samples/{ref.group(1)}/image")
        token.attrSet("target", "_blank")
        token.attrSet("rel", "noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


_MD = _markdown()


def render_markdown(text: str, project_id: int = 0) -> str:
    """Guidelines' Markdown as HTML that is safe to insert into the page (``image:NAME``: an image
    uploaded for project ``project_id``'s guidelines)."""
    return _MD.render(text, {"pid": project_id})


@dataclass(frozen=True)
class Example:
    sample_id: int
    chosen: bool  # by an admin; else the most confident labelled sample of its class


@dataclass(frozen=True)
class Guidelines:
    markdown: str
    html: str
    examples: dict[str, list[Example]]
    updated_at: datetime | None
    updated_by: str | None


def guidelines(session: Session, project: Project, blind: int | None = None) -> Guidelines:
    """The project's guidelines, rendered, with examples per class: those the admin chose, or else the
    labelled samples of that class the current model agrees with most (newest labelled, without a model).
    ``blind`` (``overlap.blind_for``): an example whose first label awaits that viewer's second opinion is
    left out (shown as an example of its class, it would tell the label)."""
    row = notes_repo.guidelines(session, project.id)
    chosen: dict[str, list[int]] = dict(row.examples) if row else {}
    hidden = overlap.hidden_ids(session, project.id, blind)
    examples: dict[str, list[Example]] = {}
    for c in project.classes:
        if chosen.get(c):
            examples[c] = [Example(sid, True) for sid in chosen[c] if sid not in hidden]
        else:
            ids = notes_repo.most_confident(session, project.id, project.current_model_version_id, c, AUTO_EXAMPLES)
            examples[c] = [Example(sid, False) for sid in ids if sid not in hidden]
    markdown = row.markdown if row else ""
    return Guidelines(markdown, render_markdown(markdown, project.id), examples, row.updated_at if row else None,
                      notes_repo.username(session, row.updated_by) if row else None)


def _check_examples(session: Session, project: Project, examples: dict[str, list[int]]) -> dict[str, list[int]]:
    unknown = sorted(set(examples) - set(project.classes))
    if unknown:
        raise Invalid(f"examples name class(es) {unknown} that project '{project.name}' does not have")
    if any(len(ids) > EXAMPLES_MAX for ids in examples.values()):
        raise Invalid(f"at most {EXAMPLES_MAX} examples per class")
    labels = notes_repo.labelled_as(session, project.id, sorted({i for ids in examples.values() for i in ids}))
    wrong = [f"{sid} ({'not in the project' if sid not in labels else 'not labelled ' + c})"
             for c, ids in examples.items() for sid in ids if labels.get(sid) != c]
    if wrong:
        raise Invalid(f"examples must be samples labelled as their class: {', '.join(wrong[:10])}")
    return {c: list(dict.fromkeys(ids)) for c, ids in examples.items() if ids}


def set_guidelines(session: Session, project: Project, user: User, markdown: str,
                   examples: dict[str, list[int]]) -> Guidelines:
    """Replace the project's guidelines (an admin's). A ``sample:ID`` image or link must name a sample of
    the project."""
    if len(markdown) > GUIDELINES_MAX:
        raise Invalid(f"guidelines are {len(markdown)} characters; at most {GUIDELINES_MAX} are allowed")
    refs = sorted({int(x) for x in _SAMPLE_REFS.findall(markdown)})
    outside = sorted(set(refs) - samples_repo.ids_in_project(session, project.id, refs))
    if outside:
        raise Invalid(f"guidelines refer to sample(s) {outside[:10]} that are not in project '{project.name}'")
    checked = _check_examples(session, project, examples)
    row = notes_repo.guidelines(session, project.id)
    if row is None:
        row = ProjectGuidelines(project_id=project.id, markdown=markdown, examples=checked)
        session.add(row)
    row.markdown, row.examples, row.updated_by, row.updated_at = markdown, checked, user.id, utcnow()
    session.flush()
    return guidelines(session, project)


def guideline_image_key(project_id: int, name: str) -> str:
    """Where an image uploaded for a project's guidelines lives (by content: ``<sha256><ext>``)."""
    if not re.fullmatch(IMAGE_NAME, name):
        raise NotFound(f"guideline image {name} not found")
    return f"guidelines/p{project_id}/{name}"


def store_guideline_image(session: Session, store: BlobStore, project: Project, filename: str, data: bytes,
                          max_pixels: int) -> str:
    """Check and store an image for the guidelines (admin); its name, for ``![alt](image:NAME)``. The
    file is removed again if the transaction rolls back."""
    if len(data) > GUIDE_IMAGE_MAX:
        raise TooLarge(f"{filename}: {len(data)} bytes; a guidelines image may have at most {GUIDE_IMAGE_MAX}")
    try:
        checked = check_image(data, max_pixels=max_pixels, thumbnail_size=256)
    except ImageRejected as exc:
        raise Invalid(f"{filename}: {exc.reason}") from None
    name = hashlib.sha256(data).hexdigest() + EXTENSIONS[checked.format]
    key = guideline_image_key(project.id, name)
    if store.put(key, data):
        on_rollback(session, lambda: store.delete(key))
    return name
