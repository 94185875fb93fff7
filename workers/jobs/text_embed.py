"""The embed job of a text project (issue 19): every document's TF-IDF word and character n-grams,
reduced by truncated SVD (``ml.text_features``), written as an embedding version of kind ``tfidf``; once the
project has a pretrained text encoder (the pretrain job's, ``workers.jobs.pretrain``), the TF-IDF view and the
encoder's features side by side (``ml.text_pretrain.two_views``), kind ``text_encoder``, under that backbone.

The encoder's layer is the project's ``embedding_layer`` read for text (``ml.text_encoder``: block 0 the token
embeddings, block i layer i; ``concat:3`` the three layers of the default encoder, ``weighted`` a learned sum),
pooled by the mean over the tokens. The vocabulary, the IDF weights and the SVD are fitted on the whole pool,
so new documents re-embed all of them (a few seconds for 10,000 short documents); with nothing new the
current version stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from app import embedding_store
from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from app.repos import texts as texts_repo
from workers.jobs.context import JobContext
from workers.jobs.progress import Progress
from workers.jobs.scheduling import queue_train

KIND = "tfidf"
ENCODER_KIND = "text_encoder"  # TF-IDF and a pretrained encoder side by side


def run(ctx: JobContext, progress: Progress | Callable[..., None], follow_up_train: bool = True) -> dict:
    with session_scope(ctx.db_url) as s:
        sample_ids, texts = texts_repo.project_texts(s, ctx.project_id)
        ckpt_key = embeddings_repo.checkpoint_key(s, ctx.current_backbone_version_id)
    ids = np.asarray(sample_ids, dtype=np.int64)
    if len(ids) == 0:
        raise ValueError("the project has no documents yet: import some first")
    kind = ENCODER_KIND if ckpt_key else KIND
    cur = ctx.current_embedding
    if cur is not None and cur.kind == kind and cur.count == len(ids) and \
            cur.backbone_version_id == ctx.current_backbone_version_id and \
            (kind == KIND or cur.layer == ctx.settings["embedding_layer"]):
        old_ids, _ = embedding_store.read(ctx.media, cur.file_key, cur.ids_key)
        if np.array_equal(np.asarray(old_ids), ids):
            return {"embedded": 0, "embedding_version": cur.id}
    t0 = time.perf_counter()
    vectors, metrics = embed_texts(ctx, texts, ckpt_key, progress=lambda f, msg: progress(0.9 * f, msg))
    progress(0.92, "writing the embedding file", force=True)
    ev_id = write_text_version(ctx, ids, vectors, ctx.current_backbone_version_id if ckpt_key else None, metrics,
                               seconds=time.perf_counter() - t0)
    with session_scope(ctx.db_url) as s:
        project = embeddings_repo.use_embedding(s, ctx.project_id, ev_id, ctx.current_backbone_version_id)
        if project is not None and follow_up_train:
            queue_train(s, project, reason="new embeddings")
    return {"embedded": len(ids), "embedding_version": ev_id, "kind": kind, **metrics}


def embed_texts(ctx: JobContext, texts: list[str], ckpt_key: str | None,
                progress: Callable[[float, str], None]) -> tuple[np.ndarray, dict]:
    """(N, D) float32 vectors of ``texts``: the TF-IDF view alone, or beside the features of the text encoder
    saved at ``ckpt_key``; and the metrics the version records (its blocks: co-training's two views)."""
    from ml.text_features import DIM, tfidf_embedding

    sparse = tfidf_embedding(texts, dim=DIM, progress=lambda f, msg: progress((0.5 if ckpt_key else 1.0) * f, msg))
    if not ckpt_key:
        return sparse, {}
    from ml.checkpoint import Checkpoint
    from ml.text_pretrain import encoder_embedding, two_views

    layer = ctx.settings["embedding_layer"]
    encoder = encoder_embedding(Checkpoint.load(str(ctx.media / ckpt_key)), texts, layer=layer, pooling="mean",
                                progress=lambda f, msg: progress(0.5 + 0.5 * f, f"encoder: {msg}"))
    vectors, blocks = two_views(sparse, encoder)
    return vectors, {"blocks": list(blocks), "pooling": "mean"}


def write_text_version(ctx: JobContext, ids: np.ndarray, vectors: np.ndarray, backbone_version_id: int | None,
                       metrics: dict, seconds: float) -> int:
    """The file, then the row (a row always points at a complete file); returns the version's id."""
    tag = f"j{ctx.job_id}-{int(time.time() * 1000)}"
    file_key, ids_key = embedding_store.write(ctx.media, ctx.project_id, tag, ids, vectors.astype(np.float16))
    kind = ENCODER_KIND if backbone_version_id else KIND
    metrics = {**metrics, "seconds": round(seconds, 3), "documents_per_s": round(len(ids) / max(seconds, 1e-9), 1)}
    with session_scope(ctx.db_url) as s:
        return embeddings_repo.add_embedding_version(
            s, project_id=ctx.project_id, backbone_version_id=backbone_version_id, job_id=ctx.job_id, kind=kind,
            layer=ctx.settings["embedding_layer"] if backbone_version_id else KIND, dim=int(vectors.shape[1]),
            dtype="float16", count=len(ids), file_key=file_key, ids_key=ids_key, metrics=metrics)
