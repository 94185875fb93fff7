"""Import candidate files into a project: check, hash, store once (with thumbnail and working copy),
insert rows in short batches.

What an import leaves, finished or not (docs/architecture.md, "The path of a sample"):

* Files are checked, hashed and stored outside any transaction; each batch of at most ``BATCH``
  samples (or ``BATCH_BYTES`` of files) is then inserted and committed in a transaction of its own, a
  few milliseconds of the SQLite write lock, so labels and other writes go on between batches.
* A committed sample always has its files: they are stored before its row, and a batch that fails
  before its commit removes the files it wrote (unless another import's committed row names them).
* A rejected file is never stored and never gets a row.
* With labels from folders, a sample whose ImageFolder sub-folder names a class is inserted already
  labelled, its imported revision and the label counters in its batch's transaction
  (``labels.add_imported_labels``): a committed sample always has the label its folder gave it, and a
  stopped import sent again labels the rest (labelling after the commits left the samples of a failed
  import unlabelled for good, as sending them again counted them as duplicates).
* An import that stops midway (a client gone, a full disk, an error) keeps its committed batches:
  whole samples, embedded as any import's (the embed job is queued on the way out). Sending the same
  files again finishes it: what the project holds is counted as a duplicate (content hash).
* A process killed outright (SIGKILL, power cut) can leave the files of the batch it was writing with
  no row: unused, and reused by the next import of the same content. Never a row without its files.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.db import run_after_commit
from app.models import Project
from app.repos import samples as samples_repo
from app.services import automation
from app.services.archives import Candidate, expand_path
from app.services.errors import ImportStopped
from app.services.image_check import ImageRejected, check_image
from app.services.labels import add_imported_labels
from app.settings import Settings
from app.storage import BlobStore

log = logging.getLogger(__name__)

# Samples a write transaction: on SQLite other writers (an annotator's label) wait at most one batch's
# inserts, a few milliseconds; per-sample commits would cost more than the inserts.
BATCH = 64
# Bytes of files (originals, thumbnails, working copies) a batch holds before it is written: large
# photos make smaller batches, so an import's memory stays bounded.
BATCH_BYTES = 64 * 1024 * 1024
CHUNK = BATCH  # the name callers knew
# One sample in this many joins the random audit pool (uniform, fixed at import).
AUDIT_POOL_EVERY = 20


@dataclass
class ImportResult:
    created: int = 0
    duplicates: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    sample_ids: list[int] = field(default_factory=list)
    folders: dict[int, str] = field(default_factory=dict)  # sample id -> class sub-folder
    # With labels from folders: the new samples a class sub-folder labelled (source 'import', inserted
    # labelled), and the sub-folders that name no class of the project (their samples stay unlabelled).
    labelled: int = 0
    unknown_labels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": self.created, "duplicates": self.duplicates, "rejected": self.rejected,
                "labelled": self.labelled, "unknown_labels": self.unknown_labels}


def _commit(session: Session) -> None:
    """Commit the session and run what waited for it (app.db.after_commit)."""
    session.commit()
    run_after_commit(session)


def import_candidates(
    session: Session,
    project: Project,
    candidates: Iterable[Candidate],
    settings: Settings,
    progress: Callable[[int, ImportResult], None] | None = None,
    after_chunk: Callable[[], None] | None = None,
    labels_from_folders: bool = False,
) -> ImportResult:
    """Import everything acceptable from ``candidates``; rejected files are listed with reasons. With
    ``labels_from_folders`` a sample whose class sub-folder names a class of the project is inserted
    with that label (source 'import', no user), in its batch's transaction; sub-folders that name none
    are listed in ``result.unknown_labels``, their samples left unlabelled (classes are never added on
    the quiet: a typo would become one).

    The import commits ``session``: first what the caller holds (checking files needs no transaction,
    and on SQLite an open one may hold the write lock), then each batch of rows; it is the one service
    that commits, as its batches must be durable one by one (the module's docstring says what a
    stopped import leaves). ``after_chunk`` is called after each batch's commit. On an error the
    committed samples' embedding is queued and the error raised again.
    """
    project_id = project.id  # read before the commit: a session that expires on commit would reload it
    classes = set(project.classes) if labels_from_folders else set()
    _commit(session)
    store = BlobStore(settings.media_path)
    result = ImportResult()
    seen_hashes: set[str] = set()
    batch = _Batch()
    seen = 0
    try:
        for cand in candidates:
            seen += 1
            row = _accept(cand, project_id, store, settings, result, seen_hashes, classes)
            if row is not None:
                batch.add(row)
            if batch.full():
                _write(session, project_id, batch, store, result, after_chunk)
            if progress is not None:
                progress(seen, result)
        _write(session, project_id, batch, store, result, after_chunk)
    except BaseException as exc:
        _queue_embedding(session, project, result, settings)
        if (answer := stopped(result, exc, REST_MISSING)) is not None:
            raise answer from exc
        raise
    if progress is not None:
        progress(seen, result)
    samples_repo.analyze_after_big_import(session, result.created)
    if labels_from_folders:
        note_unknown_labels(classes, result)
    return result


def _accept(cand: Candidate, project_id: int, store: BlobStore, settings: Settings, result: ImportResult,
            seen_hashes: set[str], classes: set[str]) -> dict | None:
    """The sample row (with its files, under ``_`` keys) for an acceptable candidate not yet seen in this
    import, labelled where its sub-folder is one of ``classes``; None for a duplicate (counted) or a
    rejected file (listed with the reason)."""
    if "\x00" in cand.filename:
        # PostgreSQL stores no NUL in text (nor in json): one such name failed the whole import there.
        result.rejected.append({"filename": cand.filename.replace("\x00", "\ufffd"),
                                "reason": "the file name contains a NUL character: not imported (rename it)"})
        return None
    if cand.rejected is not None or cand.data is None:
        result.rejected.append({"filename": cand.filename, "reason": cand.rejected or "unreadable"})
        return None
    digest = hashlib.sha256(cand.data).hexdigest()
    if digest in seen_hashes:
        result.duplicates += 1
        return None
    try:
        checked = check_image(cand.data, max_pixels=settings.max_image_pixels,
                              thumbnail_size=settings.thumbnail_size, work_side=settings.work_side)
    except ImageRejected as exc:
        result.rejected.append({"filename": cand.filename, "reason": exc.reason})
        return None
    seen_hashes.add(digest)
    label = cand.folder if cand.folder in classes else None
    return {
        "project_id": project_id,
        "filename": cand.filename[:512],
        "content_hash": digest,
        "storage_key": store.key_for(digest, "images", checked.extension),
        # A small upright JPEG is its own thumbnail (one file, no re-encoding).
        "thumbnail_key": store.key_for(digest, "thumbs", ".jpg")
        if checked.thumbnail is not None else store.key_for(digest, "images", ".jpg"),
        "width": checked.width,
        "height": checked.height,
        "mode": checked.mode,
        "byte_size": len(cand.data),
        "source_folder": (cand.folder or None) and cand.folder[:200],
        "status": "unlabelled" if label is None else "labelled",
        "label": label,
        "rand_key": (rk := secrets.randbits(62)),
        "is_audit": rk % AUDIT_POOL_EVERY == 0,
        "_data": cand.data,
        "_thumb": checked.thumbnail,
        "_work": checked.working,
        "_work_key": store.working_key(digest, settings.work_side, checked.working_ext),
        "_folder": cand.folder,
    }


def _files(row: dict) -> list[tuple[str, bytes]]:
    """A row's files to store: (key, bytes), leaving out those the original serves as."""
    return [(key, blob) for key, blob in ((row["storage_key"], row["_data"]), (row["thumbnail_key"], row["_thumb"]),
                                          (row["_work_key"], row["_work"])) if blob is not None]


