from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.services.project_settings import ProjectSettingsPatch

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9_.@-]+$")]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginIn(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    username: str
    is_admin: bool


class UserIn(BaseModel):
    username: Username
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    is_admin: bool = False


class UserOut(ORM):
    id: int
    username: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class ProjectIn(BaseModel):
    name: Name
    classes: Annotated[list[Name], Field(min_length=1, max_length=1000)]
    description: Annotated[str, StringConstraints(max_length=10_000)] = ""
    settings: ProjectSettingsPatch | None = None
    # What the samples are (issue 19): images, or text documents; fixed at creation.
    kind: Literal["image", "text"] = "image"


class ProjectPatch(BaseModel):
    description: Annotated[str | None, StringConstraints(max_length=10_000)] = None
    # Classes may only be appended: a class's position is its index in every stored model output.
    add_classes: Annotated[list[Name], Field(max_length=1000)] = []
    settings: ProjectSettingsPatch | None = None


class ProjectOut(BaseModel):
    id: int
    name: str
    kind: str = "image"
    description: str
    classes: list[str]
    settings: dict[str, Any]
    sample_count: int
    labelled_count: int
    current_model_version: int | None
    current_backbone_version: int | None = None
    current_embedding_version: int | None = None
    accuracy_estimate: float | None = None
    accuracy_ci: list[float] | None = None  # its 95 % interval
    audit_label_count: int | None = None  # the audit labels it comes from
    current_model_number: int | None = None  # the current model's number within the project ("v1")
    role: str
    created_at: datetime


class MemberIn(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    role: Literal["annotator", "reviewer", "viewer"]


class MemberOut(BaseModel):
    username: str
    role: str


class Rejected(BaseModel):
    filename: str
    reason: str
    line: int | None = None  # a text import's bad row: its line in the file (1 = the first)


class ImportOut(BaseModel):
    created: int
    duplicates: int
    rejected: list[Rejected]
    # Labels that came with the data (an ImageFolder zip's sub-folders with labels_from_folders, a text
    # import's label column): how many samples they labelled (source 'import'), and the names that are
    # no class of the project (not applied; their samples stay unlabelled).
    labelled: int = 0
    unknown_labels: list[str] = []


class SampleOut(BaseModel):
    id: int
    project_id: int
    filename: str
    width: int
    height: int
    mode: str
    status: str
    label: str | None
    source_folder: str | None
    content_hash: str
    created_at: datetime


class SampleTextOut(BaseModel):
    sample_id: int
    text: str
