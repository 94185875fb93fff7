"""What the finetune job buys: the project's estimator (logistic probe) on the pretrained embedding vs
on the embedding after fine-tuning the backbone on the same labels (audit-free, as the job does).

Pretrains once on the train images (labels unused, ``--method``, CPU-clock budget), then for each label
count and seed picks that many random train images, fine-tunes a copy of the backbone on them
(``ml.finetune.finetune``, as ``workers/jobs/finetune.py`` does), and fits StandardScaler +
LogisticRegression on the labelled embeddings of each backbone; accuracy on the test images.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/finetune_gain.py \\
        --train ../shared/data/mnist/train-10k.npz --test ../shared/data/mnist/test.npz \\
        --labels 100,300,1000 --json --out docs/bench-results/finetune_gain_mnist.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import emit  # noqa: E402
from ssl_probe import load  # noqa: E402

from ml.embedding import extract_embeddings  # noqa: E402
from ml.finetune import finetune  # noqa: E402
from ml.pretrain import pretrain  # noqa: E402
from ml.training import Checkpoint  # noqa: E402


def probe_accuracy(ckpt: Checkpoint, x_lab, y_lab, test_x, test_y) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a = extract_embeddings(ckpt, x_lab, dtype=np.float32, device="cpu")
    b = extract_embeddings(ckpt, test_x, dtype=np.float32, device="cpu")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(a, y_lab)
    return float((clf.predict(b) == test_y).mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--method", default="rotation")
    ap.add_argument("--budget", type=float, default=300, help="pretraining CPU seconds per thread")
    ap.add_argument("--checkpoint", type=Path, help="reuse (or write) the pretrained checkpoint here")
    ap.add_argument("--labels", default="100,300,1000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs (the job's default)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train_x, train_y = load(args.train)
    test_x, test_y = load(args.test)
    if args.checkpoint and args.checkpoint.exists():
        base = Checkpoint.load(str(args.checkpoint))
    else:
        t0 = time.perf_counter()
        base = pretrain(train_x, method=args.method, budget_seconds=args.budget, budget_clock="cpu", device="cpu",
                        progress=lambda f, m: print(f"  pretrain {f:5.1%} {m}", file=sys.stderr, flush=True)
                        if int(f * 1000) % 100 == 0 else None)
        print(f"pretrained {args.method} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.checkpoint:
            base.without_training_state().save(str(args.checkpoint))
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    for n in [int(v) for v in args.labels.split(",")]:
        for seed in [int(v) for v in args.seeds.split(",")]:
            idx = np.random.default_rng(seed).choice(len(train_x), n, replace=False)
            x_lab, y_lab = train_x[idx], train_y[idx]
            t0 = time.perf_counter()
            tuned = finetune(x_lab, y_lab, n_classes, base, epochs=args.epochs, seed=seed, device="cpu")
            tune_s = time.perf_counter() - t0
            emit({"dataset": Path(args.train).name, "method": args.method, "labels": n, "seed": seed,
                  "epochs": args.epochs, "steps": tuned.state["steps"], "finetune_s": round(tune_s, 1),
                  "accuracy_pretrained": probe_accuracy(base, x_lab, y_lab, test_x, test_y),
                  "accuracy_finetuned": probe_accuracy(tuned, x_lab, y_lab, test_x, test_y)}, args.json, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
