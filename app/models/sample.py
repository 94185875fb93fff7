from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Sample(Base):
    __tablename__ = "samples"
    __table_args__ = (
        # Duplicates are found by content within a project.
        UniqueConstraint("project_id", "content_hash"),
        Index("ix_samples_project_status_rand", "project_id", "status", "rand_key"),
        # The queue's "what do I hold already": few rows are leased at any time, so the index is small.
        Index("ix_samples_leased_by", "leased_by", postgresql_where=text("leased_by IS NOT NULL"),
              sqlite_where=text("leased_by IS NOT NULL")),
        # The audit pool's queue (5% of samples) without reading past the other 95%.
        Index("ix_samples_audit_queue", "project_id", "rand_key",
              postgresql_where=text("is_audit AND status = 'unlabelled'"),
              sqlite_where=text("is_audit AND status = 'unlabelled'")),
        # The samples whose first label awaits a second opinion (the project's overlap): the queue reads
        # only these (schema 0017).
        Index("ix_samples_second_wanted", "project_id", "rand_key",
              postgresql_where=text("awaiting_second IS NOT NULL"), sqlite_where=text("awaiting_second IS NOT NULL")),
        # The sample browser's keyset orders and filters (schema 0014): a page reads a page of rows.
        Index("ix_samples_project_id", "project_id", "id"),
        Index("ix_samples_project_status_id", "project_id", "status", "id"),
        Index("ix_samples_project_label_id", "project_id", "label", "id"),
        Index("ix_samples_project_folder_id", "project_id", "source_folder", "id",
              postgresql_where=text("source_folder IS NOT NULL"), sqlite_where=text("source_folder IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    width: Mapped[int]
    height: Mapped[int]
    mode: Mapped[str] = mapped_column(String(16))
    byte_size: Mapped[int] = mapped_column(BigInteger)
    # The class sub-folder the file came from, if any (ImageFolder layouts).
    source_folder: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unlabelled")  # unlabelled | labelled
    # The current label, derived from the append-only labels table and kept here so the queue and
    # listings never have to replay history.
    label: Mapped[str | None] = mapped_column(String(200))
    # A random key fixed at import: "random order" before a model exists, stable across requests.
    rand_key: Mapped[int] = mapped_column(BigInteger)
    # Part of the random audit sample: served now and then, never picked by the active strategy, so
    # its labels give an unbiased accuracy estimate.
    is_audit: Mapped[bool] = mapped_column(default=False)
    leased_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lease_expires_at: Mapped[datetime | None]
    # Which of the leaseholder's clients (a browser tab's id, "" for none) holds it: two tabs of one user
    # are two annotators to the queue, or they would be served the same samples (schema 0010).
    lease_client: Mapped[str | None] = mapped_column(String(64))
    # The annotator whose first label awaits a second opinion from someone else (the project's overlap
    # picked the sample: app/services/overlap.py); cleared when it is given. No foreign key (schema 0017).
    awaiting_second: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SampleCount(Base):
    """Per-project sample counts as deltas, appended by triggers on ``samples`` (PostgreSQL only; see
    migration 0005): the counts are a sum over a few rows instead of a count over the whole pool, and
    appending never makes two writers wait for each other. The train job folds a project's rows into one.
    """

    __tablename__ = "sample_counts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    project_id: Mapped[int] = mapped_column(index=True)  # no foreign key: rows may outlive a project
    total: Mapped[int] = mapped_column(BigInteger)
    labelled: Mapped[int] = mapped_column(BigInteger)