@dataclass
class _Batch:
    """Checked rows, with their files in memory, waiting to be written together."""

    rows: list[dict] = field(default_factory=list)
    size: int = 0  # bytes of files held

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.size += sum(len(blob) for _key, blob in _files(row))

    def full(self) -> bool:
        return len(self.rows) >= BATCH or self.size >= BATCH_BYTES


def _write(session: Session, project_id: int, batch: _Batch, store: BlobStore, result: ImportResult,
           after_chunk: Callable[[], None] | None) -> None:
    """Store the batch's files, then insert and commit its rows in one short transaction; empties it.
    A failure before the commit takes back the files the batch wrote and is raised again."""
    if not batch.rows:
        return
    written: list[tuple[str, str, bytes]] = []  # (hash, key, bytes) of the files this batch wrote
    try:
        # Files first, outside the transaction: a committed row always finds its files.
        for r in batch.rows:
            written += [(r["content_hash"], key, blob) for key, blob in _files(r) if store.put(key, blob)]
        counted = _insert(session, project_id, batch.rows)
        _commit(session)
    except BaseException:
        _discard(session, store, written)
        raise
    _count(result, counted)
    # A failing import of the same content elsewhere may have removed a file this batch found stored
    # (it looks for rows only after removing; we look for files only after committing: one of the two
    # sees the other). Put back what is missing.
    for r in batch.rows:
        for key, blob in _files(r):
            if not store.exists(key):
                store.put(key, blob)
    batch.rows.clear()
    batch.size = 0
    if after_chunk is not None:
        after_chunk()


