"""Likely label errors (issue 18): plant flips among human labels and count how many the list finds.

    python bench/label_issues.py --pool ../shared/data/mnist/train-10k.npz --embedding pca --json
    python bench/label_issues.py --pool ../shared/data/eurosat-rgb --embedding untrained --json

It draws --labels samples at random (seed), flips --flip of their labels to another class at random,
computes out-of-fold probabilities with the project's probe on the representation (``ml.label_issues``),
and reports how many flips are in the first --top of Loupe's list. cleanlab's ``find_label_issues`` on
the same probabilities runs beside it as a peer (ranked by normalized margin), when it is installed.
With several --seeds (a new draw of the labelled samples and the flips each) a last line gives each
count's mean and range.

``--knn-weight W`` also measures an ensemble the service does not use: the probe's out-of-fold
probabilities averaged (weight 1 - W) with those of a cosine 10-nearest-neighbour vote on the same folds
(``*_blend_*`` and ``*_knn_*`` keys; docs/benchmarks.md: it lost flips on both data sets).

Representations: ``raw`` (pixels / 255), ``pca`` (the first 50 principal components of the pixels,
fitted on the drawn samples alone), ``untrained`` (the untrained backbone's concat:3 features, the
embedding a project has before any pretraining), or a checkpoint path (.pt / .ckpt).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.label_efficiency import load_images  # noqa: E402
from ml.label_issues import FOLDS, find_label_issues, out_of_fold_proba, update_out_of_fold  # noqa: E402


def represent(method: str, images: np.ndarray, layer: str) -> np.ndarray:
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    if method == "raw":
        return flat
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(50, random_state=0).fit_transform(flat).astype(np.float32)
    import hashlib

    from ml.embedding import extract_embeddings

    # Cached in bench/out: the untrained backbone takes minutes on a busy 2-core machine.
    h = hashlib.sha1(images.tobytes() + f"{method}{layer}".encode()).hexdigest()[:12]
    cache = ROOT / "bench" / "out" / f"label-issues-emb-{h}.npy"
    if cache.exists():
        return np.load(cache)
    ckpt: object = method
    if method == "untrained":
        from ml.pretrain import random_backbone_checkpoint

        ckpt = random_backbone_checkpoint(images, seed=0, device="cpu")
    X = np.asarray(extract_embeddings(ckpt, images, layer=layer, dtype=np.float32))  # type: ignore[arg-type]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, X)
    return X


def plant_flips(y: np.ndarray, n_classes: int, fraction: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(observed labels, flipped rows): ``fraction`` of the rows moved to another class at random."""
    flipped = rng.choice(len(y), int(round(fraction * len(y))), replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    return noisy, np.sort(flipped)


def knn_out_of_fold(X: np.ndarray, y: np.ndarray, n_classes: int, k: int = 10) -> np.ndarray:
    """(N, C) out-of-fold share of each class among the k most cosine-similar rows (rows centred on the
    training folds' mean), on the folds ``ml.label_issues.out_of_fold_proba`` uses (same seed and count)."""
    from sklearn.model_selection import StratifiedKFold

    vote = np.zeros((len(y), n_classes))
    for train, test in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        mean = X[train].mean(0, keepdims=True)
        T, Q = X[train] - mean, X[test] - mean
        T = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
        Q = Q / np.maximum(np.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
        top = np.argpartition(-(Q @ T.T), k - 1, axis=1)[:, :k]
        vote[test] = np.stack([(y[train][top] == j).mean(1) for j in range(n_classes)], 1)
    return vote


def cleanlab_top(noisy: np.ndarray, proba: np.ndarray, top: int) -> tuple[np.ndarray, int] | None:
    try:
        from cleanlab.filter import find_label_issues as cl_find
    except ImportError:
        return None
    ranked = cl_find(noisy, proba, return_indices_ranked_by="normalized_margin")
    return np.asarray(ranked[:top]), int(len(ranked))


def run(args: argparse.Namespace) -> dict:
    images, labels = load_images(args.pool)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(images), args.labels, replace=False)
    images, y = images[pick], labels[pick]
    C = int(labels.max()) + 1
    noisy, flipped = plant_flips(y, C, args.flip, rng)
    t0 = time.perf_counter()
    X = represent(args.embedding, images, args.layer)
    embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = out_of_fold_proba(X, noisy, C)
    issues = find_label_issues(X, noisy, C, proba=proba)
    loupe_s = time.perf_counter() - t0
    oof_acc = float((proba.argmax(1) == y).mean())
    out = {"pool": args.pool, "embedding": args.embedding, "layer": args.layer, "dim": int(X.shape[1]),
           "labels": args.labels, "flips": int(len(flipped)), "seed": args.seed, "top": args.top,
           "oof_accuracy_vs_truth": round(oof_acc, 4), "embed_s": round(embed_s, 1), "loupe_s": round(loupe_s, 1),
           "loupe_listed": int(len(issues.rows)),
           "loupe_found_in_top": int(np.isin(issues.rows[:args.top], flipped).sum()),
           "loupe_suggestion_right": int((issues.suggested[:args.top] == y[issues.rows[:args.top]]).sum())}
    peer = cleanlab_top(noisy, proba, args.top)
    if peer is not None:
        out.update(cleanlab_listed=peer[1], cleanlab_found_in_top=int(np.isin(peer[0], flipped).sum()))
    if args.knn_weight > 0:
        vote = knn_out_of_fold(X, noisy, C)
        for name, p in (("_knn", vote), ("_blend", (1 - args.knn_weight) * proba + args.knn_weight * vote)):
            out[f"oof_accuracy{name}_vs_truth"] = round(float((p.argmax(1) == y).mean()), 4)
            rows = find_label_issues(X, noisy, C, proba=p, limit=args.top).rows
            out[f"loupe{name}_found_in_top"] = int(np.isin(rows, flipped).sum())
            peer = cleanlab_top(noisy, p, args.top)
            if peer is not None:
                out[f"cleanlab{name}_found_in_top"] = int(np.isin(peer[0], flipped).sum())
    if args.incremental:
        out.update(incremental(X, noisy, C, flipped, args))
    return out


def incremental(X: np.ndarray, noisy: np.ndarray, C: int, flipped: np.ndarray, args: argparse.Namespace) -> dict:
    """The labels arriving in rounds as the train job sees them (``--incremental START,BATCH``): the first
    START scored by the full folds, then BATCH more a round through ``update_out_of_fold``; the list after
    the last round against the full pass on all of them."""
    start, batch = (int(v) for v in args.incremental.split(","))
    order = np.random.default_rng(args.seed + 1).permutation(len(noisy))  # arrival order
    proba = np.zeros((len(noisy), C))
    known = np.zeros(len(noisy), bool)
    since, fits, full, t0 = 0, 0, 0, time.perf_counter()
    for end in [start, *range(start + batch, len(noisy) + batch, batch)]:
        rows = order[:min(end, len(noisy))]
        k = known[rows]
        p, since = update_out_of_fold(X[rows], noisy[rows], C, k, proba[rows], since)
        full += since == 0
        fits += 10 if since == 0 else 1
        proba[rows], known[rows] = p, True
    issues = find_label_issues(X, noisy, C, proba=proba)
    return {"incremental": args.incremental, "incremental_rounds": int(np.ceil((len(noisy) - start) / batch)) + 1,
            "incremental_full_passes": int(full), "incremental_fits": fits,
            "incremental_s": round(time.perf_counter() - t0, 1),
            "incremental_found_in_top": int(np.isin(issues.rows[:args.top], flipped).sum())}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, help=".npz or an ImageFolder")
    p.add_argument("--embedding", default="pca", help="raw, pca, untrained or a checkpoint path")
    p.add_argument("--layer", default="concat:3")
    p.add_argument("--labels", type=int, default=1000)
    p.add_argument("--flip", type=float, default=0.05)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--seeds", default="0")
    p.add_argument("--incremental", default="", help="START,BATCH: also score the labels arriving in rounds "
                   "(START first, then BATCH a round) as the train job does, and count the flips in its top")
    p.add_argument("--knn-weight", type=float, default=0.0, help="also measure the probe blended with a kNN "
                   "vote at this weight (not what the service does)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        args.seed = seed
        res = run(args)
        results.append(res)
        print(json.dumps(res) if args.json else "  ".join(f"{k}={v}" for k, v in res.items()), flush=True)
    if len(results) > 1:
        summary: dict = {"summary": True, "seeds": args.seeds, "pool": args.pool, "embedding": args.embedding}
        for key in (k for k in results[0] if k.endswith("_found_in_top") or k.startswith("oof_accuracy")):
            vals = [r[key] for r in results]
            summary[key] = {"mean": round(float(np.mean(vals)), 4), "min": min(vals), "max": max(vals)}
        print(json.dumps(summary) if args.json else "  ".join(f"{k}={v}" for k, v in summary.items()), flush=True)


if __name__ == "__main__":
    main()
