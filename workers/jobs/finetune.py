"""Fine-tuning: the current backbone is trained further on the labels, everything is re-embedded under
it, and the project switches to both only when all of it succeeded (as after pretraining).

Audit samples stay out of the fine-tuning set: the next train job's accuracy estimate is scored on them,
and features fitted to them would make it optimistic.
"""

from __future__ import annotations

import time

from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from workers.jobs.backbones import input_for, record_backbone, switch_backbone
from workers.jobs.context import load_context, load_samples
from workers.jobs.progress import Progress
from workers.jobs.working_set import working_copy_paths

MIN_LABELS = 10


def run(job_id: int, progress: Progress) -> dict:
    import numpy as np

    from ml.finetune import finetune
    from ml.images import load_arrays
    from ml.training import Checkpoint

    ctx = load_context(job_id)
    samples = load_samples(ctx)
    index = {c: i for i, c in enumerate(ctx.classes)}
    picked = [(i, lab) for i, (lab, audit) in enumerate(zip(samples.labels, samples.is_audit, strict=True))
              if lab is not None and lab in index and not audit]
    rows = [i for i, _ in picked]
    codes = np.array([index[lab] for _, lab in picked], dtype=np.int64)
    if len(rows) < MIN_LABELS or len(np.unique(codes)) < 2:
        raise ValueError(f"fine-tuning needs at least {MIN_LABELS} labels of 2 or more classes outside the "
                         f"audit set; the project has {len(rows)}")
    started_from = ctx.current_backbone_version_id
    with session_scope(ctx.db_url) as s:
        key = embeddings_repo.checkpoint_key(s, started_from)
    base = Checkpoint.load(str(ctx.media / key)) if key is not None else None
    epochs = int(ctx.params.get("epochs") or 20)
    seed = int(ctx.params.get("seed", 0))
    paths = working_copy_paths(ctx, samples.ids)  # never the originals (made here where missing)

    progress(0.0, f"decoding {len(rows)} labelled images", force=True)
    if base is not None:
        size, channels = base.config["image_size"], base.config["in_channels"]
    else:
        size, channels = input_for(paths, ctx.settings.get("input_size"))
    images = load_arrays([paths[i] for i in rows], size, channels)
    t0 = time.perf_counter()
    checkpoint = finetune(
        images, codes, len(ctx.classes), base, epochs=epochs, seed=seed,
        progress=lambda f, msg: progress(0.02 + 0.58 * f, f"fine-tuning on {len(rows)} labels: {msg}"))
    train_s = time.perf_counter() - t0
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{job_id}.pt"
    checkpoint.save(str(ctx.media / ckpt_key))
    cfg = checkpoint.config
    bv_id, ev_id = record_backbone(
        ctx, samples.ids, paths, ckpt_key, method="finetune", backbone=str(cfg.get("backbone")),
        params={"epochs": epochs, "seed": seed, "image_size": size, "channels": channels, "labels": len(rows),
                "from_backbone_version": started_from, "from_method": cfg.get("finetuned_from")},
        metrics={"train_seconds": round(train_s, 2), "loss": checkpoint.state["loss"],
                 "steps": checkpoint.state["steps"]},
        progress=lambda f, msg: progress(0.6 + 0.35 * f, msg))
    # A pretrain that finished meanwhile chose a newer backbone: this one, fitted from the older, stays a
    # version on record and the project keeps the newer.
    switched = switch_backbone(ctx, bv_id, ev_id, reason="fine-tuned backbone", replacing=started_from)
    return {"backbone_version": bv_id, "embedding_version": ev_id, "labels": len(rows), "switched": switched,
            "train_seconds": round(train_s, 2), "images": len(paths)}