def _discard(session: Session, store: BlobStore, written: list[tuple[str, str, bytes]]) -> None:
    """Take back the files a failed batch wrote, except those a committed sample (of any project, files
    are shared by content) names: another import may have found them stored and committed its row."""
    for _digest, key, _blob in written:
        store.delete(key)
    try:
        session.rollback()
        named = samples_repo.hashes_in_use(session, sorted({d for d, _k, _b in written}))
        session.rollback()
    except Exception:  # the failure being raised matters more; keep every file then
        log.warning("an import's failed batch could not check its files; they are kept", exc_info=True)
        named = {d for d, _k, _b in written}
    for digest, key, blob in written:
        if digest in named:
            store.put(key, blob)


@dataclass
class _Counted:
    """What a batch's insert did, applied to the result once its transaction committed."""

    duplicates: int = 0
    inserted: list[tuple[int, str]] = field(default_factory=list)
    folders: dict[str, str] = field(default_factory=dict)  # hash -> class sub-folder
    labelled: int = 0


def _insert(session: Session, project_id: int, rows: list[dict]) -> _Counted:
    """Insert the rows whose content the project lacks (a concurrent import of the same file wins the
    unique constraint; ours counts as a duplicate), and the imported revisions of those inserted
    labelled."""
    existing = samples_repo.existing_hashes(session, project_id, [r["content_hash"] for r in rows])
    fresh = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows if r["content_hash"] not in existing]
    inserted = samples_repo.insert_samples(session, fresh)
    labelled = add_imported_labels(session, project_id, inserted, {r["content_hash"]: r for r in fresh})
    return _Counted(duplicates=len(rows) - len(inserted), inserted=inserted,
                    folders={r["content_hash"]: r["_folder"] for r in rows if r["_folder"]}, labelled=labelled)


def _count(result: ImportResult, counted: _Counted) -> None:
    result.duplicates += counted.duplicates
    result.created += len(counted.inserted)
    result.labelled += counted.labelled
    for sid, digest in counted.inserted:
        result.sample_ids.append(sid)
        if digest in counted.folders:
            result.folders[sid] = counted.folders[digest]


REST_MISSING = "the rest was not imported: send the same files again (those stored count as duplicates)"


def stopped(result: ImportResult, exc: BaseException, missing: str) -> ImportStopped | None:
    """The error to answer with when the database fails an import after it committed samples: the API's
    answer to a database error says "nothing was changed", and here something was. None when it stored
    nothing, or for any other error (the client gone, a full disk: raised as they are, and answered
    without that claim)."""
    if result.created and isinstance(exc, DBAPIError):
        return ImportStopped(result.created, exc, missing)
    return None


def _queue_embedding(session: Session, project: Project, result: ImportResult, settings: Settings) -> None:
    """An import that stops midway: queue what an import sets off for its committed samples, in a short
    transaction of its own, so they are embedded like any others. Never hides the import's error."""
    if result.created == 0:
        return
    try:
        session.rollback()
        automation.after_import(session, project, result.created, settings.broker_url)
        _commit(session)
    except Exception:  # the import's own error is the one to raise
        session.rollback()
        log.warning("an import stopped after %d samples; their embedding could not be queued",
                    result.created, exc_info=True)


def folder_classes(path: Path) -> list[str]:
    """The class names an ImageFolder tree gives: its sub-folders (none for a file)."""
    return sorted({p.name for p in path.iterdir() if p.is_dir()}) if path.is_dir() else []


def import_path(session: Session, project: Project, path: Path, settings: Settings, labels_from_folders: bool = False,
                progress: Callable[[int, ImportResult], None] | None = None,
                after_chunk: Callable[[], None] | None = None) -> tuple[ImportResult, int]:
    """Import a file, a zip or a folder tree from the server's disk (``loupe import``), its class
    sub-folders as imported labels if asked, then finish it (``finish_import``). Returns the result and
    how many samples the folders labelled."""
    result = import_candidates(session, project, expand_path(path, settings), settings, progress, after_chunk,
                               labels_from_folders)
    finish_import(session, project, result, settings)
    return result, result.labelled


def finish_import(session: Session, project: Project, result: ImportResult, settings: Settings) -> None:
    """What follows every import (``loupe import``, ``POST /projects/{pid}/samples`` and the text import
    alike): what an import sets off (embedding, pretraining). The labels that came with the samples were
    committed with them, batch by batch."""
    try:
        automation.after_import(session, project, result.created, settings.broker_url)
    except Exception as exc:
        if (answer := stopped(result, exc, "their embedding may wait")) is not None:
            raise answer from exc
        raise


def note_unknown_labels(classes: set[str], result: ImportResult) -> None:
    """List in ``result.unknown_labels`` the sub-folders (labels) of the new samples that name no class."""
    result.unknown_labels = sorted({folder for folder in result.folders.values() if folder not in classes})
