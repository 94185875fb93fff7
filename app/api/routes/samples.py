from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from app.api import errors
from app.api.deps import CurrentUser, ProjectAdmin, ProjectMember, SessionDep, SettingsDep
from app.api.limits import body_limit
from app.api.uploads import ReceivedForm, receive_form
from app.models import Sample
from app.schemas.common import ImportOut, SampleOut, SampleTextOut
from app.schemas.labels import label_out
from app.schemas.samples import BrowseItemOut, BrowsePage, SampleDetailOut, SuggestionOut
from app.services import overlap, text_import, texts
from app.services import samples as sample_service
from app.services.archives import expand_upload
from app.services.errors import Invalid, NotFound
from app.services.imports import finish_import, import_candidates
from app.storage import BlobStore

router = APIRouter(tags=["samples"])


def sample_out(s: Sample) -> SampleOut:
    return SampleOut(
        id=s.id, project_id=s.project_id, filename=s.filename, width=s.width, height=s.height, mode=s.mode,
        status=s.status, label=s.label, source_folder=s.source_folder, content_hash=s.content_hash,
        created_at=s.created_at,
    )


# A text project's upload may name its columns (app/services/text_import.py).
TEXT_FIELDS = ("text_column", "label_column", "id_column")


async def _sample_files(access: ProjectAdmin, request: Request, session: SessionDep,
                        settings: SettingsDep) -> AsyncIterator[ReceivedForm]:
    """The upload's files, read only once ``access`` has answered: a caller who may not import gets
    401/403/404 before one byte of the body is read (app/api/uploads.py). Reading them ends the access
    check's transaction first (on SQLite it holds the write lock; checking and storing the files needs
    no database, and the rows are inserted, all or nothing, in the next one)."""
    async with receive_form(request, session, settings, "files", TEXT_FIELDS) as form:
        yield form


# scope="function": the files are closed as the route returns.
SampleFiles = Annotated[ReceivedForm, Depends(_sample_files, scope="function")]
# FastAPI documents no body for a route that reads its own: the form it reads, as File() described it.
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
        "description": "images, or zips of images (ImageFolder layout kept)"}}}}}}}


@router.post("/projects/{pid}/samples", status_code=201, openapi_extra=UPLOAD_BODY,
             responses=errors.responses(400, 401, 403, 404, 413, 422))
@body_limit("max_request_bytes")
def import_samples(
    pid: int,
    files: SampleFiles,
    session: SessionDep,
    settings: SettingsDep,
    access: ProjectAdmin,
    labels_from_folders: Annotated[bool, Query(
        description="keep an ImageFolder zip's class sub-folders as imported labels (source `import`, not an "
                    "expert's); sub-folders that name no class are listed in `unknown_labels`, their samples "
                    "left unlabelled")] = False,
) -> ImportOut:
    """Imports images (a text project: documents, app/services/text_import.py); bad files (bad rows,
    by line) are listed with reasons and the good ones imported. If nothing could be imported and
    something was rejected, the answer is 422 and nothing is stored."""
    project = access.project
    if project.kind == "text":
        cols = text_import.columns(*(files.fields.get(f) for f in TEXT_FIELDS))
        done = text_import.import_texts(session, project, ((u.filename or "upload", u.file) for u in files.files),
                                        cols, settings)
        out = ImportOut.model_validate(done.as_dict())
        return JSONResponse(out.model_dump(), status_code=201 if done.created else 200)  # type: ignore[return-value]

    def candidates():
        for upload in files.files:
            yield from expand_upload(upload.filename or "upload", upload.file, settings)

    result = import_candidates(session, project, candidates(), settings, labels_from_folders=labels_from_folders)
    if result.created == 0 and result.duplicates == 0 and result.rejected:
        raise Invalid({"message": "no file could be imported", "rejected": result.rejected})
    finish_import(session, project, result, settings)
    body = ImportOut.model_validate(result.as_dict())
    return JSONResponse(body.model_dump(), status_code=201 if result.created else 200)  # type: ignore[return-value]


