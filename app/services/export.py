"""Export the current labels as CSV, JSON Lines, or an ImageFolder zip."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Label, Project, Sample, User
from app.storage import BlobStore

FIELDS = ["sample_id", "filename", "label", "annotator", "source", "labelled_at", "content_hash"]


def label_rows(session: Session, project: Project, batch: int = 2000) -> Iterator[dict]:
    """One row per labelled sample: its current label and the revision that set it."""
    last_set = (
        select(Label.sample_id, func.max(Label.id).label("lid"))
        .where(Label.project_id == project.id, Label.action == "set")
        .group_by(Label.sample_id)
        .subquery()
    )
    q = (
        select(Sample, Label, User.username)
        .join(last_set, last_set.c.sample_id == Sample.id)
        .join(Label, Label.id == last_set.c.lid)
        .outerjoin(User, User.id == Label.user_id)
        .where(Sample.project_id == project.id, Sample.status == "labelled")
        .order_by(Sample.id)
        .execution_options(yield_per=batch)
    )
    for sample, label, username in session.execute(q):
        # The newest 'set' may have been undone back to an older one; the sample row is the truth.
        yield {
            "sample_id": sample.id,
            "filename": sample.filename,
            "label": sample.label,
            "annotator": username if label.label == sample.label else None,
            "source": label.source,
            "labelled_at": label.created_at.isoformat(),
            "content_hash": sample.content_hash,
        }


def as_csv(rows: Iterator[dict]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buf.tell() > 1 << 16:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def as_jsonl(rows: Iterator[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row) + "\n"


def as_imagefolder_zip(rows: Iterator[dict], session: Session, store: BlobStore, out: io.IOBase) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for row in rows:
            sample = session.get(Sample, row["sample_id"])
            assert sample is not None
            base = PurePosixPath(sample.filename).name
            zf.write(store.path(sample.storage_key), f"{row['label']}/{sample.id}_{base}")
