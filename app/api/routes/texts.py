"""Text projects' documents beyond the label view's queue (issue 19): snippets for the sample browser,
the teach view and the reviews, and the words that drive a suggestion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import errors
from app.api.deps import ProjectMember, SessionDep, SettingsDep
from app.api.routes.samples import VisibleSample
from app.schemas.texts import ExplanationOut, SnippetOut, SnippetsOut, TermOut
from app.services import explanations, texts

router = APIRouter(tags=["samples"])


@router.get("/projects/{pid}/snippets", responses=errors.responses(401, 404, 422))
def snippets(
    access: ProjectMember,
    session: SessionDep,
    ids: Annotated[list[int], Query(max_length=texts.MAX_SNIPPETS, description="sample ids (at most 200)")],
    chars: Annotated[int, Query(ge=20, le=texts.QUEUE_CHARS)] = texts.SNIPPET_CHARS,
) -> SnippetsOut:
    """The first ``chars`` characters of each listed sample's document, in id order; ids that are not a
    document of this project are left out. One request for a page of the sample browser, the teach view
    or the review list."""
    heads = texts.snippets(session, access.project, ids, chars)
    return SnippetsOut(items=[SnippetOut(sample_id=sid, text=t) for sid, t in sorted(heads.items())])


@router.get("/samples/{sid}/explanation", responses=errors.responses(401, 404, 422))
def explanation(
    sample: VisibleSample,
    session: SessionDep,
    settings: SettingsDep,
    label: Annotated[str | None, Query(max_length=200, description="a class (default: the suggestion)")] = None,
) -> ExplanationOut:
    """The words of a text sample's document that drive the current model towards its suggestion (or
    ``label``), strongest first, each with its places in the document: for the label view to mark.
    From the n-gram weights the train job stores per model version (a linear reading of the model on
    the embedding, mapped back to word n-grams), or, when the version's embedding holds the project's
    encoder, by occlusion of each word for the documents the queue serves next (``method``); 422 for an
    image."""
    e = explanations.explain(session, settings.media_path, sample, label)
    return ExplanationOut(sample_id=e.sample_id, model_version=e.model_version_id, label=e.label,
                          terms=[TermOut(term=t.term, weight=t.weight, spans=t.spans) for t in e.terms],
                          method=e.method)
