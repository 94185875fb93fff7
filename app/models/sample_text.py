from __future__ import annotations

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class SampleText(Base):
    """A text sample's document (projects of kind ``text``; migration 0015).

    A side table rather than a column on ``samples``: the queue, the counts and the listings scan
    ``samples``, and SQLite keeps a row's text inline, so long documents there would be read by every
    such scan; image projects have no rows here. The row is inserted in the same transaction as its
    sample (``app.services.text_import``): a sample of a text project never exists without its text."""

    __tablename__ = "sample_texts"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
