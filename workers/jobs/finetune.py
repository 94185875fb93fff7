"""Fine-tuning: the current backbone is trained further on the labels, everything is re-embedded under
it, and the project switches to both only when all of it succeeded (as after pretraining).

Audit samples stay out of the fine-tuning set: the next train job's accuracy estimate is scored on them,
and features fitted to them would make it optimistic.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from app.db import session_scope
from app.models import BackboneVersion, EmbeddingVersion, Project
from workers.jobs.context import load_context, load_samples
from workers.jobs.embed import embed_paths, write_version
from workers.jobs.progress import Progress

MIN_LABELS = 10


def run(job_id: int, progress: Progress) -> dict:
    import numpy as np

    from ml.finetune import finetune
    from ml.images import choose_input, load_arrays, load_image
    from ml.training import Checkpoint
    from workers.jobs.scheduling import queue_train

    ctx = load_context(job_id)
    samples = load_samples(ctx)
    index = {c: i for i, c in enumerate(ctx.classes)}
    rows = [i for i, (lab, audit) in enumerate(zip(samples.labels, samples.is_audit, strict=True))
            if lab in index and not audit]
    codes = np.array([index[samples.labels[i]] for i in rows], dtype=np.int64)
    if len(rows) < MIN_LABELS or len(np.unique(codes)) < 2:
        raise ValueError(f"fine-tuning needs at least {MIN_LABELS} labels of 2 or more classes outside the "
                         f"audit set; the project has {len(rows)}")
    started_from = ctx.current_backbone_version_id
    base = None
    if started_from is not None:
        with session_scope(ctx.db_url) as s:
            key = s.scalar(select(BackboneVersion.checkpoint_key).where(BackboneVersion.id == started_from))
        base = Checkpoint.load(str(ctx.media / key))
    epochs = int(ctx.params.get("epochs") or 20)
    seed = int(ctx.params.get("seed", 0))
    paths = [str(ctx.media / k) for k in samples.storage_keys]

    progress(0.0, f"decoding {len(rows)} labelled images", force=True)
    if base is not None:
        size, channels = base.config["image_size"], base.config["in_channels"]
    else:
        step = max(1, len(paths) // 200)
        size, channels = choose_input([load_image(p) for p in paths[::step]])
    images = load_arrays([paths[i] for i in rows], size, channels)
    t0 = time.perf_counter()
    checkpoint = finetune(
        images, codes, len(ctx.classes), base, epochs=epochs, seed=seed,
        progress=lambda f, msg: progress(0.02 + 0.58 * f, f"fine-tuning on {len(rows)} labels: {msg}"))
    train_s = time.perf_counter() - t0
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    ckpt_path: Path = ctx.media / ckpt_key
    try:
        checkpoint.save(str(ckpt_path))
        t1 = time.perf_counter()
        vectors = embed_paths(ctx, paths, ckpt_key, lambda f, msg="": progress(0.6 + 0.35 * f, f"embedding: {msg}"))
        embed_s = time.perf_counter() - t1
        cfg = checkpoint.config
        with session_scope(ctx.db_url) as s:
            bv = BackboneVersion(
                project_id=ctx.project_id, job_id=job_id, method="finetune", backbone=str(cfg.get("backbone")),
                params={"epochs": epochs, "seed": seed, "image_size": size, "channels": channels,
                        "labels": len(rows), "from_backbone_version": started_from,
                        "from_method": cfg.get("finetuned_from")},
                metrics={"train_seconds": round(train_s, 2), "embed_seconds": round(embed_s, 2),
                         "images": len(paths), "loss": checkpoint.state["loss"], "steps": checkpoint.state["steps"]},
                checkpoint_key=ckpt_key,
            )
            s.add(bv)
            s.flush()
            bv_id = bv.id
        ev_id = write_version(ctx, samples.ids, vectors, bv_id, {"seconds": round(embed_s, 3)})
    except BaseException:
        ckpt_path.unlink(missing_ok=True)
        raise
    with session_scope(ctx.db_url) as s:
        project = s.get(Project, ctx.project_id)
        assert project is not None and s.get(EmbeddingVersion, ev_id) is not None
        # A pretrain that finished meanwhile chose a newer backbone: this one, fitted from the older, stays
        # a version on record and the project keeps the newer.
        switched = project.current_backbone_version_id == started_from
        if switched:
            project.current_backbone_version_id = bv_id
            project.current_embedding_version_id = ev_id
            queue_train(s, project, reason="fine-tuned backbone")
    return {"backbone_version": bv_id, "embedding_version": ev_id, "labels": len(rows), "switched": switched,
            "train_seconds": round(train_s, 2), "images": len(paths)}
