"""The embed job: turn stored images into one array file per embedding version.

Before a backbone exists the representation is downsampled pixels, so the queue can already rank by
an estimator; a pretrain job then replaces it with the learned backbone's embeddings. How a sample is
embedded is ``workers.jobs.embedding``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from app import embedding_store
from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from workers.jobs import text_embed
from workers.jobs.context import load_context, load_samples
from workers.jobs.embedding import embed_paths, merge_rows, write_version
from workers.jobs.progress import Progress
from workers.jobs.registered import adopt_registered
from workers.jobs.scheduling import queue_train
from workers.jobs.working_set import working_copy_paths


def run(job_id: int, progress: Progress | Callable[..., None], follow_up_train: bool = True) -> dict:
    """Embed the samples the current embedding version lacks (all of them if there is none).

    follow_up_train: queue a train on the new embeddings; a train job that embeds first passes False
    (it trains on them itself; a follow-up would train again on the same labels)."""
    ctx = load_context(job_id)
    if ctx.kind == "text":  # documents: TF-IDF n-grams reduced by SVD (workers/jobs/text_embed.py)
        return text_embed.run(ctx, progress, follow_up_train)
    if (adopted := adopt_registered(ctx, progress)) is not None:  # the project chose a registered backbone
        return adopted
    samples = load_samples(ctx)
    if len(samples.ids) == 0:
        raise ValueError("the project has no images yet: import some first")
    with session_scope(ctx.db_url) as s:
        checkpoint_key = embeddings_repo.checkpoint_key(s, ctx.current_backbone_version_id)
    old_ids, old_vectors = np.empty(0, np.int64), None
    cur = ctx.current_embedding
    # Rows of the current version are reused only if they came from this backbone with this layer choice
    # (a changed embedding_layer re-embeds everything).
    same_layer = cur is not None and (cur.kind == "pixels" or cur.layer == ctx.settings["embedding_layer"])
    if cur is not None and same_layer and (cur.backbone_version_id or None) == ctx.current_backbone_version_id:
        old_ids, old_vectors = embedding_store.read(ctx.media, cur.file_key, cur.ids_key)
    missing = ~np.isin(samples.ids, old_ids)
    if not missing.any():
        return {"embedded": 0, "embedding_version": cur.id if cur else None}
    t0 = time.perf_counter()
    paths = working_copy_paths(ctx, samples.ids[missing])
    report = lambda f, msg="": progress(0.9 * f, msg, figures={"images": len(paths)})  # noqa: E731
    new = embed_paths(ctx, paths, checkpoint_key, report, ids=samples.ids[missing])
    seconds = time.perf_counter() - t0
    ids, vectors = merge_rows(old_ids, old_vectors, samples.ids[missing], new)
    progress(0.92, "writing the embedding file", force=True)
    ev_id = write_version(ctx, ids, vectors, ctx.current_backbone_version_id,
                          {"seconds": round(seconds, 3), "images_per_s": round(len(paths) / max(seconds, 1e-9), 1)})
    with session_scope(ctx.db_url) as s:
        # Another pretrain may have switched the backbone meanwhile; then this version is stale.
        project = embeddings_repo.use_embedding(s, ctx.project_id, ev_id, ctx.current_backbone_version_id)
        if project is not None and follow_up_train:
            queue_train(s, project, reason="new embeddings")
    return {"embedded": len(paths), "embedding_version": ev_id,
            "images_per_s": round(len(paths) / max(seconds, 1e-9), 1)}
