"""What the words behind a text suggestion cost and say (issue 19): the train job's extra step for a text
project (``ml.ngram_weights.class_ngram_weights``) on a whole pool, and how often the words it marks in a
test document belong to that document's true class's own vocabulary.

    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/text_explain.py --dataset ag_news --labels 100

The embedding is the service's (``ml.text_features.tfidf_embedding``, 256 dimensions); the model a
LogisticRegression(C=10) on ``--labels`` random labelled documents, scored on the whole pool (what the
train job hands over). Reported: seconds of the n-gram step (wall and process CPU), each class's top
words, and for the pool's documents the model suggests rightly, the share whose strongest marked word is
among the top 400 n-grams of no other class (a word of its class, not a shared one).

    nice -n 10 .venv/bin/python bench/text_explain.py --dataset ag_news --labels 100 \
        --encoder bench/out/text_mlm_ag_news_3600s_at900s_seed0.pt --threads 1

``--encoder``: the embedding is a text project's once it has an encoder (TF-IDF beside the encoder's
``concat:3`` features, ``ml.text_pretrain.two_views``) and the model the service's probe (``logistic``),
and the train job's occlusion step (``workers/jobs/explain_occlusion.py``) is timed too: ``--occluded``
(100) unlabelled documents, each word dropped in turn and the document re-embedded, on ``--threads`` torch
threads; reported beside the n-gram step's figures: its seconds (wall and CPU), the same own-class share for
occlusion's strongest word, and how often that word is the n-gram weights' strongest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.explanations import terms_in  # noqa: E402
from ml.ngram_weights import class_ngram_weights  # noqa: E402
from ml.text_features import tfidf_embedding  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "text"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ag_news")
    ap.add_argument("--labels", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", type=Path, default=None, help="a text encoder's checkpoint (bench/text_pretrain.py)")
    ap.add_argument("--occluded", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    rows = [json.loads(x) for x in (DATA / args.dataset / "train.jsonl").open()]
    texts = [r["text"] for r in rows]
    classes = sorted({r["label"] for r in rows})
    y = np.array([classes.index(r["label"]) for r in rows])
    t0 = time.perf_counter()
    Z = tfidf_embedding(texts)
    encoder = None
    if args.encoder is not None:
        import torch

        from ml.checkpoint import Checkpoint
        from ml.text_pretrain import encoder_embedding, load_text_encoder, two_views

        torch.set_num_threads(args.threads)
        ckpt = Checkpoint.load(str(args.encoder))
        lsa = Z
        Z, _ = two_views(lsa, encoder_embedding(ckpt, texts, layer="concat:3", pooling="mean"))
        encoder = load_text_encoder(ckpt)
    embed_s = time.perf_counter() - t0
    pick = np.random.default_rng(args.seed).choice(len(texts), args.labels, replace=False)
    if encoder is None:
        model = LogisticRegression(C=10, max_iter=1000).fit(Z[pick], y[pick])
    else:
        from ml.estimators import create_estimator

        model = create_estimator("logistic", n_classes=len(classes)).fit(Z[pick], y[pick])
    proba = model.predict_proba(Z)
    full = np.zeros((len(texts), len(classes)), np.float32)
    full[:, model.classes_] = proba
    w0, c0 = time.perf_counter(), time.process_time()
    weights = class_ngram_weights(texts, Z, full)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    tops = [{t for t, _ in w} for w in weights]
    own, n = 0, 0
    pred = full.argmax(1)
    for i in np.flatnonzero(pred == y)[:2000]:
        marked = terms_in(texts[i], dict(weights[y[i]]), limit=1)
        if not marked:
            continue
        n += 1
        own += not any(marked[0].term in tops[c] for c in range(len(classes)) if c != y[i])
    occluded = {} if encoder is None else occlusion_step(texts, y, Z, lsa.shape[1], model, full, pick, weights,
                                                          tops, encoder, args)
    print(json.dumps({**occluded,
        "dataset": args.dataset, "documents": len(texts), "labels": args.labels,
        "embed_seconds": round(embed_s, 1), "ngram_step_wall_s": round(wall, 2), "ngram_step_cpu_s": round(cpu, 2),
        "own_class_word_share": round(own / max(n, 1), 3), "explained_documents": n,
        "top_words": {c: [t for t, _ in w[:10]] for c, w in zip(classes, weights, strict=True)},
        "load": os.getloadavg()[0]}, indent=1))


def occlusion_step(texts, y, Z, sparse_width, model, proba, pick, weights, tops, encoder, args) -> dict:
    """The train job's occlusion step on ``args.occluded`` unlabelled documents: its seconds, and what its
    strongest word is (of the document's true class alone, or the n-gram weights' strongest too)."""
    from ml.occlusion import occlusion
    from ml.text_pretrain import with_sparse_row

    rest = np.setdiff1d(np.arange(len(texts)), pick)
    rows = np.random.default_rng(args.seed + 1).choice(rest, args.occluded, replace=False)
    w0, c0 = time.perf_counter(), time.process_time()
    found = {}
    for i in rows:
        embed = with_sparse_row(*encoder, "concat:3", "mean", Z[i, :sparse_width])
        found[int(i)] = occlusion(texts[i], embed, lambda X: model.predict_proba(X.astype(np.float32)),
                                  int(proba[i].argmax()))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    own = same = n = 0
    for i, words in found.items():
        if not words or proba[i].argmax() != y[i]:
            continue
        n += 1
        top = words[0].word
        own += not any(top in tops[c] for c in range(len(tops)) if c != y[i])
        marked = terms_in(texts[i], dict(weights[y[i]]), limit=1)
        same += bool(marked) and marked[0].term == top
    return {"occluded_documents": len(found), "occlusion_wall_s": round(wall, 2), "occlusion_cpu_s": round(cpu, 2),
            "occlusion_threads": args.threads, "occlusion_own_class_word_share": round(own / max(n, 1), 3),
            "occlusion_top_is_ngram_top_share": round(same / max(n, 1), 3), "occlusion_explained_right": n,
            "occlusion_examples": {texts[i][:80]: [(o.word, round(o.fall, 2)) for o in w[:4]]
                                   for i, w in list(found.items())[:3]}}


if __name__ == "__main__":
    main()
