"""After a text project's train job, when its embedding holds the project's encoder (issue 19 item 4): the
words that drove each suggestion, by occlusion (``ml.occlusion``), for the documents the queue serves next,
stored beside the version (``app.explanation_store``) for the label view's highlighting.

Why here and not in ``GET /samples/{sid}/explanation``: the API never loads torch, and the fitted model lives
only in the train job (``RoundResult.model``), so the words are found once per version for the
``OCCLUDED_DOCS`` unlabelled documents of highest priority (what the label view shows until the next
version) and the endpoint reads them; any other document keeps the n-gram weights (``explain_terms``).

Each document is re-embedded as the version's embedding was made: the encoder's features of the document
without the word (the version's layer and pooling) beside the document's own TF-IDF row, held as it is (the
TF-IDF and SVD fitted on the pool are not kept, and that view's words are what the n-gram weights already
read exactly: ``ml.ngram_weights``). So a word's fall is what the encoder reads in it, scored by the model
itself, not by a linear reading of it.

Cost: at most ``OCCLUDED_DOCS`` x (``ml.occlusion.MAX_WORDS`` + 1) short documents through the encoder and
the model: 3.3 CPU-s for 100 AG News documents on one thread (``bench/text_explain.py --encoder``,
docs/benchmarks.md), about what the n-gram step beside it costs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from app import explanation_store
from app.db import session_scope
from app.repos import embeddings as embeddings_repo
from app.repos import texts as texts_repo
from workers.jobs.context import JobContext

if TYPE_CHECKING:
    from ml.estimators.base import LoupeClassifier
    from ml.fit import Pool

OCCLUDED_DOCS = 100
ENCODER_KIND = "text_encoder"  # workers/jobs/text_embed.py: TF-IDF and the encoder side by side
_WHOLE = 10**7  # characters: more than any document may have


def refresh(ctx: JobContext, pool: Pool, model: LoupeClassifier | None, proba: np.ndarray | None,
            priority: np.ndarray, model_version_id: int) -> int | None:
    """The number of documents explained; None when there is nothing to do (an image project, no model, an
    embedding without the encoder)."""
    emb = ctx.current_embedding
    if ctx.kind != "text" or model is None or proba is None or emb is None or emb.kind != ENCODER_KIND:
        return None
    from ml.checkpoint import Checkpoint
    from ml.occlusion import occlusion
    from ml.text_pretrain import load_text_encoder, with_sparse_row

    rows = np.flatnonzero(~pool.labelled & ~pool.audit)  # audit items hide their suggestion and its words
    rows = rows[np.argsort(-priority[rows], kind="stable")[:OCCLUDED_DOCS]]
    ids = [int(i) for i in pool.ids[rows]]
    with session_scope(ctx.db_url) as s:
        ckpt_key = embeddings_repo.checkpoint_key(s, emb.backbone_version_id)
        docs = texts_repo.heads(s, ids, _WHOLE)
    if not ckpt_key:
        return None
    encoder, tok = load_text_encoder(Checkpoint.load(str(ctx.media / ckpt_key)))
    blocks = (emb.metrics or {}).get("blocks")
    pooling = (emb.metrics or {}).get("pooling", "mean")
    found: dict[int, explanation_store.Occluded] = {}
    for row, sid in zip(rows, ids, strict=True):
        if sid not in docs:
            continue  # deleted meanwhile
        embed = with_sparse_row(encoder, tok, emb.layer or "concat:3", pooling,
                                np.asarray(pool.X[row, : blocks[0]]) if blocks else None)
        label = int(np.argmax(proba[row]))
        terms = occlusion(docs[sid], embed, lambda X: model.predict_proba(X.astype(np.float32)), label)
        found[sid] = (ctx.classes[label], [(t.word, float(f"{t.fall:.6g}"), t.spans) for t in terms])
    explanation_store.write_occlusion(ctx.media, ctx.project_id, model_version_id, found)
    return len(found)
