"""Export the current labels, and if asked the model's confident suggestions, as CSV, JSON Lines, an
ImageFolder zip or COCO-style JSON.

Every row says where its label comes from (``source``): ``human`` (an expert's label, or a reviewer's
decision), ``import`` (an ImageFolder sub-folder kept as the label at import) or ``model`` (the current
model's suggestion for a sample nobody labelled, at ``suggestions`` confidence or more; ``confidence``
says how sure, and is empty for the other two). The COCO shape is documented in ``as_coco``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import export as export_repo
from app.services import overlap
from app.services.errors import Invalid
from app.storage import BlobStore

FIELDS = ["sample_id", "filename", "label", "annotator", "source", "labelled_at", "content_hash", "confidence"]
TEXT_FIELDS = [*FIELDS, "text"]  # a text project's rows carry the whole document (issue 19)
FORMATS = ("csv", "jsonl", "imagefolder", "coco")
# What a stored revision's source is called in an export: a review's decision is a person's label too.
_SOURCES = {"human": "human", "review": "human", "import": "import"}
# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): =, +, -, @, or a tab/CR that some
# parsers skip before one of them. A plain number (a class named "-1") is no formula and stays as it is.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_UNSHOWN_IN_NAMES = re.compile(r"[\\\x00-\x1f\x7f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def label_rows(session: Session, project: Project, suggestions: float | None = None,
               batch: int = 2000, blind: int | None = None) -> Iterator[dict]:
    """One row per labelled sample (its current label and the revision that set it), then, if
    ``suggestions`` is given, one per unlabelled sample the current model suggests a class for with that
    confidence or more. Each row has ``FIELDS``, the image's ``width`` and ``height``, and ``text``, the
    document of a text project's sample (None for an image). ``blind`` (``overlap.blind_for``): a sample
    whose first label awaits that viewer's second opinion is left out."""
    for sample, label, username, text in export_repo.labelled_samples(session, project.id, batch):
        if overlap.hides(sample, blind):
            continue
        yield {
            "sample_id": sample.id,
            "filename": sample.filename,
            "label": sample.label,
            "annotator": username,
            "source": _SOURCES.get(label.source, "human"),
            "labelled_at": label.created_at.isoformat(),
            "content_hash": sample.content_hash,
            "confidence": None,
            "width": sample.width,
            "height": sample.height,
            "text": text,
        }
    if suggestions is None or project.current_model_version_id is None:
        return
    for sample, suggested, confidence, text in export_repo.suggested_samples(
            session, project.id, project.current_model_version_id, suggestions, batch):
        yield {
            "sample_id": sample.id,
            "filename": sample.filename,
            "label": suggested,
            "annotator": None,
            "source": "model",
            "labelled_at": None,
            "content_hash": sample.content_hash,
            "confidence": round(float(confidence), 6),
            "width": sample.width,
            "height": sample.height,
            "text": text,
        }


