"""Pretraining: a new backbone by self-supervision on the project's images, then everything is
re-embedded under it; the project switches to both only when all of it succeeded."""

from __future__ import annotations

import time

from workers.jobs.backbones import input_for, record_backbone, switch_backbone
from workers.jobs.context import load_context, load_samples
from workers.jobs.progress import Progress


def run(job_id: int, progress: Progress) -> dict:
    from ml.images import load_arrays
    from ml.pretrain import pretrain

    ctx = load_context(job_id)
    samples = load_samples(ctx)
    if len(samples.ids) < 2:
        raise ValueError("the project needs at least 2 images to pretrain on")
    method = ctx.params.get("method") or ctx.settings["ssl_method"]
    budget = float(ctx.params.get("budget_seconds") or ctx.settings["pretrain_budget_s"])
    epochs = ctx.params.get("epochs")
    seed = int(ctx.params.get("seed", 0))
    paths = [str(ctx.media / k) for k in samples.storage_keys]

    progress(0.0, f"decoding {len(paths)} images", force=True)
    size, channels = input_for(paths)
    images = load_arrays(paths, size, channels)
    t0 = time.perf_counter()
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    ckpt_path = ctx.media / ckpt_key
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    # The checkpoint written during pretraining stays on a failure: the retry resumes from it.
    checkpoint = pretrain(
        images, method=method, budget_seconds=None if epochs else budget, epochs=epochs, seed=seed,
        progress=lambda f, msg: progress(0.02 + 0.78 * f, f"pretraining ({method}): {msg}"),
        checkpoint_path=str(ckpt_path), resume=bool(ctx.params.get("resume", True)),
    )
    checkpoint.without_training_state().save(str(ckpt_path))
    train_s = time.perf_counter() - t0
    bv_id, ev_id = record_backbone(
        ctx, samples.ids, paths, ckpt_key, method=method, backbone=str(checkpoint.config.get("backbone")),
        params={"budget_seconds": budget, "epochs": epochs, "seed": seed, "image_size": size, "channels": channels},
        metrics={"train_seconds": round(train_s, 2), **{k: v for k, v in (checkpoint.state or {}).items()
                                                        if isinstance(v, int | float) and k != "done"}},
        progress=lambda f, msg: progress(0.8 + 0.15 * f, msg))
    switch_backbone(ctx, bv_id, ev_id, reason="new backbone")
    # Samples imported while this ran are embedded by a follow-up embed job (scheduled by the import).
    return {"backbone_version": bv_id, "embedding_version": ev_id, "train_seconds": round(train_s, 2),
            "images": len(paths)}
