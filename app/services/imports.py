"""Import candidate files into a project: check, hash, store once (with thumbnail and working copy),
insert rows in bulk."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session

from app.db import on_rollback
from app.models import Project
from app.repos import samples as samples_repo
from app.services import automation
from app.services.archives import Candidate, expand_path
from app.services.image_check import ImageRejected, check_image
from app.settings import Settings
from app.storage import BlobStore

CHUNK = 256
# One sample in this many joins the random audit pool (uniform, fixed at import).
AUDIT_POOL_EVERY = 20


@dataclass
class ImportResult:
    created: int = 0
    duplicates: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)
    sample_ids: list[int] = field(default_factory=list)
    folders: dict[int, str] = field(default_factory=dict)  # sample id -> class sub-folder

    def as_dict(self) -> dict:
        return {"created": self.created, "duplicates": self.duplicates, "rejected": self.rejected}


def import_candidates(
    session: Session,
    project: Project,
    candidates: Iterable[Candidate],
    settings: Settings,
    progress: Callable[[int, ImportResult], None] | None = None,
    after_chunk: Callable[[], None] | None = None,
) -> ImportResult:
    """Import everything acceptable from ``candidates``; rejected files are listed with reasons.

    Checking, hashing and storing the files needs no database, so it runs outside any transaction: on
    SQLite an import holds the write lock only while it inserts rows, and reads and labels go on.
    In a request the rows are inserted at the end in one transaction the caller commits (all or
    nothing); the CLI passes ``after_chunk`` to insert and commit per chunk so a long import keeps what
    it has done.
    """
    store = BlobStore(settings.media_path)
    result = ImportResult()
    seen_hashes: set[str] = set()
    rows: list[dict] = []
    ready: list[dict] = []  # checked rows whose files are stored, waiting for their insert
    seen = 0
    for cand in candidates:
        seen += 1
        row = _accept(cand, project.id, store, settings, result, seen_hashes)
        if row is not None:
            rows.append(row)
        if len(rows) >= CHUNK:
            ready += _store_files(session, rows, store)
            if after_chunk is not None:
                _insert(session, project.id, ready, result, after_chunk)
        if progress is not None:
            progress(seen, result)
    ready += _store_files(session, rows, store)
    _insert(session, project.id, ready, result, after_chunk)
    if progress is not None:
        progress(seen, result)
    samples_repo.analyze_after_big_import(session, result.created)
    return result


def _accept(cand: Candidate, project_id: int, store: BlobStore, settings: Settings, result: ImportResult,
            seen_hashes: set[str]) -> dict | None:
    """The sample row (with its files, under ``_`` keys) for an acceptable candidate not yet seen in this
    import; None for a duplicate (counted) or a rejected file (listed with the reason)."""
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
        "status": "unlabelled",
        "rand_key": (rk := secrets.randbits(62)),
        "is_audit": rk % AUDIT_POOL_EVERY == 0,
        "_data": cand.data,
        "_thumb": checked.thumbnail,
        "_work": checked.working,
        "_work_key": store.working_key(digest, settings.work_side, checked.working_ext),
        "_folder": cand.folder,
    }


_FILES = ("_data", "_thumb", "_work", "_work_key")  # a row's keys that are files, not columns


def _store_files(session: Session, rows: list[dict], store: BlobStore) -> list[dict]:
    """Store the rows' files (each removed again if the transaction rolls back) and drop them from the
    rows; empties ``rows`` and returns what it held. No database work: no transaction is begun."""
    for r in rows:
        for key, blob in ((r["storage_key"], r["_data"]), (r["thumbnail_key"], r["_thumb"]),
                          (r["_work_key"], r["_work"])):  # the working key is derived from the hash
            if blob is not None and store.put(key, blob):
                on_rollback(session, partial(store.delete, key))
        for extra in _FILES:
            r.pop(extra, None)
    out = rows[:]
    rows.clear()
    return out


def _insert(session: Session, project_id: int, ready: list[dict], result: ImportResult,
            after_chunk: Callable[[], None] | None) -> None:
    """Insert the rows whose content the project lacks, CHUNK at a time; empties ``ready``."""
    for start in range(0, len(ready), CHUNK):
        rows = ready[start:start + CHUNK]
        existing = samples_repo.existing_hashes(session, project_id, [r["content_hash"] for r in rows])
        fresh = [r for r in rows if r["content_hash"] not in existing]
        result.duplicates += len(rows) - len(fresh)
        folders = {r["content_hash"]: r.pop("_folder") for r in rows}
        inserted = samples_repo.insert_samples(session, fresh)
        # A concurrent import of the same file wins the unique constraint; ours counts as a duplicate.
        result.duplicates += len(fresh) - len(inserted)
        result.created += len(inserted)
        for sid, digest in inserted:
            result.sample_ids.append(sid)
            if folders.get(digest):
                result.folders[sid] = folders[digest]
    ready.clear()
    if after_chunk is not None:
        after_chunk()


def folder_classes(path: Path) -> list[str]:
    """The class names an ImageFolder tree gives: its sub-folders (none for a file)."""
    return sorted({p.name for p in path.iterdir() if p.is_dir()}) if path.is_dir() else []


def import_path(session: Session, project: Project, path: Path, settings: Settings, labels_from_folders: bool = False,
                progress: Callable[[int, ImportResult], None] | None = None,
                after_chunk: Callable[[], None] | None = None) -> tuple[ImportResult, int]:
    """Import a file, a zip or a folder tree from the server's disk (``loupe import``): what it holds,
    the class sub-folders as labels if asked, then what an import sets off (embedding, pretraining).
    Returns the result and how many samples the folders labelled."""
    result = import_candidates(session, project, expand_path(path, settings), settings, progress, after_chunk)
    labelled = apply_folder_labels(session, project, result, None) if labels_from_folders else 0
    automation.after_import(session, project, result.created, settings.broker_url)
    return result, labelled


def apply_folder_labels(session: Session, project: Project, result: ImportResult, user=None) -> int:
    """Keep ImageFolder class sub-folders as labels of source 'import' where they name a class."""
    from app.services.labels import LabelRequest, add_labels

    classes = set(project.classes)
    reqs = [LabelRequest(sid, folder) for sid, folder in result.folders.items() if folder in classes]
    if reqs:
        add_labels(session, project, user, reqs, source="import")
    return len(reqs)
