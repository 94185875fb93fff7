"""Embedding: turn stored images into one array file per embedding version.

Before a backbone exists the representation is downsampled pixels, so the queue can already rank by
an estimator; a pretrain job then replaces it with the learned backbone's embeddings.
"""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import select

from app import embedding_store
from app.db import session_scope
from app.models import BackboneVersion, EmbeddingVersion, Project
from workers.jobs.context import JobContext, load_context, load_samples
from workers.jobs.progress import Progress
from workers.jobs.working_set import load_working_set, working_copy_paths

PIXEL_SIZE = 16


def embed_paths(ctx: JobContext, paths: list[str], checkpoint_key: str | None, progress,
                ids: np.ndarray | None = None) -> np.ndarray:
    """(N, D) float16, L2-normalised: the backbone's embedding, or pixels without one.

    ``paths`` are the images' working copies (``working_set.working_copy_paths``); with ``ids`` (the
    samples of ``paths``) a backbone reads the project's working set instead of decoding files."""
    if checkpoint_key is None:
        from ml.pixel_baseline import pixel_features

        x = pixel_features(paths, PIXEL_SIZE, progress=lambda f: progress(f, f"reading pixels of {len(paths)} images"))
        x -= x.mean(axis=1, keepdims=True)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-8
        return x.astype(np.float16)
    from ml.embedding import extract_embeddings_from_files
    from ml.training import Checkpoint

    ckpt = Checkpoint.load(str(ctx.media / checkpoint_key))
    layer = ctx.settings["embedding_layer"]
    if ids is not None:
        return embed_working_set(ctx, ckpt, ids, layer, progress)
    return extract_embeddings_from_files(ckpt, paths, layer=layer,
                                         progress=progress, num_workers=None if len(paths) >= 2000 else 0)


def embed_working_set(ctx: JobContext, ckpt, ids: np.ndarray, layer: str, progress) -> np.ndarray:
    """Embed the samples ``ids`` from the working set at the checkpoint's input, a slice at a time (the
    set stays on disk: a million-image project never sits in memory)."""
    from ml.embedding import extract_embeddings, layer_for, load_backbone

    model = load_backbone(ckpt)
    layer = layer_for(layer, len(model.blocks))  # a one-block registered backbone gives what it has
    images = load_working_set(ctx, int(ckpt.config["image_size"]), int(ckpt.config["in_channels"]), ids,
                              progress=lambda f, msg: progress(0.3 * f, msg))
    step = 4096

    def part(i: int) -> np.ndarray:
        done = lambda f, msg: progress(0.3 + 0.7 * min(1.0, (i + f * step) / len(ids)), msg)  # noqa: E731
        return extract_embeddings(model, np.array(images[i:i + step]), layer=layer, progress=done)

    parts = [part(i) for i in range(0, len(ids), step)]
    return np.concatenate(parts) if parts else np.empty((0, 0), np.float16)


def write_version(ctx: JobContext, ids: np.ndarray, vectors: np.ndarray, backbone_version_id: int | None,
                  metrics: dict) -> int:
    """Write the array, then the row, in that order: a row always points at a complete file."""
    tag = f"j{ctx.job_id}-{int(time.time() * 1000)}"
    file_key, ids_key = embedding_store.write(ctx.media, ctx.project_id, tag, ids, vectors)
    with session_scope(ctx.db_url) as s:
        ev = EmbeddingVersion(
            project_id=ctx.project_id, backbone_version_id=backbone_version_id, job_id=ctx.job_id,
            kind="backbone" if backbone_version_id else "pixels",
            layer=ctx.settings["embedding_layer"] if backbone_version_id else "pixels", dim=int(vectors.shape[1]),
            dtype=str(vectors.dtype), count=len(ids), file_key=file_key, ids_key=ids_key, metrics=metrics,
        )
        s.add(ev)
        s.flush()
        return ev.id


def run(job_id: int, progress: Progress, follow_up_train: bool = True) -> dict:
    """Embed the samples the current embedding version lacks (all of them if there is none).

    follow_up_train: queue a train on the new embeddings; a train job that embeds first passes False
    (it trains on them itself; a follow-up would train again on the same labels)."""
    from workers.jobs.scheduling import queue_train

    ctx = load_context(job_id)
    from workers.jobs.registered import adopt_registered  # local: registered imports this module

    if (adopted := adopt_registered(ctx, progress)) is not None:  # the project chose a registered backbone
        return adopted
    samples = load_samples(ctx)
    if len(samples.ids) == 0:
        raise ValueError("the project has no images yet: import some first")
    checkpoint_key = None
    if ctx.current_backbone_version_id is not None:
        with session_scope(ctx.db_url) as s:
            checkpoint_key = s.scalar(
                select(BackboneVersion.checkpoint_key).where(BackboneVersion.id == ctx.current_backbone_version_id))
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
    ids = np.concatenate([old_ids, samples.ids[missing]])
    vectors = new if old_vectors is None else np.concatenate([np.asarray(old_vectors), new.astype(old_vectors.dtype)])
    order = np.argsort(ids, kind="stable")
    progress(0.92, "writing the embedding file", force=True)
    ev_id = write_version(ctx, ids[order], vectors[order], ctx.current_backbone_version_id,
                          {"seconds": round(seconds, 3), "images_per_s": round(len(paths) / max(seconds, 1e-9), 1)})
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        assert project is not None
        # Another pretrain may have switched the backbone meanwhile; then this version is stale.
        if project.current_backbone_version_id == ctx.current_backbone_version_id:
            project.current_embedding_version_id = ev_id
            if follow_up_train:
                queue_train(s, project, reason="new embeddings")
    return {"embedded": len(paths), "embedding_version": ev_id,
            "images_per_s": round(len(paths) / max(seconds, 1e-9), 1)}
