"""What the finetune job buys: the project's estimator (logistic probe) on the pretrained embedding vs
on the embedding after fine-tuning the backbone on the same labels (audit-free, as the job does), and
whether the fine-tuned network's own classifier head would do better than that probe (issue 17: the
fine-tuned classifier as an estimator where it wins).

Pretrains once on the train images (labels unused, ``--method``, CPU-clock budget), then for each label
count and seed picks that many random train images, fine-tunes a copy of the backbone on them
(``ml.finetune``, as ``workers/jobs/finetune.py`` does), and fits the probe (``--probe``: StandardScaler +
LogisticRegression, or the service's default estimator) on the labelled embeddings (``--layer``) of each
backbone; accuracy on the test images, and that of the fine-tuned head (``accuracy_head``).

    flock /tmp/loupe-bench.lock .venv/bin/python bench/finetune_gain.py \\
        --train ../shared/data/mnist/train-10k.npz --test ../shared/data/mnist/test.npz \\
        --labels 100,300,1000 --json --out docs/bench-results/finetune_gain_mnist.jsonl
    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/finetune_gain.py \
        --train ../shared/data/eurosat-rgb --split 8000 --test-limit 2000 --checkpoint CKPT.pt \
        --labels 100,500 --layer concat:3 --probe service --json --out docs/bench-results/finetune_head_eurosat.jsonl
"""

from __future__ import annotations

import argparse
import os
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
from ssl_probe import load, scaled_probe, service_probe  # noqa: E402

from ml.checkpoint import Checkpoint  # noqa: E402
from ml.embedding import block_widths, extract_embeddings, load_backbone  # noqa: E402
from ml.finetune import backbone_checkpoint, finetune_classifier  # noqa: E402
from ml.images import as_nhwc, prepare_array  # noqa: E402
from ml.pretrain import pretrain  # noqa: E402
from ml.run import Run  # noqa: E402


def embed(ckpt: Checkpoint, images: np.ndarray, layer: str) -> np.ndarray:
    return extract_embeddings(ckpt, images, layer=layer.replace("weighted", "concat"), dtype=np.float32, device="cpu")


def probe_accuracy(ckpt: Checkpoint, x_lab, y_lab, test_emb, test_y, layer: str, kind: str) -> float:
    """The probe fitted on the labelled images' embeddings, scored on the test embeddings."""
    if kind == "service":
        blocks = block_widths(load_backbone(ckpt), layer) if layer.startswith("weighted") else None
        clf = service_probe(blocks)
    else:
        clf = scaled_probe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(embed(ckpt, x_lab, layer), y_lab)
    return float((clf.predict(test_emb) == test_y).mean())


def head_accuracy(est, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """The fine-tuned network's own classifier (backbone + its linear head) on the test images."""
    cfg = est.checkpoint.config
    arr = prepare_array(as_nhwc(test_x), cfg["image_size"], cfg["in_channels"])
    return float((est.predict(arr.reshape(len(arr), -1)) == test_y).mean())


def split(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """--test, or the first --split of bench/ssl_probe.py's seeded permutation (the rest, to --test-limit, tests)."""
    train_x, train_y = load(args.train)
    if args.test:
        test_x, test_y = load(args.test)
    else:
        order = np.random.default_rng(0).permutation(len(train_x))
        test = order[args.split:][:args.test_limit or None]
        train_x, train_y, test_x, test_y = train_x[order[:args.split]], train_y[order[:args.split]], \
            train_x[test], train_y[test]
    if args.test_limit:
        test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]
    return train_x, train_y, test_x, test_y


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", help="or --split")
    ap.add_argument("--split", type=int, default=8000, help="without --test: first N of --train train, rest test")
    ap.add_argument("--test-limit", type=int, default=0, help="test on the first N test images (0: all)")
    ap.add_argument("--layer", default="last", help="the embedding layer the probe fits on (concat:3: the default)")
    ap.add_argument("--probe", choices=["scaled", "service"], default="scaled",
                    help="scaled: StandardScaler + LogisticRegression; service: the service's default estimator")
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
    train_x, train_y, test_x, test_y = split(args)
    if args.checkpoint and args.checkpoint.exists():
        base = Checkpoint.load(str(args.checkpoint))
    else:
        t0 = time.perf_counter()
        base = pretrain(train_x, method=args.method, run=Run(
            budget_seconds=args.budget, budget_clock="cpu", device="cpu",
            progress=lambda f, m: print(f"  pretrain {f:5.1%} {m}", file=sys.stderr, flush=True)
            if int(f * 1000) % 100 == 0 else None))
        print(f"pretrained {args.method} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if args.checkpoint:
            base.without_training_state().save(str(args.checkpoint))
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    base_test = embed(base, test_x, args.layer)
    for n in [int(v) for v in args.labels.split(",")]:
        for seed in [int(v) for v in args.seeds.split(",")]:
            idx = np.random.default_rng(seed).choice(len(train_x), n, replace=False)
            x_lab, y_lab = train_x[idx], train_y[idx]
            t0 = time.perf_counter()
            est = finetune_classifier(x_lab, y_lab, n_classes, base, epochs=args.epochs, seed=seed, device="cpu")
            tuned = backbone_checkpoint(est, len(y_lab))
            tune_s = time.perf_counter() - t0
            emit({"dataset": Path(args.train).name, "method": args.method, "labels": n, "seed": seed,
                  "epochs": args.epochs, "steps": tuned.state["steps"], "finetune_s": round(tune_s, 1),
                  "layer": args.layer, "probe": args.probe, "n_test": len(test_y),
                  "load_avg": round(os.getloadavg()[0], 2),
                  "accuracy_pretrained": probe_accuracy(base, x_lab, y_lab, base_test, test_y, args.layer, args.probe),
                  "accuracy_finetuned": probe_accuracy(tuned, x_lab, y_lab, embed(tuned, test_x, args.layer), test_y,
                                                       args.layer, args.probe),
                  "accuracy_head": head_accuracy(est, test_x, test_y)}, args.json, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
