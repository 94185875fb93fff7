"""One chunk of a text project's pretraining (issue 19), as the pretrain job runs it for a text project
(``workers.jobs.pretrain``, which plans the chunk and queues the next one as for images): a WordPiece
tokenizer and a small transformer encoder trained by a language model on the project's documents
(``ml.text_pretrain``: BERT's masked LM by default), resuming the run's checkpoint; then every document
embedded (``workers.jobs.text_embed.embed_texts``: TF-IDF and the encoder side by side), the chunk's encoder
recorded as a backbone version, and the project switched to it when it is measurably better on the
project's own labels (``workers.jobs.monitor.judge``; the first encoder replaces TF-IDF alone while too
few labels say otherwise)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from app.repos import texts as texts_repo
from workers.jobs.backbones import switch_backbone
from workers.jobs.context import JobContext, load_samples
from workers.jobs.monitor import judge
from workers.jobs.text_embed import embed_texts, write_text_version

if TYPE_CHECKING:
    from ml.checkpoint import Checkpoint
    from workers.jobs.pretrain import Chunk


def text_method(ctx: JobContext) -> str:
    """The run's language model: the job's ``method`` when it is a text one, else BERT's masked LM (the
    project's ``ssl_method`` names an image method)."""
    from ml.ssl.mlm import TEXT_METHODS
    from ml.text_pretrain import DEFAULT_TEXT_METHOD

    method = ctx.params.get("method")
    return method if method in TEXT_METHODS else DEFAULT_TEXT_METHOD


def documents(ctx: JobContext) -> tuple[np.ndarray, list[str]]:
    with session_scope(ctx.db_url) as s:
        ids, texts = texts_repo.project_texts(s, ctx.project_id)
    if len(ids) < 2:
        raise ValueError("the project needs at least 2 documents to pretrain on")
    return np.asarray(ids, dtype=np.int64), texts


def train_chunk(ctx: JobContext, chunk: Chunk, texts: list[str], report: Callable[[float, str], None]) -> Checkpoint:
    from ml.text_pretrain import pretrain_text

    return pretrain_text(texts, method=chunk.method, run=chunk.run(ctx, report))


def record(ctx: JobContext, chunk: Chunk, ids: np.ndarray, texts: list[str], ckpt_key: str, metrics: dict,
           progress: Callable[[float, str], None]) -> tuple[int, int, dict, bool]:
    """Embed the documents under the chunk's encoder, judge, record both versions and switch when the
    verdict says so: (backbone version, embedding version, verdict, switched). On a failure before the
    rows are written the checkpoint is removed."""
    try:
        t0 = time.perf_counter()
        vectors, emb_metrics = embed_texts(ctx, texts, ckpt_key, progress)
        embed_s = time.perf_counter() - t0
        samples = load_samples(ctx)
        if not np.array_equal(samples.ids, ids):  # documents imported meanwhile: the next embed job has them
            keep = np.isin(ids, samples.ids)
            ids, vectors = ids[keep], vectors[keep]
            samples = samples if len(samples.ids) == len(ids) else _only(samples, ids)
        verdict = judge(ctx, samples, vectors, chunk.run_key, float(ctx.params.get("min_gain", 0.0)))
        with session_scope(ctx.db_url) as s:
            bv_id = embeddings_repo.add_backbone_version(
                s, project_id=ctx.project_id, job_id=ctx.job_id, method=chunk.method, backbone="text_encoder",
                params={"budget_seconds": chunk.total_s, "chunk": chunk.number, "chunk_seconds": chunk.chunk_s,
                        "run": chunk.run_key, "epochs": chunk.epochs, "seed": chunk.seed, "budget_clock": chunk.clock},
                checkpoint_key=ckpt_key, metrics={**metrics, "switch": verdict, "embed_seconds": round(embed_s, 2),
                                                  "documents": len(ids)})
        ev_id = write_text_version(ctx, ids, vectors, bv_id, emb_metrics, seconds=embed_s)
    except BaseException:
        (ctx.media / ckpt_key).unlink(missing_ok=True)
        raise
    switched = bool(verdict["switch"]) and switch_backbone(ctx, bv_id, ev_id, reason="better text encoder")
    return bv_id, ev_id, verdict, switched


def _only(samples, ids: np.ndarray):
    from workers.jobs.context import SampleTable

    rows = np.flatnonzero(np.isin(samples.ids, ids))
    return SampleTable(ids=samples.ids[rows], storage_keys=[samples.storage_keys[i] for i in rows],
                       labels=[samples.labels[i] for i in rows], is_audit=samples.is_audit[rows])
