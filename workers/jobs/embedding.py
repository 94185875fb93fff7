"""How jobs embed samples (the backbone's embedding, or downsampled pixels before there is one) and
record an embedding version: the array file first, then its row.

The embed job (``workers.jobs.embed``) and the jobs that make a backbone (``workers.jobs.backbones``)
both use it; it imports neither.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from app import embedding_store
from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from workers.jobs.context import JobContext
from workers.jobs.working_set import load_working_set

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
    if backbone_version_id:
        with session_scope(ctx.db_url) as s:
            key = embeddings_repo.checkpoint_key(s, backbone_version_id)
        # The blocks side by side in the vectors: the train job splits co-training's views and weighs a
        # weighted:k layer's blocks by them.
        metrics = {**metrics, "blocks": list(blocks_of(str(ctx.media / key), ctx.settings["embedding_layer"]))} if key \
            else metrics
    with session_scope(ctx.db_url) as s:
        return embeddings_repo.add_embedding_version(
            s, project_id=ctx.project_id, backbone_version_id=backbone_version_id, job_id=ctx.job_id,
            kind="backbone" if backbone_version_id else "pixels",
            layer=ctx.settings["embedding_layer"] if backbone_version_id else "pixels", dim=int(vectors.shape[1]),
            dtype=str(vectors.dtype), count=len(ids), file_key=file_key, ids_key=ids_key, metrics=metrics)


@lru_cache(maxsize=8)
def blocks_of(checkpoint_path: str, layer: str) -> tuple[int, ...]:
    """Widths of the blocks a checkpoint's embedding of ``layer`` lays side by side (as
    ``embed_working_set`` gives the layer: a one-block registered backbone gives what it has)."""
    from ml.embedding import block_widths, layer_for, load_backbone

    model = load_backbone(checkpoint_path)
    return tuple(block_widths(model, layer_for(layer, len(model.blocks))))


def merge_rows(old_ids: np.ndarray, old_vectors: np.ndarray | None, new_ids: np.ndarray,
               new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A version's rows (ids ascending): the rows kept from the version before and the new ones."""
    ids = np.concatenate([old_ids, new_ids])
    vectors = new if old_vectors is None else np.concatenate([np.asarray(old_vectors), new.astype(old_vectors.dtype)])
    order = np.argsort(ids, kind="stable")
    return ids[order], vectors[order]
