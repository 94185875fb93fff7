from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from app.api import errors
from app.api.deps import CurrentUser, ProjectAdmin, ProjectMember, SessionDep, SettingsDep
from app.api.limits import body_limit
from app.api.uploads import ReceivedFile, receive_files
from app.models import Sample
from app.schemas.common import ImportOut, SampleOut, SamplePage
from app.services import automation
from app.services import samples as sample_service
from app.services.archives import expand_upload
from app.services.errors import Invalid, NotFound
from app.services.imports import import_candidates
from app.storage import BlobStore

router = APIRouter(tags=["samples"])


def sample_out(s: Sample) -> SampleOut:
    return SampleOut(
        id=s.id, project_id=s.project_id, filename=s.filename, width=s.width, height=s.height, mode=s.mode,
        status=s.status, label=s.label, source_folder=s.source_folder, content_hash=s.content_hash,
        created_at=s.created_at,
    )


async def _sample_files(access: ProjectAdmin, request: Request, session: SessionDep,
                        settings: SettingsDep) -> AsyncIterator[list[ReceivedFile]]:
    """The upload's files, read only once ``access`` has answered: a caller who may not import gets
    401/403/404 before one byte of the body is read (app/api/uploads.py). Reading them ends the access
    check's transaction first (on SQLite it holds the write lock; checking and storing the files needs
    no database, and the rows are inserted, all or nothing, in the next one)."""
    async with receive_files(request, session, settings, "files") as files:
        yield files


# scope="function": the files are closed as the route returns.
SampleFiles = Annotated[list[ReceivedFile], Depends(_sample_files, scope="function")]
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
) -> ImportOut:
    """Imports images; bad files are listed with reasons and the good ones imported. If nothing could
    be imported and something was rejected, the answer is 422 and nothing is stored."""
    project = access.project

    def candidates():
        for upload in files:
            yield from expand_upload(upload.filename or "upload", upload.file, settings)

    result = import_candidates(session, project, candidates(), settings)
    if result.created == 0 and result.duplicates == 0 and result.rejected:
        raise Invalid({"message": "no file could be imported", "rejected": result.rejected})
    automation.after_import(session, project, result.created, settings.broker_url)
    body = ImportOut.model_validate(result.as_dict())
    return JSONResponse(body.model_dump(), status_code=201 if result.created else 200)  # type: ignore[return-value]


@router.get("/projects/{pid}/samples", responses=errors.responses(401, 404, 422))
def list_samples(
    access: ProjectMember,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    status: Literal["unlabelled", "labelled"] | None = None,
    label: Annotated[str | None, Query(max_length=200)] = None,
) -> SamplePage:
    rows, next_cursor = sample_service.page(session, access.project, cursor, limit, status, label)
    return SamplePage(items=[sample_out(s) for s in rows], next_cursor=next_cursor)


def _visible_sample(sid: int, session: SessionDep, user: CurrentUser) -> Sample:
    return sample_service.visible(session, user, sid)


VisibleSample = Annotated[Sample, Depends(_visible_sample)]


@router.get("/samples/{sid}", responses=errors.responses(401, 404))
def get_sample(sample: VisibleSample) -> SampleOut:
    return sample_out(sample)


def _file(settings, key: str, media_type: str | None = None) -> FileResponse:
    path = BlobStore(settings.media_path).path(key)
    if not path.exists():
        raise NotFound("the stored file is missing")
    media_type = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Content-addressed: the bytes behind a key never change, so browsers may cache them for good.
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"})


@router.get("/samples/{sid}/image", response_class=FileResponse,
            responses=errors.files("the image as imported", "image/*", "application/octet-stream")
            | errors.responses(401, 404))
def sample_image(sample: VisibleSample, settings: SettingsDep) -> FileResponse:
    return _file(settings, sample.storage_key)


@router.get("/samples/{sid}/thumbnail", response_class=FileResponse,
            responses=errors.files("a small JPEG of the image", "image/jpeg") | errors.responses(401, 404))
def sample_thumbnail(sample: VisibleSample, settings: SettingsDep) -> FileResponse:
    return _file(settings, sample.thumbnail_key, "image/jpeg")
