"""A registered backbone (app/services/backbones.py) in the jobs: two hooks, each called at one place.

* ``adopt_registered`` (start of the embed job): when the project's setting ``backbone`` names a
  registered backbone and the project's current backbone does not descend from it, every sample is
  embedded under it, it is recorded as a backbone version (``method: registered``) and the project
  switches to it, as after a pretraining (workers/jobs/backbones.py).
* ``initial_backbone`` (pretrain job): with ``backbone_mode: continue`` the pretraining starts from the
  registered weights (or from the project's latest continuation of them) and keeps their input
  contract; in the other modes a registered backbone is not pretrained, and the job says why.

Lineage is in the checkpoint: ``config["registered_backbone"]`` is kept by pretraining and fine-tuning.
"""

from __future__ import annotations

from typing import Any

from app.db import session_scope
from app.models import BackboneVersion, RegisteredBackbone
from app.repos import embeddings as embeddings_repo
from workers.jobs.backbones import record_backbone, switch_backbone
from workers.jobs.context import JobContext, load_samples


def _registered(ctx: JobContext) -> RegisteredBackbone | None:
    bid = ctx.settings.get("backbone")
    if bid is None:
        return None
    with session_scope(ctx.db_url) as s:
        row = embeddings_repo.detached_registered(s, int(bid))
    if row is None:
        raise ValueError(f"the project's backbone {bid} is no longer registered")
    return row


def _current(ctx: JobContext) -> BackboneVersion | None:
    with session_scope(ctx.db_url) as s:
        return embeddings_repo.detached_backbone_version(s, ctx.current_backbone_version_id)


def _current_descends_from(ctx: JobContext, row: RegisteredBackbone):  # a Checkpoint or None
    """The project's current checkpoint if it was made from ``row`` (adopted, continued or fine-tuned)."""
    from ml.training import Checkpoint

    bv = _current(ctx)
    if bv is None:
        return None
    if bv.method not in ("registered",) and bv.params.get("registered_backbone") not in (None, row.id):
        return None
    ckpt = Checkpoint.load(str(ctx.media / bv.checkpoint_key))
    return ckpt if ckpt.config.get("registered_backbone") == row.id else None


def _checkpoint_of(ctx: JobContext, row: RegisteredBackbone):  # ml.training.Checkpoint
    from ml.backbones.external import registered_checkpoint

    return registered_checkpoint(ctx.media / row.file_key, row.format, row.architecture, row.input_size,
                                 (row.details or {}).get("normalization"), registered_id=row.id)


def adopt_registered(ctx: JobContext, progress) -> dict[str, Any] | None:
    """Switch the project to its registered backbone if it is not on it (or a descendant) yet; the
    job's result, or None when there is nothing to adopt (the embed job then goes on as usual)."""
    row = _registered(ctx)
    if row is None or _current_descends_from(ctx, row) is not None:
        return None
    samples = load_samples(ctx)
    if len(samples.ids) == 0:
        raise ValueError("the project has no images yet: import some first")
    progress(0.0, f"loading registered backbone '{row.name}'", force=True)
    ckpt = _checkpoint_of(ctx, row)
    ckpt_key = f"checkpoints/p{ctx.project_id}/job{ctx.job_id}-registered.pt"
    ckpt.save(str(ctx.media / ckpt_key))
    paths = [str(ctx.media / k) for k in samples.storage_keys]
    kind = f"{row.format}:{row.architecture or 'file'}"[:64]
    bv_id, ev_id = record_backbone(
        ctx, samples.ids, paths, ckpt_key, method="registered", backbone=kind,
        params={"registered_backbone": row.id, "name": row.name, "format": row.format,
                "architecture": row.architecture, "image_size": row.input_size, "channels": row.in_channels},
        metrics={}, progress=lambda f, msg: progress(0.05 + 0.9 * f, msg))
    switch_backbone(ctx, bv_id, ev_id, reason=f"registered backbone '{row.name}'")
    return {"embedded": len(paths), "embedding_version": ev_id, "backbone_version": bv_id,
            "registered_backbone": row.id}


def initial_backbone(ctx: JobContext):  # ml.training.Checkpoint or None
    """Where a pretrain job starts: None (a fresh backbone, self-supervision from scratch), or, with
    ``backbone_mode: continue``, the registered backbone (its latest continuation in this project if
    there is one). Raises ValueError saying why a registered backbone in another mode is not pretrained."""
    row = _registered(ctx)
    if row is None:
        return None
    mode = ctx.settings.get("backbone_mode", "frozen")
    if mode != "continue":
        raise ValueError(f"the project uses registered backbone '{row.name}' ({mode}); pretraining would not be "
                         "used: set backbone_mode to 'continue' to pretrain from it, or clear backbone to learn "
                         "one from scratch")
    if row.format == "onnx":
        raise ValueError(f"registered backbone '{row.name}' is an ONNX model: it can only be used frozen")
    return _current_descends_from(ctx, row) or _checkpoint_of(ctx, row)
