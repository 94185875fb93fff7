"""Scoring and selecting from a large pool: the default strategy must stay under 5 s at 1M x 512 x 10.

    python bench/strategy_speed.py                       # 1,000,000 x 512, 10 classes, batch 100
    python bench/strategy_speed.py --n 100000 --strategies mixed,margin,kcenter --json
    python bench/strategy_speed.py --n 100000 --strategies mixed --estimators logistic,label_spreading

Times ``score_all`` (the bulk acquisition score written for every sample) and ``select`` (the batch)
separately and together, best of ``--repeat``. Data are synthetic (clustered Gaussian embeddings, softmax
probabilities of noisy logits): the cost depends on the shapes, not on what the numbers mean.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.strategies import DEFAULT_STRATEGY, create_strategy  # noqa: E402


def synthetic_pool(n: int, dim: int, n_classes: int, labelled: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dim), dtype=np.float32)
    cls = rng.integers(0, n_classes, n)
    emb = np.empty((n, dim), dtype=np.float32)
    proba = np.empty((n, n_classes), dtype=np.float32)
    for s in range(0, n, 65536):  # in blocks, so making the pool needs no second 2 GB copy
        e = slice(s, s + 65536)
        emb[e] = centres[cls[e]] + rng.standard_normal((len(cls[e]), dim), dtype=np.float32)
        logits = rng.standard_normal((len(cls[e]), n_classes), dtype=np.float32) * 2
        logits[np.arange(len(cls[e])), cls[e]] += 3
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba[e] = p / p.sum(axis=1, keepdims=True)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, labelled, replace=False)] = True
    return emb, proba, mask


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--labelled", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--strategies", default=DEFAULT_STRATEGY)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=float, default=5.0, help="seconds the default strategy must stay under")
    ap.add_argument("--estimators", default="", help="also time fit + predict_proba of these estimators")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    emb, proba, labelled = synthetic_pool(args.n, args.dim, args.classes, args.labelled)
    print(f"pool {emb.shape} float32 made in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    exclude = np.zeros(args.n, dtype=bool)
    exclude[::1000] = True  # leased elsewhere
    ok = True
    for name in args.strategies.split(","):
        strategy = create_strategy(name, seed=0)
        best = {"score_all": np.inf, "select": np.inf}
        for _ in range(args.repeat):
            t = time.perf_counter()
            scores = strategy.score_all(emb, proba, labelled, exclude)
            t_score = time.perf_counter() - t
            t = time.perf_counter()
            sel = strategy.select(emb, proba, labelled, args.batch_size, exclude_mask=exclude)
            t_sel = time.perf_counter() - t
            best = {"score_all": min(best["score_all"], t_score), "select": min(best["select"], t_sel)}
        total = best["score_all"] + best["select"]
        assert len(sel) == args.batch_size and scores.shape == (args.n,)
        rec = {"strategy": name, "n": args.n, "dim": args.dim, "classes": args.classes,
               "batch_size": args.batch_size, "score_all_s": round(best["score_all"], 3),
               "select_s": round(best["select"], 3), "total_s": round(total, 3)}
        if name == DEFAULT_STRATEGY:
            rec["limit_s"] = args.limit
            rec["ok"] = bool(total < args.limit)
            ok &= rec["ok"]
        print(json.dumps(rec) if args.json else
              f"{name:>16}: score_all {best['score_all']:.2f}s + select {best['select']:.2f}s = {total:.2f}s")
    for name in filter(None, args.estimators.split(",")):
        rec = time_estimator(name, emb, labelled, args.classes)
        print(json.dumps(rec) if args.json else
              f"{name:>16}: fit {rec['fit_s']:.2f}s + predict_proba {rec['predict_s']:.2f}s on {args.n} rows")
    return 0 if ok else 1


def time_estimator(name: str, emb, labelled, n_classes: int) -> dict:
    """What a retrain costs the worker: fit on the labels, then probabilities for the whole pool."""
    from ml.estimators import create_estimator

    y = np.random.default_rng(1).integers(0, n_classes, len(emb))
    est = create_estimator(name, n_classes=n_classes)
    t = time.perf_counter()
    if getattr(est, "semi_supervised", False):
        est.fit(emb, np.where(labelled, y, -1))
    else:
        est.fit(emb[labelled], y[labelled])
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    est.predict_proba(emb)
    return {"estimator": name, "n": len(emb), "labelled": int(labelled.sum()),
            "fit_s": round(t_fit, 3), "predict_s": round(time.perf_counter() - t, 3)}


if __name__ == "__main__":
    sys.exit(main())