@router.get("/projects/{pid}/samples", responses=errors.responses(401, 404, 422))
def list_samples(
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000, description="`next_cursor` of the page before")] = None,
    status: Annotated[Literal["unlabelled", "labelled", "unsure", "in_review"] | None, Query(
        description="`unsure`: marked unsure, awaiting a reviewer's decision; `in_review`: a review of it is "
                    "open")] = None,
    label: Annotated[str | None, Query(max_length=200, description="the human label (a class)")] = None,
    suggested: Annotated[str | None, Query(max_length=200, description="the current model's suggestion")] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description=(
        "the file name contains it; in a text project, the document holds each of its words"))] = None,
    audit: Annotated[bool | None, Query(description="in the random audit pool (or not)")] = None,
    folder: Annotated[str | None, Query(max_length=200, description="the ImageFolder sub-folder")] = None,
    disagreement: Annotated[Literal["annotators", "model"] | None, Query(
        description="`annotators`: two experts gave different labels; `model`: the current model suggests "
                    "another class than the label")] = None,
    sort: Annotated[Literal["created", "-created", "confidence", "-confidence", "score", "similarity"] | None, Query(
        description="`created` (default, oldest first), `-created`, `confidence` (least sure first), "
                    "`-confidence`, `score` (the strategy's score, highest first), `similarity` (with "
                    "`similar_to`)")] = None,
    similar_to: Annotated[int | None, Query(ge=1, le=2**62, description=(
        "a sample id: the 1,000 samples most like it (current embeddings), most similar first"))] = None,
) -> BrowsePage:
    """Pages through the project's samples with filters and an order (keyset pages: pass the answer's
    ``next_cursor`` as ``cursor``; no count), each with the current model's suggestion."""
    query = sample_service.BrowseQuery(
        sort=sort, status=status, label=label, suggested=suggested, min_confidence=min_confidence,
        max_confidence=max_confidence, q=q, audit=audit, folder=folder, disagreement=disagreement,
        similar_to=similar_to)
    items, next_cursor = sample_service.browse(session, settings, access.project, query, cursor, limit,
                                               overlap.blind_for(access.role, access.user.id))
    return BrowsePage(items=[browse_item_out(i) for i in items], next_cursor=next_cursor)


def browse_item_out(item: sample_service.BrowseItem) -> BrowseItemOut:
    r = item.row
    out = sample_out(r.sample).model_dump()
    if item.blind:
        out["label"] = None  # another annotator's first label, awaiting this viewer's own opinion
    return BrowseItemOut(
        **out, is_audit=r.sample.is_audit, score=r.score, in_review=item.in_review,
        suggestion=SuggestionOut(label=r.suggested_label, confidence=r.confidence) if r.suggested_label else None,
        similarity=item.similarity, blind=item.blind, set_aside=item.set_aside)


def _visible_sample(sid: int, session: SessionDep, user: CurrentUser) -> Sample:
    return sample_service.visible(session, user, sid)


VisibleSample = Annotated[Sample, Depends(_visible_sample)]


@router.get("/samples/{sid}", responses=errors.responses(401, 404))
def get_sample(sample: VisibleSample, session: SessionDep, user: CurrentUser) -> SampleDetailOut:
    """The sample, the current model's suggestion for it, and every label revision, oldest first: who,
    when, and what the model suggested to them. A first label awaiting the caller's second opinion (the
    project's overlap) is not shown to an annotator (``blind``: no label, none of its revisions)."""
    d = sample_service.detail(session, sample, user)
    return SampleDetailOut(**browse_item_out(d.item).model_dump(),
                           history=[label_out(r, d.usernames) for r in d.history])


def _file(settings, key: str, media_type: str | None = None) -> FileResponse:
    if not key:
        raise NotFound("the sample is a text document and has no image (GET /samples/{sid}/text)")
    path = BlobStore(settings.media_path).path(key)
    if not path.exists():
        raise NotFound("the stored file is missing")
    media_type = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Content-addressed: the bytes behind a key never change, so browsers may cache them for good.
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/samples/{sid}/text", responses=errors.responses(401, 404))
def sample_text(sample: VisibleSample, session: SessionDep) -> SampleTextOut:
    """A text sample's whole document (404 for an image)."""
    return SampleTextOut(sample_id=sample.id, text=texts.document(session, sample))


@router.get("/samples/{sid}/image", response_class=FileResponse,
            responses=errors.files("the image as imported", "image/*", "application/octet-stream")
            | errors.responses(401, 404))
def sample_image(sample: VisibleSample, settings: SettingsDep) -> FileResponse:
    return _file(settings, sample.storage_key)


@router.get("/samples/{sid}/thumbnail", response_class=FileResponse,
            responses=errors.files("a small JPEG of the image", "image/jpeg") | errors.responses(401, 404))
def sample_thumbnail(sample: VisibleSample, settings: SettingsDep) -> FileResponse:
    return _file(settings, sample.thumbnail_key, "image/jpeg")
