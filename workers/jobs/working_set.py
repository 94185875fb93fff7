"""The images pretraining and embedding read: working copies, and a project's working set built from them.

* A **working copy** of each sample is made at import (``imaging.working_copy``, key
  ``BlobStore.working_key``): upright, 'L' or 'RGB', short side at most ``work_side`` (256 px). A sample
  imported before working copies existed (or whose copy was lost) gets one here, from its original, the
  first time a job needs it; an original that needs no conversion or reduction is its own copy.
* A **working set** is one memory-mapped uint8 array (N, S, S, C) per project, side S and channels C
  (``workset/p<pid>/s<S>-c<C>.npy``, its sample ids in ``.ids.npy`` beside it, rows in id order): each
  working copy's short side resized to S and the centre square kept (the edges of a very elongated
  photo are cut, as the backbone input always did). S is twice the backbone input (128 px for a 64 px
  input) but no more than the working copies carry, so crops at several scales still find detail.
  It is built once and then only extended: samples it lacks are decoded, the rows it has are copied
  (no decode), the result is written under a temporary name and renamed over the old file. Builders
  take turns on a lock file; a reader that has mapped the old file keeps reading it (its inode lives on).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from app.repos.embeddings import ImageRow
from app.settings import get_settings
from app.storage import BlobStore
from imaging import working_copy
from imaging.normalise import load_image
from workers.jobs.context import JobContext

CHUNK = 256  # rows decoded and written per step
Progress = Callable[[float, str], None]


def working_side(size: int, work_side: int | None = None, native: int | None = None) -> int:
    """S for a backbone input of ``size`` px: 2 x size, capped at the working copies' side and at the
    images' own typical short side ``native`` (never below the input itself): a pool of 64 px photos
    kept at 128 px would be four times the disk and memory for pixels that were never there."""
    from ml.pretrain import working_side as pretraining_side  # the rule pretraining applies to any array

    work_side = work_side or get_settings().work_side
    cap = (min(work_side, native) if native else work_side) // 4 * 4
    return pretraining_side((cap, cap), size)


def typical_short_side(ctx: JobContext) -> int | None:
    """Median short side of (up to 2,000 of) the project's images, from the sizes stored at import."""
    with session_scope(ctx.db_url) as s:
        rows = embeddings_repo.some_sizes(s, ctx.project_id)
    return int(np.median([min(w, h) for w, h in rows])) if rows else None


def _rows(ctx: JobContext, ids: np.ndarray) -> list[ImageRow]:
    """The rows of ``ids`` (in that order) with what locating their working copies needs."""
    wanted = [int(i) for i in ids]
    with session_scope(ctx.db_url) as s:
        found = embeddings_repo.image_rows(s, ctx.project_id, wanted)
    missing = set(wanted) - found.keys()
    if missing:
        raise ValueError(f"samples {sorted(missing)[:5]} are not in project {ctx.project_id}")
    return [found[int(i)] for i in ids]


def _copy_path(store: BlobStore, row: ImageRow, side: int) -> Path:
    """The working copy of ``row``, made from its original when it is missing."""
    if working_copy.original_serves(row.mode, row.width, row.height, side):
        return store.path(row.storage_key)
    ext = working_copy.extension(row.mode, row.width, row.height, side)
    key = store.working_key(row.content_hash, side, ext)
    if not store.exists(key):
        original = load_image(store.path(row.storage_key))
        store.put(key, working_copy.encode(working_copy.reduce(original, side), ext))
    return store.path(key)


def _threads() -> int:
    # PIL decodes and resizes without the GIL; a few threads keep the cores busy without a process pool.
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def working_copy_paths(ctx: JobContext, ids: np.ndarray) -> list[str]:
    """Paths of the working copies of ``ids`` (in order), making the missing ones first."""
    store, side = BlobStore(ctx.media), get_settings().work_side
    rows = _rows(ctx, np.asarray(ids))
    with ThreadPoolExecutor(_threads()) as pool:
        return [str(p) for p in pool.map(lambda r: _copy_path(store, r, side), rows)]


# ---------------------------------------------------------------- the working set


def _decode(path: str, side: int, channels: int) -> np.ndarray:
    """One working copy as a row: short side to ``side``, centre square (``ml.images.to_array``)."""
    from ml.images import to_array

    return to_array(load_image(path), side, channels)


