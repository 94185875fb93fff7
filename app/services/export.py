"""Export the current labels as CSV, JSON Lines, or an ImageFolder zip."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import export as export_repo
from app.storage import BlobStore

FIELDS = ["sample_id", "filename", "label", "annotator", "source", "labelled_at", "content_hash"]
# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, or a tab/CR that some
# parsers skip before one of them. A plain number (a class named "-1") is no formula and stays as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_UNSHOWN_IN_NAMES = re.compile(r"[\\\x00-\x1f\x7f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def label_rows(session: Session, project: Project, batch: int = 2000) -> Iterator[dict]:
    """One row per labelled sample: its current label and the revision that set it."""
    for sample, label, username in export_repo.labelled_samples(session, project.id, batch):
        yield {
            "sample_id": sample.id,
            "filename": sample.filename,
            "label": sample.label,
            "annotator": username,
            "source": label.source,
            "labelled_at": label.created_at.isoformat(),
            "content_hash": sample.content_hash,
        }


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet runs: a text that starts like a formula gets a leading ``'``,
    which spreadsheets show as text and do not evaluate."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def as_csv(rows: Iterator[dict]) -> Iterator[str]:
    """The rows as CSV, with formula-like cells escaped (the file names are as uploaded)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(v) for k, v in row.items()})
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
            sample = export_repo.sample(session, row["sample_id"])
            assert sample is not None
            # The name as uploaded: a backslash would be a folder to a Windows unzip, and a bidi override
            # or a control would disguise the name in a file manager.
            base = _UNSHOWN_IN_NAMES.sub("_", PurePosixPath(sample.filename).name)
            zf.write(store.path(sample.storage_key), f"{row['label']}/{sample.id}_{base}")
