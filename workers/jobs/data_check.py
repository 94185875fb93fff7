"""Near-duplicates and outliers after each embedding version (issue 18), run by the train job.

Thin: the pool's embeddings go to ``ml.data_check`` (blocked k-nearest neighbours, duplicate groups,
least typical rows) with each sample's perceptual hash and pixel spread, and the groups and outliers are
stored through ``app.repos.data_checks`` against the embedding version; each group's unlabelled members are
moved to one side of the audit sample (``keep_groups_on_one_side``). It runs once per embedding
version: a retrain on the same embeddings finds the set there and leaves it (images far from every
class are read from each model's predictions by the API instead).

Hashes and pixel spreads are kept per project in ``datacheck/p<pid>/hashes.npz`` (sample ids, hash,
spread) and only samples it lacks are decoded (their working copies, reduced by the JPEG decoder)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.db import session_scope
from app.repos import data_checks as repo
from app.storage import atomic_file
from workers.jobs.context import JobContext

if TYPE_CHECKING:
    from ml.fit import Pool

log = logging.getLogger(__name__)
OUTLIERS = 200  # least typical samples kept (the API's limit is 500 over all reasons)
GROUPS = 5000  # duplicate groups kept, largest first
STD_SIDE = 64


def refresh(ctx: JobContext, pool: Pool, progress: Callable[[float, str], None]) -> dict[str, Any] | None:
    """Find duplicate groups and outliers in ``pool`` unless done for this embedding version already;
    the counts, or None when skipped or failed (a failure is logged and never fails the train job: the
    model is stored and serving by then, and the routes keep answering 409)."""
    try:
        assert ctx.current_embedding is not None
        with session_scope(ctx.db_url) as s:
            if repo.latest(s, ctx.project_id, ctx.current_embedding.id) is not None:
                return None
        return _refresh(ctx, pool, progress)
    except Exception:
        log.exception("the duplicate and outlier check on embedding version %s failed",
                      ctx.current_embedding.id if ctx.current_embedding else None)
        return None


def cache_path(media: Path, project_id: int) -> Path:
    return media / "datacheck" / f"p{project_id}" / "hashes.npz"


def _grey(path: str) -> tuple[np.ndarray, float]:
    """A working copy as a 32 x 32 grey image (for the hash) and its pixel spread at 64 x 64."""
    from PIL import Image

    from ml.data_check import HASH_SIDE

    with Image.open(path) as im:
        im.draft("L", (STD_SIDE, STD_SIDE))  # JPEG: decoded at a reduced scale
        g = im.convert("L").resize((STD_SIDE, STD_SIDE), Image.Resampling.BOX)
    small = g.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32), float(np.asarray(g, dtype=np.float32).std())


def hashes(ctx: JobContext, ids: np.ndarray,
           progress: Callable[[float, str], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(phash (N,) uint64, pixel std (N,) float32, low frequencies (N, 35) float16) of ``ids``
    (ascending), computing only those the project's cache lacks."""
    from ml.data_check import low_frequencies, phash
    from workers.jobs.working_set import working_copy_paths

    path = cache_path(ctx.media, ctx.project_id)
    old_ids, old_h, old_std = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0, np.float32)
    old_lf = np.zeros((0, 35), np.float16)
    if path.exists():
        with np.load(path) as f:
            if "low" in f:
                old_ids, old_h, old_std, old_lf = f["ids"], f["hash"], f["std"], f["low"]
    new = np.setdiff1d(ids, old_ids)
    if len(new):
        greys = np.empty((len(new), 32, 32), np.float32)
        stds = np.empty(len(new), np.float32)
        done = 0
        for s in range(0, len(new), 2048):
            paths = working_copy_paths(ctx, new[s:s + 2048])
            with ThreadPoolExecutor(4) as ex:
                for i, (g, sd) in enumerate(ex.map(_grey, paths)):
                    greys[s + i], stds[s + i] = g, sd
            done += len(paths)
            progress(0.5 * done / len(new), f"hashing images: {done:,} of {len(new):,}")
        all_ids = np.concatenate([old_ids, new])
        order = np.argsort(all_ids, kind="stable")
        old_ids = all_ids[order]
        old_h = np.concatenate([old_h, phash(greys)])[order]
        old_std = np.concatenate([old_std, stds])[order]
        old_lf = np.concatenate([old_lf, low_frequencies(greys).astype(np.float16)])[order]
        with atomic_file(path, ".npz") as fh:
            np.savez(fh, ids=old_ids, hash=old_h, std=old_std, low=old_lf)
    pos = np.searchsorted(old_ids, ids)
    return old_h[pos], old_std[pos], old_lf[pos]


def _refresh(ctx: JobContext, pool: Pool, progress: Callable[[float, str], None]) -> dict[str, Any]:
    from ml.data_check import (
        BLANK_STD,
        HASH_THRESHOLD,
        LOW_FREQ_THRESHOLD,
        MAX_HAMMING,
        THRESHOLD,
        atypical,
        duplicate_groups,
        knn,
    )

    assert ctx.current_embedding is not None
    t0 = time.perf_counter()
    ids = pool.ids
    # A text project has no pixels: its near-duplicates are by the embedding alone, and no document is
    # blank (the import refuses empty ones). Reading its samples as images failed the check for text.
    image = ctx.kind != "text"
    h, std, low = hashes(ctx, ids, progress) if image else (None, np.full(len(ids), np.inf, np.float32), None)
    hash_s = time.perf_counter() - t0
    idx, sim = knn(pool.X, progress=lambda f, msg: progress(0.5 + 0.45 * f, msg))
    blank = std < BLANK_STD
    groups = duplicate_groups(idx, sim, THRESHOLD, X=pool.X, hashes=h,
                              low_freq=low.astype(np.float32) if low is not None else None, blank=blank)
    score = atypical(sim)
    top = np.argsort(-score, kind="stable")[:OUTLIERS]
    outliers = [{"sample_id": int(ids[r]), "score": round(1.0 - float(std[r]) / BLANK_STD, 4), "reason": "blank"}
                for r in np.flatnonzero(blank)[np.argsort(std[blank], kind="stable")][:OUTLIERS]]
    outliers += [{"sample_id": int(ids[r]), "score": round(float(score[r]), 4), "reason": "atypical"} for r in top]
    items = [{"sample_ids": [int(ids[r]) for r in m], "similarity": round(float(s), 4)}
             for m, s in zip(groups.members[:GROUPS], groups.similarity[:GROUPS], strict=False)]
    metrics = {"seconds": round(time.perf_counter() - t0, 3), "hash_seconds": round(hash_s, 3),
               "groups": len(groups.members), "in_groups": int((groups.group_of >= 0).sum()),
               "blank": int(blank.sum()), "threshold": THRESHOLD, "hash_threshold": HASH_THRESHOLD,
               "max_hamming": MAX_HAMMING, "low_freq_threshold": LOW_FREQ_THRESHOLD, "blank_std": BLANK_STD}
    with session_scope(ctx.db_url) as s:
        # Every group, not only those listed: a copy on the other side of the audit sample leaks however
        # small its group.
        metrics["audit_moved"] = repo.keep_groups_on_one_side(s, ctx.project_id, [ids[m] for m in groups.members])
        repo.store(s, project_id=ctx.project_id, embedding_version_id=ctx.current_embedding.id,
                   samples=int(len(ids)), groups=items, outliers=outliers, metrics=metrics)
    return {"duplicate_groups": len(groups.members), "blank": int(blank.sum()), "audit_moved": metrics["audit_moved"]}
