"""Pretraining in the background, in chunks: each pretrain job trains one chunk of a run (resuming the
run's checkpoint), embeds everything under the chunk's backbone, switches the project to it only if it
is measurably better on the project's own labels (``workers.jobs.monitor``), and queues the next chunk
while budget is left. Between chunks the long-jobs worker takes other projects' chunks in turn, and
short jobs (embed, train) never wait for a chunk: they have their own worker (docs/architecture.md)."""

from __future__ import annotations

import time

from workers.jobs.backbones import input_for, record_backbone, switch_backbone
from workers.jobs.context import load_context, load_samples
from workers.jobs.monitor import judge
from workers.jobs.progress import Progress
from workers.jobs.registered import initial_backbone
from workers.jobs.working_set import load_working_set, working_copy_paths

# The first chunk of a run is at most this long (budget seconds), so the first backbone, and the
# queue it improves, come early; later chunks are the project's ``pretrain_budget_s``.
FIRST_CHUNK_S = 120.0


def run(job_id: int, progress: Progress) -> dict:
    import torch

    from ml.pretrain import pretrain
    from ml.training import Checkpoint

    ctx = load_context(job_id)
    samples = load_samples(ctx)
    if len(samples.ids) < 2:
        raise ValueError("the project needs at least 2 images to pretrain on")
    method = ctx.params.get("method") or ctx.settings["ssl_method"]
    total = float(ctx.params.get("budget_seconds") or ctx.settings["pretrain_total_budget_s"])
    epochs = ctx.params.get("epochs")
    seed = int(ctx.params.get("seed", 0))
    chunk_no = int(ctx.params.get("chunk", 1))
    paths = working_copy_paths(ctx, samples.ids)  # never the originals (made here where missing)
    # One checkpoint per run, with the optimiser state, which every chunk of the run resumes; each
    # chunk's backbone is saved beside it (without training state) for its backbone version.
    run_key = ctx.params.get("run") or f"checkpoints/p{ctx.project_id}/run{job_id}.pt"
    run_path = ctx.media / run_key
    run_path.parent.mkdir(parents=True, exist_ok=True)
    done_s = float(Checkpoint.load(str(run_path)).state.get("elapsed_s", 0.0)) if run_path.exists() else 0.0
    chunk_s = float(ctx.params.get("chunk_seconds") or ctx.settings["pretrain_budget_s"])
    chunk_s = min(chunk_s, FIRST_CHUNK_S) if done_s == 0 else chunk_s
    chunk_s = max(0.0, min(chunk_s, total - done_s))
    # A GPU's time is the budget where there is one; on a CPU, CPU seconds (per thread), so that a
    # busy machine (the API, short jobs) slows the chunk down instead of shrinking it.
    clock = "wall" if torch.cuda.is_available() else "cpu"

    progress(0.0, f"reading {len(paths)} images", force=True)
    start = initial_backbone(ctx)  # a registered backbone to continue from, keeping its input contract
    size, channels = ((start.config["image_size"], start.config["in_channels"]) if start is not None
                      else input_for(paths, ctx.settings.get("input_size")))
    # (N, S, S, C) memory-mapped, S = 2 x size: pretrain crops or resizes it to ``size``.
    images = load_working_set(ctx, size, channels, samples.ids, progress=lambda f, msg: progress(0.02 * f, msg))

    embed_guess_s = float(ctx.params.get("embed_seconds") or len(paths) / 200.0)
    report = _chunk_reporter(progress, method, total, done_s, chunk_s, embed_guess_s)
    t0 = time.perf_counter()
    checkpoint = pretrain(
        images, image_size=size, channels=channels,
        method=method, budget_seconds=None if epochs else total, epochs=epochs, seed=seed,
        progress=report, checkpoint_path=str(run_path), resume=bool(ctx.params.get("resume", True)),
        budget_clock=clock, stop_after_seconds=None if epochs else chunk_s, initial_backbone=start,
    )
    train_s = time.perf_counter() - t0
    state = checkpoint.state or {}
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    checkpoint.without_training_state().save(str(ctx.media / ckpt_key))
    verdicts: list[dict] = []

    def judged(vectors) -> dict:
        verdicts.append(judge(ctx, samples, vectors, run_key, float(ctx.params.get("min_gain", 0.0)),
                              continues_in_use=start is not None))
        return {"switch": verdicts[-1]}

    t1 = time.perf_counter()
    bv_id, ev_id = record_backbone(
        ctx, samples.ids, paths, ckpt_key, method=method, backbone=str(checkpoint.config.get("backbone")),
        params={"budget_seconds": total, "chunk": chunk_no, "chunk_seconds": chunk_s, "run": run_key,
                "epochs": epochs, "seed": seed, "image_size": size, "channels": channels,
                "input_size_from": "project setting" if ctx.settings.get("input_size") else "automatic",
                "budget_clock": clock},
        metrics={"train_seconds": round(train_s, 2), **{k: v for k, v in state.items()
                                                        if isinstance(v, int | float) and k != "done"}},
        progress=lambda f, msg: progress(0.8 + 0.15 * f, msg, eta_s=(1 - f) * embed_guess_s), judge=judged)
    embed_s = time.perf_counter() - t1
    verdict = verdicts[0]
    switched = verdict["switch"] and switch_backbone(ctx, bv_id, ev_id, reason="better backbone")
    left = 0.0 if epochs or state.get("done") else max(0.0, total - float(state.get("elapsed_s", total)))
    # A rest under a tenth of a chunk is not worth embedding every sample again for.
    worth = left > 0.1 * float(ctx.params.get("chunk_seconds") or ctx.settings["pretrain_budget_s"])
    next_job = _queue_next_chunk(ctx, run_key, chunk_no, left, embed_s, 1 - left / total) if worth else None
    # Samples imported while this ran are embedded by a follow-up embed job (scheduled by the import).
    return {"backbone_version": bv_id, "embedding_version": ev_id, "switched": bool(switched),
            "verdict": verdict["reason"], "train_seconds": round(train_s, 2), "images": len(paths),
            "chunk": chunk_no, "steps": state.get("step"), "trained_s": round(float(state.get("elapsed_s", 0)), 1),
            "budget_s": total, "next_chunk_job": next_job, "threads": torch.get_num_threads()}


def _chunk_reporter(progress: Progress, method: str, total: float, done_s: float, chunk_s: float,
                    embed_s: float):
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


def _queue_next_chunk(ctx, run_key: str, chunk_no: int, left_s: float, embed_s: float,
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
