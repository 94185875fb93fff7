"""What a job that makes a backbone (pretrain, finetune) does once its checkpoint is saved: embed every
sample under it, record the backbone and embedding versions (files first, rows after), and switch the
project to both in one transaction at the very end."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from workers.jobs.context import JobContext
from workers.jobs.embedding import embed_paths, write_version

ANY = object()  # switch_backbone: whatever backbone the project has now


def input_for(paths: list[str], setting: int | None = None) -> tuple[int, int]:
    """Backbone input (size, channels): the size is the project's ``input_size`` setting where an admin
    set one, else chosen from about 200 of the project's images (their working copies do) and this
    worker's device (a GPU takes up to 224 px, a CPU 64-96: ``ml.images.choose_input``); the channels
    always come from the images."""
    import torch

    from ml.images import choose_input, load_image

    step = max(1, len(paths) // 200)
    size, channels = choose_input([load_image(p) for p in paths[::step]],
                                  device="cuda" if torch.cuda.is_available() else "cpu")
    return int(setting or size), channels


def record_backbone(ctx: JobContext, ids: np.ndarray, paths: list[str], ckpt_key: str, *, method: str,
                    backbone: str, params: dict, metrics: dict,
                    progress: Callable[[float, str], None],
                    judge: Callable[[np.ndarray], dict] | None = None) -> tuple[int, int]:
    """Embed ``paths`` (the samples ``ids``) with the checkpoint saved at ``ckpt_key`` and record both
    versions; returns (backbone version id, embedding version id). ``judge``: figures on the new
    vectors, kept in the backbone version's metrics. On any failure the checkpoint is removed and
    nothing points at it."""
    try:
        t0 = time.perf_counter()
        vectors = embed_paths(ctx, paths, ckpt_key, lambda f, msg="": progress(f, f"embedding: {msg}"), ids=ids)
        embed_s = time.perf_counter() - t0
        metrics = {**metrics, **(judge(vectors) if judge else {})}
        with session_scope(ctx.db_url) as s:
            bv_id = embeddings_repo.add_backbone_version(
                s, project_id=ctx.project_id, job_id=ctx.job_id, method=method, backbone=backbone, params=params,
                checkpoint_key=ckpt_key, metrics={**metrics, "embed_seconds": round(embed_s, 2), "images": len(paths)})
        ev_id = write_version(ctx, ids, vectors, bv_id, {"seconds": round(embed_s, 3)})
    except BaseException:
        (ctx.media / ckpt_key).unlink(missing_ok=True)
        raise
    return bv_id, ev_id


def switch_backbone(ctx: JobContext, bv_id: int, ev_id: int, reason: str, replacing: object = ANY) -> bool:
    """Make the new backbone and embedding the project's and queue a train on them; with ``replacing``,
    only if the project still has that backbone. Returns whether it switched."""
    from workers.jobs.scheduling import queue_train

    with session_scope(ctx.db_url) as s:
        project = embeddings_repo.use_backbone(s, ctx.project_id, bv_id, ev_id, only_if_backbone=replacing is not ANY,
                                               replacing=replacing if isinstance(replacing, int) else None)
        if project is None:
            return False
        queue_train(s, project, reason=reason)
    return True
