"""Pretraining: a new backbone by self-supervision on the project's images, then everything is
re-embedded under it; the project switches to both only when all of it succeeded."""

from __future__ import annotations

import time
from pathlib import Path

from app.db import session_scope
from app.models import BackboneVersion, EmbeddingVersion, Project
from workers.jobs.context import load_context, load_samples
from workers.jobs.embed import embed_paths
from workers.jobs.progress import Progress


def run(job_id: int, progress: Progress) -> dict:
    from ml.images import choose_input, load_arrays, load_image
    from ml.pretrain import pretrain
    from workers.jobs.embed import write_version
    from workers.jobs.scheduling import queue_train

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
    step = max(1, len(paths) // 200)
    size, channels = choose_input([load_image(p) for p in paths[::step]])
    images = load_arrays(paths, size, channels)
    t0 = time.perf_counter()
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    ckpt_path = ctx.media / ckpt_key
    ckpt_path.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        checkpoint = pretrain(
            images, method=method, budget_seconds=None if epochs else budget, epochs=epochs, seed=seed,
            progress=lambda f, msg: progress(0.02 + 0.78 * f, f"pretraining ({method}): {msg}"),
            checkpoint_path=str(ckpt_path), resume=bool(ctx.params.get("resume", True)),
        )
        checkpoint.without_training_state().save(str(ckpt_path))
        written.append(ckpt_path)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        vectors = embed_paths(ctx, paths, ckpt_key, lambda f, msg="": progress(0.8 + 0.15 * f, f"embedding: {msg}"))
        embed_s = time.perf_counter() - t1
        cfg = checkpoint.config
        with session_scope(ctx.db_url) as s:
            bv = BackboneVersion(
                project_id=ctx.project_id, job_id=job_id, method=method, backbone=str(cfg.get("backbone")),
                params={"budget_seconds": budget, "epochs": epochs, "seed": seed, "image_size": size,
                        "channels": channels},
                metrics={"train_seconds": round(train_s, 2), "embed_seconds": round(embed_s, 2),
                         "images": len(paths), **{k: v for k, v in (checkpoint.state or {}).items()
                                                  if isinstance(v, int | float) and k != "done"}},
                checkpoint_key=ckpt_key,
            )
            s.add(bv)
            s.flush()
            bv_id = bv.id
        ctx.job_id = job_id
        ev_id = write_version(ctx, samples.ids, vectors, bv_id, {"seconds": round(embed_s, 3)})
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        assert project is not None and s.get(EmbeddingVersion, ev_id) is not None
        project.current_backbone_version_id = bv_id
        project.current_embedding_version_id = ev_id
        queue_train(s, project, reason="new backbone")
    # Samples imported while this ran are embedded by a follow-up embed job (scheduled by the import).
    return {"backbone_version": bv_id, "embedding_version": ev_id, "train_seconds": round(train_s, 2),
            "images": len(paths)}
