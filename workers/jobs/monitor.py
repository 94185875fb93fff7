"""Whether a pretraining chunk's backbone is measurably better than what the project uses now, on the
project's own labels (``ml.monitor``: leave-one-out nearest-neighbour accuracy while labels are few,
cross-validated probe accuracy once every class has enough). The verdict, with both figures and a
sentence in the expert's words, is stored in the backbone version's metrics (the versions page)."""

from __future__ import annotations

import numpy as np

from app import embedding_store
from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from workers.jobs.context import JobContext, SampleTable

FIGURE_NAMES = {"knn": "nearest-neighbour accuracy", "probe": "cross-validated probe accuracy"}


def judge(ctx: JobContext, samples: SampleTable, vectors: np.ndarray, run_key: str, min_gain: float = 0.0,
          continues_in_use: bool = False) -> dict:
    """The verdict on ``vectors`` (the new embedding, one row per ``samples``) against the project's
    current embedding: ``{"switch": bool, "reason": str, ...figures}``. ``min_gain``: how much the
    figure must improve (0: any improvement, at least one more label right). ``continues_in_use``: the
    run started from the backbone in use (a registered backbone in ``continue`` mode)."""
    from ml.monitor import compare

    cur = ctx.current_embedding
    if cur is None:
        return {"switch": True, "reason": "the project had no embedding yet"}
    cur_ids, cur_vectors = embedding_store.read(ctx.media, cur.file_key, cur.ids_key)
    c = compare(vectors, samples.ids, samples.labels, cur_ids, cur_vectors)
    if c.kind is None or c.new is None or c.current is None:
        return _without_labels(ctx, run_key, c.labels, continues_in_use)
    better = c.new > c.current + min_gain
    reason = (f"{FIGURE_NAMES[c.kind]} on {c.labels} labels: {c.new:.1%} with the new backbone, "
              f"{c.current:.1%} with the one in use: " + ("switched" if better else "kept the one in use"))
    return {"switch": better, "reason": reason, "figure": c.kind, "new": round(c.new, 4),
            "current": round(c.current, 4), "labels": c.labels, "min_gain": min_gain}


def _without_labels(ctx: JobContext, run_key: str, n_labels: int, continues_in_use: bool) -> dict:
    """Too few labels to compare: the first backbone replaces pixels (every benchmark in
    docs/benchmarks.md puts a pretrained backbone ahead of them), and a later chunk of the same run
    replaces its predecessor (the same training, carried on: longer self-supervised training helps in
    every benchmark too), as does a run that continues the backbone in use (the admin asked for that
    adaptation to the project's images); a backbone of another origin (fine-tuned, another run) is kept."""
    few = f"{n_labels} labels are too few to compare (two classes with two labels each are needed)"
    if ctx.current_backbone_version_id is None:
        return {"switch": True, "reason": f"first backbone; {few}", "labels": n_labels}
    if continues_in_use:
        return {"switch": True, "reason": f"the backbone in use, trained further on this project's images; {few}",
                "labels": n_labels}
    with session_scope(ctx.db_url) as s:
        params = embeddings_repo.backbone_params(s, ctx.current_backbone_version_id)
    if params.get("run") == run_key:
        return {"switch": True, "reason": f"the same pretraining, trained longer; {few}", "labels": n_labels}
    return {"switch": False, "reason": f"kept the backbone in use (not from this pretraining); {few}",
            "labels": n_labels}
