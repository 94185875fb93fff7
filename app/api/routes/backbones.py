"""Registered backbones: upload (checked in a child process), list, download, and export of a backbone a
project learned. Routes stay thin: app/services/backbones.py holds the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError

from app.api import errors
from app.api.deps import AdminUser, CurrentUser, ProjectAdmin, SessionDep, SettingsDep
from app.api.downloads import attachment
from app.api.limits import body_limit
from app.api.uploads import ReceivedFile, receive_form
from app.models import RegisteredBackbone
from app.schemas.backbones import BackboneExportIn, BackboneOut
from app.services import backbones as backbone_service
from app.services.errors import NotFound

router = APIRouter(tags=["backbones"])


def backbone_out(row: RegisteredBackbone) -> BackboneOut:
    return BackboneOut(
        id=row.id, name=row.name, format=row.format, architecture=row.architecture, embedding_dim=row.embedding_dim,
        input_size=row.input_size, in_channels=row.in_channels, normalization=(row.details or {}).get("normalization"),
        filename=row.filename, sha256=row.sha256, size=row.size, source_project_id=row.source_project_id,
        source_backbone_version_id=row.source_backbone_version_id, details=row.details or {},
        created_at=row.created_at)


class BackboneForm(BaseModel):
    """The text fields sent beside the file."""

    format: str = Field(description="torchvision, torchscript or onnx")
    name: str | None = Field(None, max_length=200)
    architecture: str | None = Field(None, max_length=64, description="torchvision.models name")
    input_size: int | None = Field(None, description="input side in px (default: the file's own, else 224)")
    normalization: str | None = Field(None, description="imagenet (default) or unit ([0, 1] unchanged)")


async def _backbone_upload(admin: AdminUser, request: Request, session: SessionDep,
                           settings: SettingsDep) -> AsyncIterator[tuple[ReceivedFile, BackboneForm]]:
    """The file and its fields, read only once ``admin`` has answered (401/403 before one byte of the
    body: app/api/uploads.py); the file is kept whole, within the request's limit."""
    async with receive_form(request, session, settings, "file", tuple(BackboneForm.model_fields),
                            whole_files=True) as form:
        sent = {k: v for k, v in form.fields.items() if v != ""}  # an empty field is no value, as Form() had it
        try:
            fields = BackboneForm.model_validate(sent)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        yield form.files[-1], fields


# scope="function": the file is closed as the route returns.
BackboneUpload = Annotated[tuple[ReceivedFile, BackboneForm], Depends(_backbone_upload, scope="function")]
# FastAPI documents no body for a route that reads its own: the form it reads, as File() and Form() had it.
_FORM_SCHEMA = BackboneForm.model_json_schema()
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", *_FORM_SCHEMA["required"]],
    "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream",
                            "description": "a state dict (.pth, .safetensors), TorchScript or ONNX"},
                   **_FORM_SCHEMA["properties"]}}}}}}


@router.post("/backbones", status_code=201, responses=errors.responses(400, 401, 403, 409, 413, 422),
             openapi_extra=UPLOAD_BODY)
@body_limit("max_request_bytes")
def register_backbone(upload: BackboneUpload, session: SessionDep, settings: SettingsDep,
                      admin: AdminUser) -> BackboneOut:
    """Registers a backbone file (admin). It is loaded and run on a dummy batch first; a file that does
    not load, does not fit its architecture or does not run is refused (422, with the reason) and
    nothing is stored."""
    file, f = upload
    row = backbone_service.register_file(session, settings.media_path, admin, file.file, file.filename or "backbone",
                                         f.format, f.name, f.architecture or None, f.input_size,
                                         f.normalization or None)
    return backbone_out(row)


@router.get("/backbones", responses=errors.responses(401))
def list_backbones(session: SessionDep, _user: CurrentUser) -> list[BackboneOut]:
    return [backbone_out(r) for r in backbone_service.list_backbones(session)]


@router.get("/backbones/{bid}", responses=errors.responses(401, 404))
def get_backbone(bid: int, session: SessionDep, _user: CurrentUser) -> BackboneOut:
    return backbone_out(backbone_service.get_backbone(session, bid))


@router.delete("/backbones/{bid}", status_code=204, responses=errors.responses(401, 403, 404, 409))
def delete_backbone(bid: int, session: SessionDep, settings: SettingsDep, _admin: AdminUser) -> None:
    """Unregisters a backbone (admin) and removes its file. 409, naming them, while projects have it as their
    ``backbone``; projects that used it before keep their own copies of what they learned from it."""
    backbone_service.delete_backbone(session, settings.media_path, bid)


@router.get("/backbones/{bid}/file", response_class=FileResponse,
            responses=errors.files("the backbone file", "application/octet-stream") | errors.responses(401, 403, 404))
def backbone_file(bid: int, session: SessionDep, settings: SettingsDep, _admin: AdminUser) -> FileResponse:
    """The registered file as uploaded (or, for an exported one, the TorchScript file Loupe wrote)."""
    row = backbone_service.get_backbone(session, bid)
    path = settings.media_path / row.file_key
    if not path.is_file():
        raise NotFound("the stored backbone file is missing")
    return FileResponse(path, media_type="application/octet-stream", headers=attachment(row.filename))


@router.post("/projects/{pid}/versions/backbones/{bvid}/export", status_code=201,
              responses=errors.responses(400, 401, 403, 404, 409, 413, 422))
def export_backbone_version(pid: int, bvid: int, session: SessionDep, settings: SettingsDep,
                            access: ProjectAdmin, body: BackboneExportIn | None = None) -> BackboneOut:
    """Registers a backbone this project learned (a backbone version) as a TorchScript file that other
    projects can choose as their ``backbone``; ``GET /backbones/{id}/file`` then downloads it."""
    # pid is checked by ProjectAdmin; named here too so the OpenAPI parameters keep their order.
    row = backbone_service.export_version(session, settings.media_path, access.user, access.project, bvid,
                                          body.name if body else None)
    return backbone_out(row)
