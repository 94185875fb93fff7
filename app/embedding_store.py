"""Embedding arrays on disk: one ``.npy`` per embedding version plus the sample ids of its rows.

Files are written to a temporary name and renamed into place, so a reader (or a crash) never sees a
half-written array; readers memory-map them, so a worker scoring a million rows does not copy them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def keys_for(project_id: int, tag: str) -> tuple[str, str]:
    base = f"embeddings/p{project_id}/{tag}"
    return f"{base}.npy", f"{base}.ids.npy"


def write(media: Path, project_id: int, tag: str, ids: np.ndarray, vectors: np.ndarray) -> tuple[str, str]:
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} embedding rows")
    file_key, ids_key = keys_for(project_id, tag)
    # The vectors first: a version whose ids file exists is complete.
    _atomic_save(media / file_key, vectors)
    _atomic_save(media / ids_key, ids.astype(np.int64))
    return file_key, ids_key


def read(media: Path, file_key: str, ids_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, vectors memory-mapped read-only)."""
    ids = np.load(media / ids_key)
    vectors = np.load(media / file_key, mmap_mode="r")
    if len(ids) != len(vectors):
        raise ValueError(f"embedding file {file_key} is inconsistent with its ids")
    return ids, vectors
