"""Notes and doubt: unsure marks, comments, guidelines (``app/api/routes/notes.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.services.notes import COMMENT_MAX, EXAMPLES_MAX, GUIDELINES_MAX

CommentText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=COMMENT_MAX)]


class UnsureIn(BaseModel):
    guess: Annotated[str | None, StringConstraints(min_length=1, max_length=200)] = Field(
        None, description="a class the expert leans to, shown to the reviewer (never a label)")
    note: CommentText | None = Field(None, description="a comment stored beside the mark")


class UnsureOut(BaseModel):
    label_id: int = Field(description="the mark's revision (DELETE /labels/{id} takes it back while its review is "
                                      "open)")
    review_id: int
    sample_id: int
    status: str
    username: str | None
    created_at: datetime
    created: bool = Field(description="false when the sample was already marked unsure (its open mark)")


class CommentIn(BaseModel):
    text: CommentText


class CommentOut(BaseModel):
    id: int
    sample_id: int
    username: str | None
    text: str
    created_at: datetime


class GuidelinesIn(BaseModel):
    markdown: Annotated[str, StringConstraints(max_length=GUIDELINES_MAX)] = ""
    examples: Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=200)],
                             Annotated[list[Annotated[int, Field(ge=1, le=2**62)]], Field(max_length=EXAMPLES_MAX)]],
                        Field(max_length=1000)] = Field(
        default_factory=dict, description="class -> sample ids labelled as that class, shown as its examples")


class ExampleOut(BaseModel):
    sample_id: int
    thumbnail_url: str
    image_url: str
    chosen: bool = Field(description="chosen by an admin; false: the labelled sample the model is surest of")


class GuidelinesOut(BaseModel):
    markdown: str
    html: str = Field(description="the Markdown rendered by the server: raw HTML escaped, only safe link schemes")
    examples: dict[str, list[ExampleOut]]
    updated_at: datetime | None
    updated_by: str | None
