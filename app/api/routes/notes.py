"""Notes and doubt (issue 17 item 4): mark a sample unsure, comment on it, read and edit guidelines."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse

from app.api import errors
from app.api.deps import CurrentUser, ProjectAdmin, ProjectMember, SessionDep, SettingsDep, require
from app.api.limits import body_limit
from app.api.routes.samples import VisibleSample
from app.api.uploads import ReceivedFile, receive_files
from app.schemas.notes import CommentIn, CommentOut, ExampleOut, GuidelinesIn, GuidelinesOut, UnsureIn, UnsureOut
from app.services import notes as service
from app.services import overlap
from app.services.errors import Invalid, NotFound
from app.storage import BlobStore

router = APIRouter(tags=["notes"])
ALREADY_UNSURE: dict[int | str, dict[str, Any]] = {
    200: {"model": UnsureOut, "description": "the sample was already marked unsure: its open mark"}}


@router.post("/samples/{sid}/unsure", status_code=201, response_model=UnsureOut,
             responses=ALREADY_UNSURE | errors.responses(400, 401, 403, 404, 413, 422))
def mark_unsure(sample: VisibleSample, body: UnsureIn, session: SessionDep, user: CurrentUser) -> JSONResponse:
    """Marks the sample unsure: it goes to the review list (reason ``unsure``), and until a reviewer
    decides its label it is neither a label to train on nor one to count (status ``unsure``). 201 with
    the new mark; 200 with the open mark when the sample is already in doubt."""
    access = require(session, user, sample.project_id, "label", not_found=f"sample {sample.id} not found")
    mark = service.mark_unsure(session, access.project, user, sample.id, body.guess, body.note)
    out = UnsureOut(label_id=mark.label.id, review_id=mark.review.id, sample_id=sample.id, status="unsure",
                    username=mark.review.detail.get("by"), created_at=mark.label.created_at,
                    created=mark.created)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if mark.created else 200)


@router.get("/samples/{sid}/comments", responses=errors.responses(401, 404))
def comments(sample: VisibleSample, session: SessionDep) -> list[CommentOut]:
    """The sample's comments, oldest first."""
    return [CommentOut(**c) for c in service.comments(session, sample.id)]


@router.post("/samples/{sid}/comments", status_code=201, responses=errors.responses(400, 401, 403, 404, 413, 422))
def add_comment(sample: VisibleSample, body: CommentIn, session: SessionDep, user: CurrentUser) -> CommentOut:
    """A comment on the sample (at most 2,000 characters), shown in the label and review views."""
    require(session, user, sample.project_id, "label", not_found=f"sample {sample.id} not found")
    row = service.add_comment(session, sample, user, body.text)
    return CommentOut(id=row.id, sample_id=row.sample_id, username=user.username, text=row.text,
                      created_at=row.created_at)


def _guidelines_out(g: service.Guidelines) -> GuidelinesOut:
    return GuidelinesOut(
        markdown=g.markdown, html=g.html, updated_at=g.updated_at, updated_by=g.updated_by,
        examples={c: [ExampleOut(sample_id=e.sample_id, chosen=e.chosen,
                                 thumbnail_url=f"/api/v1/samples/{e.sample_id}/thumbnail",
                                 image_url=f"/api/v1/samples/{e.sample_id}/image") for e in xs]
                  for c, xs in g.examples.items()})


@router.get("/projects/{pid}/guidelines", responses=errors.responses(401, 404, 422))
def get_guidelines(access: ProjectMember, session: SessionDep) -> GuidelinesOut:
    """The project's labelling guidelines (Markdown, and ``html`` rendered safely by the server) and the
    example samples of each class (an admin's choice, else the labelled samples the model is surest of)."""
    blind = overlap.blind_for(access.role, access.user.id)  # a first label awaiting their opinion is no example
    return _guidelines_out(service.guidelines(session, access.project, blind))


@router.put("/projects/{pid}/guidelines", responses=errors.responses(400, 401, 403, 404, 413, 422))
def put_guidelines(body: GuidelinesIn, access: ProjectAdmin, session: SessionDep) -> GuidelinesOut:
    """Replaces the guidelines (admin). ``![alt](sample:ID)`` shows a sample's image; ``examples`` maps a
    class to samples labelled as that class (at most 12 each)."""
    return _guidelines_out(service.set_guidelines(session, access.project, access.user, body.markdown,
                                                  body.examples))


async def _image_files(access: ProjectAdmin, request: Request, session: SessionDep,
                       settings: SettingsDep) -> AsyncIterator[list[ReceivedFile]]:
    """The upload's files, read only once the caller is known to be an admin (app/api/uploads.py)."""
    async with receive_files(request, session, settings, "files") as files:
        yield files


ImageFiles = Annotated[list[ReceivedFile], Depends(_image_files, scope="function")]
IMAGE_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"},
        "description": "images for the guidelines (10 MiB each at most)"}}}}}}}


@router.post("/projects/{pid}/guidelines/images", status_code=201, openapi_extra=IMAGE_BODY,
             responses=errors.responses(400, 401, 403, 404, 413, 422))
@body_limit("max_request_bytes")
def upload_guideline_images(pid: int, files: ImageFiles, access: ProjectAdmin, session: SessionDep,
                            settings: SettingsDep) -> dict:
    """Stores images for the guidelines (admin): each answers with the Markdown that shows it,
    ``![name](image:NAME)``. All or nothing: a file that is no image is refused (422) naming it."""
    if not files:
        raise Invalid("no file given (multipart field 'files')")
    store = BlobStore(settings.media_path)
    out = []
    for f in files:
        name = service.store_guideline_image(session, store, access.project, f.filename or "upload",
                                             f.file.read(), settings.max_image_pixels)
        alt = (f.filename or "image").replace("]", "").replace("[", "")[:100]
        out.append({"name": name, "url": f"/api/v1/projects/{pid}/guidelines/images/{name}",
                    "markdown": f"![{alt}](image:{name})"})
    return {"items": out}


@router.get("/projects/{pid}/guidelines/images/{name}", response_class=FileResponse,
            responses=errors.files("an image uploaded for the guidelines", "image/*", "application/octet-stream")
            | errors.responses(401, 404))
def guideline_image(name: str, access: ProjectMember, settings: SettingsDep) -> FileResponse:
    path = BlobStore(settings.media_path).path(service.guideline_image_key(access.project.id, name))
    if not path.exists():
        raise NotFound(f"guideline image {name} not found")
    return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                        headers={"Cache-Control": "private, max-age=31536000, immutable"})
