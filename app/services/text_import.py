"""Import documents into a text project (issue 19): parse the upload (``app.services.text_formats``),
check every row, then insert samples with their text in short batches.

What an import leaves (as the image import, ``app.services.imports``):

* The whole upload is read and checked before anything is written: an upload over ``text_max_rows``
  documents, or one where no row could be imported, answers 422 and writes nothing.
* Each batch (``BATCH`` documents) inserts its samples and their texts in one transaction: a sample of
  a text project never exists without its document. An import stopped midway keeps its committed
  batches, and sending the same upload again finishes it (what the project holds is a duplicate).
* Duplicates are found by normalised content (``text_formats.normalised``: NFKC, case folded, white
  space collapsed), within the upload and against the project (the unique content hash).
* A label (a label column or field, or a zip's sub-folder) is kept as the sample's ``source_folder``
  and, where it names a class, the sample is inserted already labelled with its imported label's
  revision and counts in the batch's own transaction (``labels.add_imported_labels``, as the image
  import's folder labels: no sample updated after its insert); the others are listed in
  ``unknown_labels``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.db import run_after_commit
from app.models import Project
from app.repos import samples as samples_repo
from app.repos import texts as texts_repo
from app.services.errors import Invalid
from app.services.imports import (
    AUDIT_POOL_EVERY,
    REST_MISSING,
    ImportResult,
    _queue_embedding,
    finish_import,
    note_unknown_labels,
    stopped,
)
from app.services.labels import add_imported_labels
from app.services.text_formats import BadRow, Columns, Document, content_hash, parse_upload
from app.settings import Settings

BATCH = 1000  # documents a write transaction (a few milliseconds of the SQLite write lock)
MAX_LISTED = 1000  # bad rows named in the answer; past it one line counts the rest


def columns(text_column: str | None, label_column: str | None, id_column: str | None) -> Columns:
    """The columns an upload names (form fields), the defaults ``text``, ``label``, ``id`` otherwise."""
    chosen = {"text": text_column, "label": label_column, "id": id_column}
    for key, value in chosen.items():
        if value is not None and not value.strip():
            raise Invalid(f"{key}_column is empty: name a column, or leave it out for '{key}'")
    return Columns(text=(text_column or "text").strip(), label=(label_column or "label").strip(),
                   id=(id_column or "id").strip(), explicit=frozenset(k for k, v in chosen.items() if v))


def _report(bad: list[BadRow]) -> list[dict]:
    listed = [{"filename": b.source, "line": b.line, "reason": b.reason} for b in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        listed.append({"filename": "", "line": None, "reason": f"and {len(bad) - MAX_LISTED} more bad rows"})
    return listed


def read_upload(files: Iterable[tuple[str, object]], cols: Columns, settings: Settings) -> tuple[list[Document],
                                                                                                list[BadRow]]:
    """Every document of the upload and every bad row, checked; 422 past ``text_max_rows`` documents."""
    docs: list[Document] = []
    bad: list[BadRow] = []
    for name, fileobj in files:
        for item in parse_upload(name, fileobj, cols, settings, settings.text_max_chars):  # type: ignore[arg-type]
            if isinstance(item, BadRow):
                bad.append(item)
                continue
            docs.append(item)
            if len(docs) > settings.text_max_rows:
                raise Invalid(f"the upload has more than {settings.text_max_rows} documents (text_max_rows): "
                              f"nothing was imported; the document on line {item.line} of {item.source} is the "
                              f"first over the limit (split the upload)")
    return docs, bad


def import_texts(session: Session, project: Project, files: Iterable[tuple[str, object]], cols: Columns,
                 settings: Settings) -> ImportResult:
    """Import the upload's documents; bad rows are listed by file and line; labels that came with them
    applied where they name a class. Commits (as the image import), then queues the embedding.
    Raises ``Invalid`` (nothing written) when nothing could be imported and rows were bad."""
    project_id = project.id
    classes = set(project.classes)  # read before the commits (a session may expire on commit)
    docs, bad = read_upload(files, cols, settings)
    result = ImportResult(rejected=_report(bad))
    rows, texts = _rows(project_id, docs, classes, result)
    if not rows and bad:
        raise Invalid({"message": "no document could be imported", "rejected": result.rejected})
    session.commit()
    run_after_commit(session)
    try:
        for i in range(0, len(rows), BATCH):
            _write(session, rows[i:i + BATCH], texts, project_id, result)
    except BaseException as exc:
        _queue_embedding(session, project, result, settings)
        if (answer := stopped(result, exc, REST_MISSING)) is not None:
            raise answer from exc
        raise
    samples_repo.analyze_after_big_import(session, result.created)
    note_unknown_labels(classes, result)
    # The batches labelled their samples: what is left is what an import sets off.
    finish_import(session, project, result, settings)
    return result


def _rows(project_id: int, docs: list[Document], classes: set[str],
          result: ImportResult) -> tuple[list[dict], dict[str, str]]:
    """Sample rows of the documents not seen before in this upload (the others counted as duplicates),
    and each one's text by content hash. A document whose label names a class is a labelled sample."""
    rows: list[dict] = []
    texts: dict[str, str] = {}
    for doc in docs:
        digest = content_hash(doc.text)
        if digest in texts:
            result.duplicates += 1
            continue
        texts[digest] = doc.text
        label = doc.label if doc.label in classes else None
        rows.append({
            "project_id": project_id, "filename": doc.name[:512], "content_hash": digest,
            # A text sample has no file: no storage key, no thumbnail, no pixels.
            "storage_key": "", "thumbnail_key": "", "width": 0, "height": 0, "mode": "text",
            "byte_size": len(doc.text.encode("utf-8")), "source_folder": doc.label,
            "status": "unlabelled" if label is None else "labelled", "label": label,
            "rand_key": (rk := secrets.randbits(62)), "is_audit": rk % AUDIT_POOL_EVERY == 0,
        })
    return rows, texts


def _write(session: Session, rows: list[dict], texts: dict[str, str], project_id: int, result: ImportResult) -> None:
    """Insert a batch's samples (those whose content the project lacks), their texts and the revisions of
    those inserted labelled; one commit."""
    by_hash = {r["content_hash"]: r for r in rows}
    try:
        inserted = samples_repo.insert_samples(session, rows)
        texts_repo.insert_texts(session, [{"sample_id": sid, "project_id": project_id, "text": texts[digest]}
                                          for sid, digest in inserted])
        labelled = add_imported_labels(session, project_id, inserted, by_hash)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    run_after_commit(session)
    result.duplicates += len(rows) - len(inserted)
    result.created += len(inserted)
    result.labelled += labelled
    for sid, digest in inserted:
        result.sample_ids.append(sid)
        if folder := by_hash[digest]["source_folder"]:
            result.folders[sid] = folder
