"""Import candidate files into a project: check, hash, store once (with thumbnail and working copy),
insert rows in bulk."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from app.db import on_rollback
from app.models import Project
from app.repos import samples as samples_repo
from app.services.archives import Candidate
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

    In a request the caller commits once at the end (all or nothing); the CLI passes ``after_chunk``
    to commit per chunk so a long import keeps what it has done.
    """
    store = BlobStore(settings.media_path)
    result = ImportResult()
    seen_hashes: set[str] = set()
    rows: list[dict] = []
    seen = 0

    def flush() -> None:
        if not rows:
            return
        existing = samples_repo.existing_hashes(session, project.id, [r["content_hash"] for r in rows])
        fresh = [r for r in rows if r["content_hash"] not in existing]
        result.duplicates += len(rows) - len(fresh)
        for r in fresh:
            work_key = r.pop("_work_key")  # not a column: derived from the hash (BlobStore.working_key)
            for key, blob in ((r["storage_key"], r.pop("_data")), (r["thumbnail_key"], r.pop("_thumb")),
                              (work_key, r.pop("_work"))):
                if blob is not None and store.put(key, blob):
                    on_rollback(session, lambda k=key: store.delete(k))
        folders = {r["content_hash"]: r.pop("_folder") for r in fresh}
        for r in rows:
            for extra in ("_data", "_thumb", "_work", "_work_key", "_folder"):
                r.pop(extra, None)
        inserted = samples_repo.insert_samples(session, fresh)
        # A concurrent import of the same file wins the unique constraint; ours counts as a duplicate.
        result.duplicates += len(fresh) - len(inserted)
        result.created += len(inserted)
        for sid, digest in inserted:
            result.sample_ids.append(sid)
            if folders.get(digest):
                result.folders[sid] = folders[digest]
        rows.clear()
        if after_chunk is not None:
            after_chunk()

    for cand in candidates:
        seen += 1
        if cand.rejected is not None or cand.data is None:
            result.rejected.append({"filename": cand.filename, "reason": cand.rejected or "unreadable"})
        else:
            digest = hashlib.sha256(cand.data).hexdigest()
            if digest in seen_hashes:
                result.duplicates += 1
            else:
                try:
                    checked = check_image(cand.data, max_pixels=settings.max_image_pixels,
                                          thumbnail_size=settings.thumbnail_size, work_side=settings.work_side)
                except ImageRejected as exc:
                    result.rejected.append({"filename": cand.filename, "reason": exc.reason})
                else:
                    seen_hashes.add(digest)
                    rows.append(
                        {
                            "project_id": project.id,
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
                    )
        if len(rows) >= CHUNK:
            flush()
        if progress is not None:
            progress(seen, result)
    flush()
    if progress is not None:
        progress(seen, result)
    samples_repo.analyze_after_big_import(session, result.created)
    return result


def apply_folder_labels(session: Session, project: Project, result: ImportResult, user=None) -> int:
    """Keep ImageFolder class sub-folders as labels of source 'import' where they name a class."""
    from app.services.labels import LabelRequest, add_labels

    classes = set(project.classes)
    reqs = [LabelRequest(sid, folder) for sid, folder in result.folders.items() if folder in classes]
    if reqs:
        add_labels(session, project, user, reqs, source="import")
    return len(reqs)