def fields_of(project: Project, format: str) -> list[str]:
    """The columns of an export of ``project`` in ``format``: a text project's CSV and JSON Lines add
    the document; its ImageFolder zip holds each as a ``.txt`` (the text import's own layout, so the
    zip imports back); COCO describes images and has no place for a document (422)."""
    if project.kind != "text":
        return FIELDS
    if format == "coco":
        raise Invalid("a text project exports as csv, jsonl or imagefolder (class folders of .txt files); "
                      "COCO describes images")
    return TEXT_FIELDS


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell no spreadsheet runs: a text that starts like a formula gets a leading ``'``,
    which spreadsheets show as text and do not evaluate."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def as_csv(rows: Iterator[dict], fields: list[str] = FIELDS) -> Iterator[str]:
    """The rows as CSV, with formula-like cells escaped (the file names are as uploaded)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row[k]) for k in fields})
        if buf.tell() > 1 << 16:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def as_jsonl(rows: Iterator[dict], fields: list[str] = FIELDS) -> Iterator[str]:
    for row in rows:
        yield json.dumps({k: row[k] for k in fields}) + "\n"


def as_imagefolder_zip(rows: Iterator[dict], session: Session, store: BlobStore, out: io.IOBase,
                       manifest: bool = False) -> None:
    """The images one folder per class. With ``manifest`` (an export with suggestions) a ``labels.csv`` at
    the root gives each file's row (its ``source`` above all); ImageFolder readers look only at folders."""
    listed = io.StringIO()
    writer = csv.DictWriter(listed, fieldnames=["path", *FIELDS])
    writer.writeheader()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for row in rows:
            sample = export_repo.sample(session, row["sample_id"])
            assert sample is not None
            # The name as uploaded: a backslash would be a folder to a Windows unzip, and a bidi override
            # or a control would disguise the name in a file manager.
            base = _UNSHOWN_IN_NAMES.sub("_", PurePosixPath(sample.filename).name)
            # With a split (app/services/export_split.py) each side is an ImageFolder of its own.
            path = f"{row['split'] + '/' if 'split' in row else ''}{row['label']}/{sample.id}_{base}"
            if row["text"] is not None:  # a document: a .txt in its class's folder, as the text import reads
                path = path if path.endswith(".txt") else _UNSHOWN_IN_NAMES.sub("_", path.replace(":", "_")) + ".txt"
                zf.writestr(path, row["text"])
            else:
                zf.write(store.path(sample.storage_key), path)
            writer.writerow({"path": csv_cell(path), **{k: csv_cell(row[k]) for k in FIELDS}})
        if manifest:
            zf.writestr("labels.csv", listed.getvalue())


def as_coco(rows: Iterator[dict], classes: list[str], project_name: str,
            suggestions: float | None = None) -> Iterator[str]:
    """The rows as one COCO-style JSON document, for image-level classification::

        {"info": {"description", "version", "date_created", "task": "classification", "suggestions"},
         "licenses": [],
         "categories": [{"id": 1, "name": "<class>", "supercategory": ""}, ...],   # every class, in order
         "images": [{"id": <sample id>, "file_name", "width", "height", "sha256"}, ...],
         "annotations": [{"id": 1, "image_id": <sample id>, "category_id", "source": "human|import|model",
                          "annotator", "labelled_at", "score"}, ...]}

    One annotation per exported image (its current label, or the model's suggestion with ``score``, its
    confidence); no ``bbox`` or ``segmentation``: the label is the whole image's. Category ids count from
    1 in the project's class order. Streamed: the images go out as they are read, the annotations wait
    in a temporary file (a million of them would not fit memory kindly)."""
    categories = {name: i for i, name in enumerate(classes, start=1)}
    info = {"description": f"Loupe labels of project {project_name}", "version": "1",
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"), "task": "classification",
            "suggestions": suggestions}
    yield '{"info": ' + json.dumps(info) + ', "licenses": [], "categories": ' + json.dumps(
        [{"id": i, "name": name, "supercategory": ""} for name, i in categories.items()]) + ', "images": ['
    with tempfile.TemporaryFile("w+", encoding="utf-8") as annotations:
        n = 0
        for row in rows:
            if row["label"] not in categories:  # no class by that name (cannot happen: classes are only added)
                continue
            n += 1
            sep = "" if n == 1 else ", "
            yield sep + json.dumps({"id": row["sample_id"], "file_name": row["filename"], "width": row["width"],
                                    "height": row["height"], "sha256": row["content_hash"],
                                    **({"split": row["split"]} if "split" in row else {})})
            annotations.write(sep + json.dumps({
                "id": n, "image_id": row["sample_id"], "category_id": categories[row["label"]],
                "source": row["source"], "annotator": row["annotator"], "labelled_at": row["labelled_at"],
                **({"score": row["confidence"]} if row["confidence"] is not None else {})}))
        yield '], "annotations": ['
        annotations.seek(0)
        while block := annotations.read(1 << 16):
            yield block
    yield "]}\n"
