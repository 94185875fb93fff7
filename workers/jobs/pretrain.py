"""Pretraining in the background, in chunks: each pretrain job trains one chunk of a run (resuming the
run's checkpoint), embeds everything under the chunk's backbone, switches the project to it only if it
is measurably better on the project's own labels (``workers.jobs.monitor``), and queues the next chunk
while budget is left. Between chunks the long-jobs worker takes other projects' chunks in turn, and
short jobs (embed, train) never wait for a chunk: they have their own worker (docs/architecture.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from workers.jobs.backbones import input_for, record_backbone, switch_backbone
from workers.jobs.context import JobContext, SampleTable, load_context, load_samples
from workers.jobs.monitor import judge
from workers.jobs.progress import Progress
from workers.jobs.registered import initial_backbone
from workers.jobs.working_set import load_working_set, working_copy_paths

# The first chunk of a run is at most this long (budget seconds), so the first backbone, and the
# queue it improves, come early; later chunks are the project's ``pretrain_budget_s``.
FIRST_CHUNK_S = 120.0

if TYPE_CHECKING:
    from ml.checkpoint import Checkpoint
    from ml.run import Run


@dataclass(frozen=True)
class Chunk:
    """What one pretrain job of a run trains: the run's settings and this chunk's share of its budget."""

    method: str
    total_s: float  # the run's budget
    epochs: int | None  # a fixed number of epochs instead of a budget (tests, benchmarks)
    seed: int
    number: int
    run_key: str  # the run's checkpoint, which every chunk resumes
    done_s: float  # trained by the chunks before this one
    chunk_s: float  # this chunk's budget
    clock: str  # "wall" on a GPU, "cpu" seconds on a CPU

    def run(self, ctx: JobContext, progress: Callable[[float, str], None]) -> Run:
        """How ``ml`` trains this chunk (an image backbone's or a text encoder's alike): the run's budget
        on its clock, resumed from the run's checkpoint, pausing after this chunk's share."""
        from ml.run import Run

        return Run(budget_seconds=None if self.epochs else self.total_s, epochs=self.epochs, seed=self.seed,
                   progress=progress, checkpoint_path=str(ctx.media / self.run_key),
                   resume=bool(ctx.params.get("resume", True)), budget_clock=self.clock,
                   stop_after_seconds=None if self.epochs else self.chunk_s)


def plan_chunk(ctx: JobContext, job_id: int, cuda: bool) -> Chunk:
    """The chunk this job trains, from its params (a later chunk carries the run's), the project's
    settings and the run's checkpoint (how much it has trained)."""
    from ml.training import Checkpoint

    params, cfg = ctx.params, ctx.settings
    total = float(params.get("budget_seconds") or cfg["pretrain_total_budget_s"])
    # One checkpoint per run, with the optimiser state, which every chunk of the run resumes; each
    # chunk's backbone is saved beside it (without training state) for its backbone version.
    run_key = params.get("run") or f"checkpoints/p{ctx.project_id}/run{job_id}.pt"
    run_path = ctx.media / run_key
    run_path.parent.mkdir(parents=True, exist_ok=True)
    done_s = float(Checkpoint.load(str(run_path)).state.get("elapsed_s", 0.0)) if run_path.exists() else 0.0
    chunk_s = float(params.get("chunk_seconds") or cfg["pretrain_budget_s"])
    chunk_s = min(chunk_s, FIRST_CHUNK_S) if done_s == 0 else chunk_s
    # A GPU's time is the budget where there is one; on a CPU, CPU seconds (per thread), so that a
    # busy machine (the API, short jobs) slows the chunk down instead of shrinking it.
    return Chunk(method=params.get("method") or cfg["ssl_method"], total_s=total, epochs=params.get("epochs"),
                 seed=int(params.get("seed", 0)), number=int(params.get("chunk", 1)), run_key=run_key,
                 done_s=done_s, chunk_s=max(0.0, min(chunk_s, total - done_s)), clock="wall" if cuda else "cpu")


def run(job_id: int, progress: Progress) -> dict:
    import torch

    ctx = load_context(job_id)
    if ctx.kind == "text":  # documents: a language model, not image self-supervision (issue 19)
        return _run_text(ctx, job_id, progress, cuda=torch.cuda.is_available())
    samples = load_samples(ctx)
    if len(samples.ids) < 2:
        raise ValueError("the project needs at least 2 images to pretrain on")
    chunk = plan_chunk(ctx, job_id, cuda=torch.cuda.is_available())
    paths = working_copy_paths(ctx, samples.ids)  # never the originals (made here where missing)
    progress(0.0, f"reading {len(paths)} images", force=True)
    start = initial_backbone(ctx)  # a registered backbone to continue from, keeping its input contract
    size, channels = ((start.config["image_size"], start.config["in_channels"]) if start is not None
                      else input_for(paths, ctx.settings.get("input_size")))
    # (N, S, S, C) memory-mapped, S = 2 x size: pretrain crops or resizes it to ``size``.
    images = load_working_set(ctx, size, channels, samples.ids, progress=lambda f, msg: progress(0.02 * f, msg))
    embed_guess_s = float(ctx.params.get("embed_seconds") or len(paths) / 200.0)
    t0 = time.perf_counter()
    checkpoint = _train(ctx, chunk, images, size, channels, start,
                        _chunk_reporter(progress, chunk.method, chunk.total_s, chunk.done_s, chunk.chunk_s,
                                        embed_guess_s))
    train_s = time.perf_counter() - t0
    state = checkpoint.state or {}
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    checkpoint.without_training_state().save(str(ctx.media / ckpt_key))
    t1 = time.perf_counter()
    bv_id, ev_id, verdict = _record(
        ctx, samples, paths, ckpt_key, chunk, backbone=str(checkpoint.config.get("backbone")),
        params={"image_size": size, "channels": channels}, continues_in_use=start is not None,
        metrics={"train_seconds": round(train_s, 2), **{k: v for k, v in state.items()
                                                        if isinstance(v, int | float) and k != "done"}},
        progress=lambda f, msg: progress(0.8 + 0.15 * f, msg, eta_s=(1 - f) * embed_guess_s))
    embed_s = time.perf_counter() - t1
    switched = verdict["switch"] and switch_backbone(ctx, bv_id, ev_id, reason="better backbone")
    next_job = _next_chunk(ctx, chunk, state, embed_s)
    # Samples imported while this ran are embedded by a follow-up embed job (scheduled by the import).
    return {"backbone_version": bv_id, "embedding_version": ev_id, "switched": bool(switched),
            "verdict": verdict["reason"], "train_seconds": round(train_s, 2), "images": len(paths),
            "chunk": chunk.number, "steps": state.get("step"), "trained_s": round(float(state.get("elapsed_s", 0)), 1),
            "budget_s": chunk.total_s, "next_chunk_job": next_job, "threads": torch.get_num_threads()}


def _run_text(ctx: JobContext, job_id: int, progress: Progress, cuda: bool) -> dict:
    """A text project's chunk: its encoder trained by a language model on the documents, recorded, judged
    (``workers.jobs.text_pretrain``); the run's next chunk queued as for images."""
    from dataclasses import replace

    from workers.jobs import text_pretrain

    ids, texts = text_pretrain.documents(ctx)
    chunk = replace(plan_chunk(ctx, job_id, cuda=cuda), method=text_pretrain.text_method(ctx))
    embed_guess_s = float(ctx.params.get("embed_seconds") or len(texts) / 500.0)
    t0 = time.perf_counter()
    checkpoint = text_pretrain.train_chunk(ctx, chunk, texts, _chunk_reporter(
        progress, chunk.method, chunk.total_s, chunk.done_s, chunk.chunk_s, embed_guess_s))
    train_s, state = time.perf_counter() - t0, checkpoint.state or {}
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    checkpoint.without_training_state().save(str(ctx.media / ckpt_key))
    t1 = time.perf_counter()
    metrics = {"train_seconds": round(train_s, 2), **{k: v for k, v in state.items()
                                                      if isinstance(v, int | float) and k != "done"}}
    bv_id, ev_id, verdict, switched = text_pretrain.record(
        ctx, chunk, ids, texts, ckpt_key, metrics,
        progress=lambda f, msg: progress(0.8 + 0.15 * f, msg, eta_s=(1 - f) * embed_guess_s))
    next_job = _next_chunk(ctx, chunk, state, time.perf_counter() - t1)
    return {"backbone_version": bv_id, "embedding_version": ev_id, "switched": switched, "verdict": verdict["reason"],
            "method": chunk.method, "train_seconds": round(train_s, 2), "documents": len(texts), "chunk": chunk.number,
            "steps": state.get("step"), "trained_s": round(float(state.get("elapsed_s", 0)), 1),
            "budget_s": chunk.total_s, "next_chunk_job": next_job}


def _train(ctx: JobContext, chunk: Chunk, images: np.ndarray, size: int, channels: int, start: Checkpoint | None,
           report: Callable[[float, str], None]) -> Checkpoint:
    from ml.pretrain import pretrain

    return pretrain(images, method=chunk.method, run=chunk.run(ctx, report), image_size=size, channels=channels,
                    initial_backbone=start)


def _record(ctx: JobContext, samples: SampleTable, paths: list[str], ckpt_key: str, chunk: Chunk, *, backbone: str,
            params: dict, metrics: dict, continues_in_use: bool,
            progress: Callable[[float, str], None]) -> tuple[int, int, dict]:
    """Embed every sample under the chunk's backbone, judge it against the one in use, and record both
    versions (the verdict in the backbone version's metrics): (backbone version, embedding version, verdict)."""
    verdicts: list[dict] = []

    def judged(vectors: np.ndarray) -> dict:
        verdicts.append(judge(ctx, samples, vectors, chunk.run_key, float(ctx.params.get("min_gain", 0.0)),
                              continues_in_use=continues_in_use))
        return {"switch": verdicts[-1]}

    bv_id, ev_id = record_backbone(
        ctx, samples.ids, paths, ckpt_key, method=chunk.method, backbone=backbone,
        params={"budget_seconds": chunk.total_s, "chunk": chunk.number, "chunk_seconds": chunk.chunk_s,
                "run": chunk.run_key, "epochs": chunk.epochs, "seed": chunk.seed, **params,
                "input_size_from": "project setting" if ctx.settings.get("input_size") else "automatic",
                "budget_clock": chunk.clock},
        metrics=metrics, progress=progress, judge=judged)
    return bv_id, ev_id, verdicts[0]


def _next_chunk(ctx: JobContext, chunk: Chunk, state: dict, embed_s: float) -> int | None:
    """Queue the run's next chunk while budget is left (a rest under a tenth of a chunk is not worth
    embedding every sample again for)."""
    if chunk.epochs or state.get("done"):
        left = 0.0
    else:
        left = max(0.0, chunk.total_s - float(state.get("elapsed_s", chunk.total_s)))
    worth = left > 0.1 * float(ctx.params.get("chunk_seconds") or ctx.settings["pretrain_budget_s"])
    if not worth:
        return None
    return _queue_next_chunk(ctx, chunk.run_key, chunk.number, left, embed_s, 1 - left / chunk.total_s)


def _chunk_reporter(progress: Progress, method: str, total: float, done_s: float, chunk_s: float,
                    embed_s: float) -> Callable[[float, str], None]:
    """The training's progress (a fraction of the whole run) as this job's: the chunk's fraction, the
    time until its backbone is checked (the rest of the chunk at the pace seen so far, then the
    embedding), and the run's overall fraction for the status line."""
    started = time.perf_counter()

    def report(fraction: float, msg: str) -> None:
        trained = fraction * total - done_s  # budget seconds of this chunk so far
        part = min(1.0, trained / chunk_s) if chunk_s > 0 else 1.0
        pace = (time.perf_counter() - started) / trained if trained > 1.0 else 1.0  # wall s per budget s
        progress(0.02 + 0.78 * part, f"pretraining ({method}): {msg}",
                 eta_s=max(0.0, chunk_s - trained) * pace + embed_s, figures={"run_fraction": round(fraction, 4)})

    return report


def _queue_next_chunk(ctx: JobContext, run_key: str, chunk_no: int, left_s: float, embed_s: float,
                      run_fraction: float) -> int | None:
    """The run's next chunk, at the back of the long jobs' queue (other projects' chunks go first)."""
    from app.db import session_scope
    from app.models import Project
    from workers.jobs.scheduling import queue_pretrain_chunk

    carried = {k: ctx.params[k] for k in ("method", "seed", "budget_seconds", "chunk_seconds", "min_gain")
               if k in ctx.params}
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        if project is None:
            return None
        return queue_pretrain_chunk(s, project, {
            **carried, "run": run_key, "chunk": chunk_no + 1, "embed_seconds": round(embed_s, 1),
            "run_fraction": round(run_fraction, 4), "reason": f"pretraining goes on ({left_s:.0f} s of budget left)"})
