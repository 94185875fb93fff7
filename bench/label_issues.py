"""Likely label errors (issue 18): plant flips among human labels and count how many the list finds.

    python bench/label_issues.py --pool ../shared/data/mnist/train-10k.npz --embedding pca --json
    python bench/label_issues.py --pool ../shared/data/eurosat-rgb --embedding untrained --json

It draws --labels samples at random (seed), flips --flip of their labels to another class at random,
computes out-of-fold probabilities with the project's probe on the representation (``ml.label_issues``),
and reports how many flips are in the first --top of Loupe's list. cleanlab's ``find_label_issues`` on
the same probabilities runs beside it as a peer (ranked by normalized margin), when it is installed.

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
from ml.label_issues import find_label_issues, out_of_fold_proba  # noqa: E402


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
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", required=True, help=".npz or an ImageFolder")
    p.add_argument("--embedding", default="pca", help="raw, pca, untrained or a checkpoint path")
    p.add_argument("--layer", default="concat:3")
    p.add_argument("--labels", type=int, default=1000)
    p.add_argument("--flip", type=float, default=0.05)
    p.add_argument("--top", type=int, default=50)
    p.add_argument("--seeds", default="0")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    for seed in [int(s) for s in args.seeds.split(",")]:
        args.seed = seed
        res = run(args)
        print(json.dumps(res) if args.json else "  ".join(f"{k}={v}" for k, v in res.items()), flush=True)


if __name__ == "__main__":
    main()
