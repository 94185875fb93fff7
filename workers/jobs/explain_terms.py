"""After a text project's train job (issue 19): the n-grams that drive each class's suggestion, from the
new model version's probabilities over the pool (``ml.ngram_weights``), stored beside the version
(``app.explanation_store``) for the label view's highlighting. Nothing for an image project.

The regression needs a fair sample of the pool, not all of it: at most ``MAX_DOCS`` documents (drawn
with the version's id as seed) are read and counted, so the step's cost stays bounded at any pool size
(about 3 s for 1,500 AG News documents at load 6; the TF-IDF fit grows with the documents read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app import explanation_store
from app.db import session_scope
from app.repos import texts as texts_repo
from workers.jobs.context import JobContext

if TYPE_CHECKING:
    from ml.fit import Pool

MAX_DOCS = 20_000
_CHUNK = 5_000  # ids a query (SQLite's bound parameters)
_WHOLE = 10**7  # characters: more than any document may have


def refresh(ctx: JobContext, pool: Pool, proba: np.ndarray | None, model_version_id: int) -> int | None:
    """The number of n-grams stored (over all classes); None when there is nothing to explain."""
    if ctx.kind != "text" or proba is None or len(pool.ids) == 0:
        return None
    from ml.ngram_weights import class_ngram_weights

    rows = np.arange(len(pool.ids))
    if len(rows) > MAX_DOCS:
        rows = np.sort(np.random.default_rng(model_version_id).choice(len(rows), MAX_DOCS, replace=False))
    ids = [int(i) for i in pool.ids[rows]]
    by_id: dict[int, str] = {}
    with session_scope(ctx.db_url) as s:
        for start in range(0, len(ids), _CHUNK):
            by_id.update(texts_repo.heads(s, ids[start:start + _CHUNK], _WHOLE))
    keep = np.array([i in by_id for i in ids], dtype=bool)  # a document deleted meanwhile
    rows = rows[keep]
    docs = [by_id[i] for i, k in zip(ids, keep, strict=True) if k]
    terms = class_ngram_weights(docs, np.asarray(pool.X[rows], dtype=np.float32), np.asarray(proba)[rows])
    explanation_store.write(ctx.media, ctx.project_id, model_version_id, list(ctx.classes), terms)
    return sum(len(t) for t in terms)