def _files(ctx: JobContext, side: int, channels: int) -> tuple[Path, Path, Path]:
    folder = ctx.media / "workset" / f"p{ctx.project_id}"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"s{side}-c{channels}"
    return folder / f"{stem}.npy", folder / f"{stem}.ids.npy", folder / f"{stem}.lock"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open(array_path: Path, ids_path: Path, side: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, memory-mapped rows) as stored, or empty ones when there is no complete pair (a crash between
    the two renames leaves a count mismatch: the set is then rebuilt)."""
    empty = np.empty(0, np.int64), np.empty((0, side, side, channels), np.uint8)
    if not (array_path.exists() and ids_path.exists()):
        return empty
    ids = np.load(ids_path)
    arr = np.load(array_path, mmap_mode="r")
    if len(ids) != len(arr) or arr.shape[1:] != (side, side, channels):
        return empty
    return ids, arr


def _extend(ctx: JobContext, array_path: Path, ids_path: Path, old_ids: np.ndarray, old: np.ndarray,
            new_ids: np.ndarray, side: int, channels: int, progress: Progress | None) -> None:
    """Write old rows + decoded rows of ``new_ids`` (ids ascending) to a new file and rename it in place."""
    ids = np.union1d(old_ids, new_ids)
    tmp_array = array_path.with_name(f".tmp-{os.getpid()}-{array_path.name}")
    tmp_ids = ids_path.with_name(f".tmp-{os.getpid()}-{ids_path.name}")
    try:
        out = np.lib.format.open_memmap(tmp_array, mode="w+", dtype=np.uint8, shape=(len(ids), side, side, channels))
        for start in range(0, len(old_ids), 4 * CHUNK):  # kept rows: copied, never decoded again
            part = old_ids[start:start + 4 * CHUNK]
            out[np.searchsorted(ids, part)] = old[start:start + len(part)]
        paths = working_copy_paths(ctx, new_ids)
        rows = np.searchsorted(ids, new_ids)
        with ThreadPoolExecutor(_threads()) as pool:
            for start in range(0, len(paths), CHUNK):
                decoded = pool.map(lambda p: _decode(p, side, channels), paths[start:start + CHUNK])
                out[rows[start:start + CHUNK]] = np.stack(list(decoded))
                if progress is not None:
                    done = min(len(paths), start + CHUNK)
                    progress(done / len(paths), f"working set: {done}/{len(paths)} new images at {side} px")
        out.flush()
        del out
        np.save(tmp_ids, ids)
        # Array first, then ids: between the two a reader sees a count mismatch, never wrong rows.
        os.replace(tmp_array, array_path)
        os.replace(tmp_ids, ids_path)
    finally:
        tmp_array.unlink(missing_ok=True)
        tmp_ids.unlink(missing_ok=True)


def _worth_extending(asked: int, new: int, stored: int) -> bool:
    """Extending rewrites the whole file (old rows copied). For a few new samples of a large set (the
    embed job after a small import) that costs more than it saves: they are decoded into memory instead,
    and the next bulk read (a pretraining asks for every sample) adds them."""
    return asked * 2 > stored or new * 10 > stored or new > 16 * CHUNK


def _with_new_rows(ctx: JobContext, ids: np.ndarray, stored_ids: np.ndarray, arr: np.ndarray,
                   new_ids: np.ndarray, side: int, channels: int) -> np.ndarray:
    """The rows of ``ids`` in memory: stored ones copied, the few ``new_ids`` decoded."""
    out = np.empty((len(ids), side, side, channels), np.uint8)
    is_new = np.isin(ids, new_ids)
    out[~is_new] = arr[np.searchsorted(stored_ids, ids[~is_new])]
    with ThreadPoolExecutor(_threads()) as pool:
        decoded = pool.map(lambda p: _decode(p, side, channels), working_copy_paths(ctx, ids[is_new]))
        for row, image in zip(np.flatnonzero(is_new), decoded, strict=True):
            out[row] = image
    return out


def load_working_set(ctx: JobContext, size: int, channels: int, ids: np.ndarray,
                     progress: Progress | None = None) -> np.ndarray:
    """The rows of ``ids`` (in that order) of the project's working set for a ``size`` px backbone input
    with ``channels`` channels: uint8 (len(ids), S, S, channels), S = ``working_side`` of the size and the
    images' typical short side.

    Samples the set lacks are added first (their working copies decoded, or made from the originals
    when missing), except a few new ones of a large set, which are decoded into memory only
    (``_worth_extending``). The result is the memory map itself when ``ids`` are a run of its rows (a pretraining
    on the whole project), else an in-memory copy of those rows.
    """
    ids = np.asarray(ids, dtype=np.int64)
    side = working_side(size, native=typical_short_side(ctx))
    array_path, ids_path, lock = _files(ctx, side, channels)
    with _locked(lock):
        stored_ids, arr = _open(array_path, ids_path, side, channels)
        new_ids = np.setdiff1d(ids, stored_ids)
        if len(new_ids) and not _worth_extending(len(ids), len(new_ids), len(stored_ids)):
            return _with_new_rows(ctx, ids, stored_ids, arr, new_ids, side, channels)
        if len(new_ids):
            _extend(ctx, array_path, ids_path, stored_ids, arr, new_ids, side, channels, progress)
            stored_ids, arr = _open(array_path, ids_path, side, channels)
    pos = np.searchsorted(stored_ids, ids)
    assert np.array_equal(stored_ids[pos], ids), "the working set lacks rows it was just given"
    if len(pos) and pos[-1] - pos[0] == len(pos) - 1 and np.all(np.diff(pos) == 1):
        return arr[pos[0]:pos[0] + len(pos)]
    return np.asarray(arr[pos])
