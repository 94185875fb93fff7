"""Transfer benchmark (issue 13): a backbone pretrained on one data set, written out as a file, registered
by another project and used there frozen or as the start of continued self-supervised pretraining.

What it runs, in one invocation and on the same machine:
1. our default self-supervised method on ``--source`` (labels unused) for ``--budget`` seconds;
2. that backbone exported as TorchScript (``ml.backbones.export``, what ``GET /backbones/{id}/file`` serves)
   and loaded back through the registration path (``ml.backbones.external.registered_checkpoint``);
3. on the ``--target`` pool (split as bench/ssl_probe.py splits it): the registered backbone frozen, the
   same continued for ``--budget`` seconds on the target pool (``backbone_mode: continue``), and, for
   reference, the untrained backbone and our method from scratch on the target with the same budget.
Each is probed as bench/ssl_probe.py probes (all pool labels, and 100 random ones over 3 seeds).

    flock /tmp/loupe-bench.lock python bench/transfer.py --source ../shared/data/cifar10-test \
        --target ../shared/data/eurosat-rgb --split 8000 --budget 300 --clock cpu --json
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssl_probe import add_run_args, load, probe_layers, write_record  # noqa: E402

from ml.backbones.export import export_torchscript  # noqa: E402
from ml.backbones.external import registered_checkpoint  # noqa: E402
from ml.pretrain import DEFAULT_METHOD, pretrain, random_backbone_checkpoint  # noqa: E402
from ml.run import Run  # noqa: E402


def split(images: np.ndarray, labels: np.ndarray, n: int, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(images))
    return images[order[:n]], labels[order[:n]], images[order[n:]], labels[order[n:]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True, help="images the backbone is pretrained on (labels unused)")
    ap.add_argument("--target", required=True, help="ImageFolder or .npz of the project that registers it")
    ap.add_argument("--split", type=int, default=8000, help="first N of a seed-0 permutation of --target: the pool")
    ap.add_argument("--budget", type=float, default=300.0, help="pretraining seconds, on the source and continued")
    ap.add_argument("--source-image-size", type=int, help="input side on the source (default: automatic)")
    ap.add_argument("--layer", default="concat:3")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--no-scratch", action="store_true", help="skip the from-scratch reference on the target")
    ap.add_argument("--save-dir", default="bench/out/transfer", help="the exported file and the checkpoints")
    add_run_args(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    os.makedirs(args.save_dir, exist_ok=True)

    source_img, _ = load(args.source)
    pool, pool_y, test, test_y = split(*load(args.target), args.split)
    common = {"source": os.path.basename(args.source.rstrip("/")), "target": os.path.basename(args.target.rstrip("/")),
              "n_pool": len(pool), "n_test": len(test), "budget_s": args.budget, "clock": args.clock,
              "layer": args.layer, "threads": args.threads}

    def emit(step: str, ckpt, **extra) -> None:
        rec = {**common, "step": step, "image_size": ckpt.config["image_size"], **extra,
               "load_avg": os.getloadavg()[0], **probe_layers(ckpt, pool, pool_y, test, test_y, [args.layer])}
        rec.update(rec["layers"][args.layer])
        ckpt.without_training_state().save(os.path.join(args.save_dir, f"{step}.pt"))
        write_record(args, rec)
        log(f"{step:>22}: full {rec['accuracy_full']:.4f}  100 {rec['accuracy_100']:.4f}  ({rec['image_size']} px)")

    def train(images, **kw):
        t0 = time.perf_counter()
        ck = pretrain(images, method=DEFAULT_METHOD, run=Run(budget_seconds=args.budget, seed=args.seed, device="cpu",
                                                             budget_clock=args.clock), **kw)
        return ck, {"wall_seconds": round(time.perf_counter() - t0, 1), "steps": ck.state["step"]}

    emit("untrained", random_backbone_checkpoint(pool, seed=args.seed, device="cpu"))
    if not args.no_scratch:
        scratch, info = train(pool)
        emit("scratch_on_target", scratch, **info)
    source_ckpt, info = train(source_img, image_size=args.source_image_size)
    file = os.path.join(args.save_dir, "source-backbone.torchscript.pt")
    contract = export_torchscript(source_ckpt, file)
    log(f"exported {file} ({os.path.getsize(file) / 1e6:.1f} MB): {contract}")
    registered = registered_checkpoint(file, "torchscript")
    emit("registered_frozen", registered, source_steps=info["steps"])
    continued, info = train(pool, initial_backbone=registered)
    emit("registered_continued", continued, **info)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
