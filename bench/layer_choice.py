"""The embedding layer choices side by side from one embedding pass: ``last``, ``concat:k`` and
``weighted:k`` (the learned weighted sum of blocks, ml/block_weights.py) with the service's probe, from
zero labels with random picks, and with every pool label.

``concat:k`` stores each block L2-normalised, so ``last`` is its last block renormalised and ``weighted:k``
is the same vectors with weights learned at each fit: one pass through the backbone gives all three.

    .venv/bin/python bench/layer_choice.py --pool ../shared/data/eurosat-rgb --split 8000 --test-limit 4000 \\
        --embedding CHECKPOINT.pt --k 3 --seeds 0,1,2 --budgets 20,50,100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.label_efficiency import fit_predict, load_images, run_loop  # noqa: E402
from ml.embedding import block_widths, extract_embeddings, load_backbone  # noqa: E402
from ml.estimators import create_estimator  # noqa: E402
from ml.estimators.block_weighted import BlockWeighted  # noqa: E402


def _data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    images, labels = load_images(args.pool)
    order = np.random.default_rng(0).permutation(len(images))  # the split bench/ssl_probe.py --split makes
    pool, test = order[:args.split], order[args.split:][:args.test_limit or None]
    return images[pool], images[test], labels[pool], labels[test]


def _variants(X: np.ndarray, Xt: np.ndarray, blocks: list[int], n_classes: int) -> dict:
    last = lambda a: a[:, -blocks[-1]:] / np.linalg.norm(a[:, -blocks[-1]:], axis=1, keepdims=True)  # noqa: E731
    probe = create_estimator("logistic", n_classes=n_classes)
    k = len(blocks)
    return {"last": (last(X), last(Xt), probe), f"concat:{k}": (X, Xt, probe),
            f"weighted:{k}": (X, Xt, BlockWeighted(probe, blocks=tuple(blocks)))}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", required=True)
    ap.add_argument("--split", type=int, default=8000)
    ap.add_argument("--test-limit", type=int, default=0, help="test on the first N of the rest (0: all)")
    ap.add_argument("--embedding", required=True, help="a checkpoint file")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default="20,50,100")
    ap.add_argument("--jsonl", default=None)
    args = ap.parse_args(argv)
    pool, test, y, yt = _data(args)
    t0 = time.perf_counter()
    model = load_backbone(args.embedding)
    layer = f"concat:{args.k}"
    X, Xt = (np.asarray(extract_embeddings(model, a, layer=layer, dtype=np.float32)) for a in (pool, test))
    blocks = block_widths(model, layer)
    print(f"embedded {len(X)} + {len(Xt)} ({blocks}) in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    n_classes = int(max(y.max(), yt.max()) + 1)
    budgets = [int(b) for b in args.budgets.split(",")]
    records = []
    for name, (A, At, est) in _variants(X, Xt, blocks, n_classes).items():
        for seed in [int(s) for s in args.seeds.split(",")]:
            for rec in run_loop("random", seed, A, y, At, yt, clone(est), budgets, 10, {}):
                records.append({**rec, "layer": name})
        full = clone(est)
        inner = full.estimator if isinstance(full, BlockWeighted) else full
        inner.set_params(calibrate=False)  # the argmax only: no calibration folds
        _, pred = fit_predict(full, A, y, np.ones(len(A), bool), At)
        records.append({"layer": name, "budget": len(A), "seed": None, "accuracy": float(np.mean(pred == yt)),
                        "weights": getattr(getattr(full, "weights_", None), "weights", None)})
        by_budget = {b: [r["accuracy"] for r in records if r["layer"] == name and r["budget"] == b]
                     for b in [*budgets, len(A)]}
        print(f"{name}: " + "  ".join(f"{b}: {100 * np.mean(a):.1f} ± {100 * np.std(a):.1f}"
                                      for b, a in by_budget.items()), file=sys.stderr, flush=True)
    if args.jsonl:
        Path(args.jsonl).write_text("".join(json.dumps(r) + "\n" for r in records))


if __name__ == "__main__":
    main()
