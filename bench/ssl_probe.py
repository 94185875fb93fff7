"""Linear-probe benchmark of self-supervised pretraining (issue 3).

Pretrains on the train images (labels unused) with each method and a time budget, embeds train and
test, fits StandardScaler + LogisticRegression on all train labels and on 100 random ones (3 label
seeds), and reports test accuracy. Baselines in the same run: raw pixels and the untrained backbone;
``--peer lightly`` adds lightly's SimCLR (its per-image PIL transform, projection head and NT-Xent)
on the same backbone, optimiser, schedule and budget.

    python bench/ssl_probe.py --train ../shared/data/mnist/train-10k.npz --test ../shared/data/mnist/test.npz \
        --methods all --budget 300 --peer lightly --json
    python bench/ssl_probe.py --train ../shared/data/cifar10-test --split 8000 --methods all --budget 300

The embedding layer choices side by side (issue 17), with the service's estimator: ``--probe service`` fits
the project's default probe, and a ``weighted:k`` layer behind the block weights it learns on the labels
(ml/block_weights.py), as the train job does; all the layers come from one embedding pass:

    python bench/ssl_probe.py --train ../shared/data/eurosat-rgb --split 8000 --methods simclr --budget 90 \
        --clock cpu --image-size 64 --no-baselines --probe service --layer last \
        --extra-layers penultimate,concat:3,weighted:3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

# Threads that wait sleep instead of spinning, so CPU time (the --clock cpu budget) is work done.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ml.backbones import create_backbone  # noqa: E402
from ml.data import load_image_folder, load_npz  # noqa: E402
from ml.embedding import extract_embeddings, recalibrate_batchnorm  # noqa: E402
from ml.pretrain import DEFAULT_METHOD, describe_input, pretrain, random_backbone_checkpoint  # noqa: E402
from ml.run import Run  # noqa: E402
from ml.ssl import list_methods, method_class  # noqa: E402
from ml.training import TrainConfig, lr_factor, make_clock, make_optimizer, use_bf16  # noqa: E402

LAYERS = ["last", "penultimate", "concat:2", "concat:3"]


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    if os.path.isdir(path):
        images, labels, _ = load_image_folder(path)
        return images, labels
    images, labels = load_npz(path)
    return images, labels


def scaled_probe():
    """StandardScaler + LogisticRegression(C=1): the probe of every earlier figure in docs/benchmarks.md."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))


def service_probe(blocks: list[int] | None = None):
    """The service's default estimator (ml/estimators: the logistic probe on L2 rows, C=1), uncalibrated
    (the temperature never changes the argmax); behind the learned block weights (ml/block_weights.py) when
    ``blocks`` is given, as the train job fits it for a weighted:k layer."""
    from ml.estimators import DEFAULT_ESTIMATOR, create_estimator
    from ml.estimators.block_weighted import BlockWeighted

    est = create_estimator(DEFAULT_ESTIMATOR)
    est.set_params(calibrate=False)
    return BlockWeighted(est, blocks=tuple(blocks)) if blocks else est


def probe(train_x, train_y, test_x, test_y, n_labels: int = 100, seeds=(0, 1, 2), make=scaled_probe) -> dict:
    """Test accuracy of a probe (a fresh ``make()`` each fit) with all labels and with ``n_labels`` random
    ones; with learned block weights, the weights of the all-label fit too."""
    last = {}

    def fit(x, y):
        clf = make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(x, y)
        last["clf"] = clf
        return float((clf.predict(test_x) == test_y).mean())

    few = []
    for s in seeds:
        idx = np.random.default_rng(s).choice(len(train_x), n_labels, replace=False)
        few.append(fit(train_x[idx], train_y[idx]))
    out = {"accuracy_full": fit(train_x, train_y), "accuracy_100": float(np.mean(few)),
           "accuracy_100_std": float(np.std(few)), "accuracy_100_seeds": few}
    weights = getattr(last["clf"], "weights_", None)
    if weights is not None:
        out["block_weights_full"] = weights.as_dict()
    return out


def probe_layers(ckpt_or_backbone, train_img, train_y, test_img, test_y, layers, probe_kind: str = "scaled") -> dict:
    """Each layer probed; ``probe_kind`` "service" fits the service's estimator (weighted:k behind its learned
    block weights on the concat:k vectors it embeds as). One embedding pass for all the layers: the blocks
    they need side by side (concat:m, each block L2-normalised), each layer its blocks sliced and renormalised,
    which is what embedding it alone gives (ml/embedding.py: embed_batch)."""
    from ml.backbones import Backbone
    from ml.block_weights import is_weighted
    from ml.embedding import block_widths, load_backbone, parse_layer

    model = ckpt_or_backbone if isinstance(ckpt_or_backbone, Backbone) else load_backbone(ckpt_or_backbone)
    n_blocks = len(model.blocks)
    first = min(min(parse_layer(layer, n_blocks)) for layer in layers)
    wide = "last" if first == n_blocks - 1 else f"concat:{n_blocks - first}"
    t0 = time.perf_counter()
    tr_all = extract_embeddings(model, train_img, layer=wide, dtype=np.float32, device="cpu")
    embed_s = time.perf_counter() - t0
    te_all = extract_embeddings(model, test_img, layer=wide, dtype=np.float32, device="cpu")
    edges = np.cumsum([0, *block_widths(model, wide)])

    def columns(a: np.ndarray, layer: str) -> np.ndarray:
        cols = np.concatenate([np.arange(edges[i - first], edges[i - first + 1]) for i in parse_layer(layer, n_blocks)])
        part = a[:, cols]
        return part / np.maximum(np.linalg.norm(part, axis=1, keepdims=True), 1e-12)

    out = {}
    for layer in layers:
        weighted = is_weighted(layer)
        if weighted and probe_kind != "service":
            raise ValueError(f"{layer}: per-column scaling would undo the block weights; use --probe service")
        blocks = block_widths(model, layer) if weighted else None
        make: Callable[[], Any] = partial(service_probe, blocks) if probe_kind == "service" else scaled_probe
        out[layer] = probe(columns(tr_all, layer), train_y, columns(te_all, layer), test_y, make=make)
    return {"layers": out, "probe_seconds": time.perf_counter() - t0, "probe": probe_kind, "embedded_as": wide,
            "embed_images_per_s": len(train_img) / embed_s if embed_s else None}


def lightly_simclr(arr, config, budget, batch_size, lr, seed, log, num_workers=0, clock_kind="cpu",
                   precision="auto"):
    """lightly's SimCLR on our backbone: its transform (PIL, per image), head and loss; our optimiser."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.transforms import SimCLRTransform
    from PIL import Image

    torch.manual_seed(seed)
    net = create_backbone(config["backbone"], config["in_channels"], config["image_size"])
    net.set_normalization(config["norm_mean"], config["norm_std"])
    grey = config["in_channels"] == 1
    # SimCLR's CIFAR recipe (no blur at this size); no flips for greyscale, as our own recipe.
    transform = SimCLRTransform(input_size=config["image_size"], gaussian_blur=0.0, hf_prob=0.0 if grey else 0.5,
                                normalize={"mean": config["norm_mean"], "std": config["norm_std"]})

    class Views(torch.utils.data.Dataset):
        def __len__(self):
            return len(arr)

        def __getitem__(self, i):
            img = Image.fromarray(arr[i, :, :, 0] if grey else arr[i])
            return tuple(transform(img))

    loader = torch.utils.data.DataLoader(Views(), batch_size=batch_size, shuffle=True, drop_last=True,
                                         num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
                                         persistent_workers=num_workers > 0)
    model = torch.nn.ModuleDict({"backbone": net, "head": SimCLRProjectionHead(net.out_dim, 512, 128)})
    criterion = NTXentLoss(temperature=0.5)
    cfg = TrainConfig(budget_seconds=budget, batch_size=batch_size, lr=lr, precision=precision)
    bf16 = use_bf16(precision, torch.device("cpu"))  # as our trainer does, so the comparison stays even
    if bf16:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    clock, cpu_clock = make_clock(clock_kind), make_clock("cpu")
    start, cpu_start, seen, steps = clock(), cpu_clock(), 0, 0
    while clock() - start < budget:
        for v1, v2 in loader:
            frac = (clock() - start) / budget
            if frac >= 1:
                break
            for gr in opt.param_groups:
                gr["lr"] = lr * lr_factor(frac, cfg.warmup, cfg.final_lr_ratio)
            x = torch.cat([v1, v2])
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                z = model["head"](net(x))
            loss = criterion(*z.float().chunk(2))
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen, steps = seen + len(v1), steps + 1
            if steps % 20 == 0:
                log(f"lightly step {steps} loss {loss.item():.3f} {seen / (clock() - start):.0f} img/s")
    seconds, cpu_seconds = clock() - start, cpu_clock() - cpu_start
    recalibrate_batchnorm(net, arr, device="cpu", seed=seed)
    return net, seconds, seen / seconds, steps, cpu_seconds


def table(paths: list[str]) -> str:
    """Markdown table of the records in .jsonl files (one row per run, in file order)."""
    rows = ["| dataset | method | backbone | layer | probe, all labels | probe, 100 labels (3 seeds) | "
            "pretrain s | images/s | epochs |", "|---|---|---|---|---|---|---|---|---|"]
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            ips = r.get("images_per_s")
            ips = "-" if ips is None or (isinstance(ips, float) and math.isnan(ips)) else f"{ips:.0f}"
            ep = f"{r['epochs']:.1f}" if r.get("epochs") else "-"
            sec = f"{r['seconds']:.0f}" if r.get("seconds") else "-"
            backbone = r["backbone"] if r["method"] != "raw_pixels" else "-"
            rows.append(f"| {r['dataset']} | {r['method']} | {backbone} | "
                        f"{r.get('layer', '-')} | {100 * r['accuracy_full']:.2f}% | "
                        f"{100 * r['accuracy_100']:.2f}% ± {100 * r['accuracy_100_std']:.2f} | {sec} | {ips} | {ep} |")
    return "\n".join(rows)


def run_peers(args, config, train_arr, train_img, train_y, test_img, test_y, layers, emit, log) -> None:
    """The peers (lightly's SimCLR) on the same backbone, optimiser, schedule and budget."""
    for peer in args.peer:
        cls = method_class("simclr")
        batch = args.batch_size or cls.default_batch_size
        budget = args.budget if args.epochs is None else 60.0
        net, seconds, ips, steps, cpu_seconds = lightly_simclr(train_arr, config, budget,
                                                  batch, args.lr or cls.default_lr, args.seed, log,
                                                  num_workers=args.peer_workers, clock_kind=args.clock,
                                                  precision=args.precision)
        if args.save_dir:  # as a checkpoint of ours, so bench/label_efficiency.py can run the loop on it
            from ml.training import Checkpoint

            os.makedirs(args.save_dir, exist_ok=True)
            Checkpoint({**config, "method": f"{peer}_simclr"}, net.state_dict()).save(
                os.path.join(args.save_dir, f"{peer}_simclr-{args.tag or 'run'}-{args.seed}.pt"))
        emit({"method": f"{peer}_simclr", "seconds": seconds, "cpu_seconds": cpu_seconds, "images_per_s": ips,
              "steps": steps, "load_avg": os.getloadavg()[0],
              "epochs": steps * batch / len(train_img), "peer_workers": args.peer_workers,
              "bf16": use_bf16(args.precision, torch.device("cpu")),
              **probe_layers(net, train_img, train_y, test_img, test_y, layers, args.probe)})


def run_method(args, name, config, train_img, train_y, test_img, test_y, layers, kwargs, emit, progress) -> None:
    """One method's run; with ``--snapshots`` it trains as background pretraining does (one run of the whole
    budget, paused and resumed from its checkpoint at each snapshot) and probes each snapshot."""
    ends = sorted({float(x) for x in args.snapshots.split(",") if x} | {args.budget}) if args.snapshots else [None]
    run_path = os.path.join(args.save_dir or "bench/out/ckpt", f"{name}-{args.tag or 'run'}-{args.seed}-run.pt")
    if args.snapshots:
        os.makedirs(os.path.dirname(run_path), exist_ok=True)
        if os.path.exists(run_path):
            os.remove(run_path)
    t0, done = time.perf_counter(), 0.0
    for end in ends:
        chunk = None if end is None else end - done
        ck = pretrain(train_img, method=name, backbone=config["backbone"], image_size=args.image_size,
                      method_kwargs=kwargs, run=Run(
                          budget_seconds=args.budget, epochs=args.epochs, seed=args.seed, device="cpu",
                          progress=progress, lr=args.lr, batch_size=args.batch_size, budget_clock=args.clock,
                          precision=args.precision, checkpoint_path=run_path if args.snapshots else None,
                          resume=bool(args.snapshots), stop_after_seconds=chunk if end and end < args.budget else None))
        done = end or args.budget
        seconds = time.perf_counter() - t0
        suffix = f"-at{int(done)}" if args.snapshots else ""
        if args.save_dir:
            os.makedirs(args.save_dir, exist_ok=True)
            ck.without_training_state().save(
                os.path.join(args.save_dir, f"{name}-{args.tag or 'run'}-{args.seed}{suffix}.pt"))
        emit({"method": name, "seconds": ck.state["elapsed_s"], "wall_seconds": seconds, "snapshot_s": done,
              "cpu_seconds": ck.state.get("cpu_s"), "load_avg": os.getloadavg()[0],
              "images_per_s": ck.state["images_per_s"], "steps": ck.state["step"],
              "epochs": ck.state["images_seen"] / len(train_img), "lr": ck.config["train"]["lr"],
              "batch_size": ck.config["train"]["batch_size"], "method_kwargs": kwargs,
              "bf16": use_bf16(args.precision, torch.device("cpu")),
              **probe_layers(ck, train_img, train_y, test_img, test_y, layers, args.probe)})


def add_run_args(ap: argparse.ArgumentParser) -> None:
    """The options every probe benchmark shares (bench/transfer.py too)."""
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print one JSON object per run to stdout")
    ap.add_argument("--out", help="append the JSON records to this .jsonl file")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", help=".npz (images, labels) or ImageFolder directory")
    ap.add_argument("--table", nargs="+", metavar="JSONL", help="print a markdown table of earlier results and exit")
    ap.add_argument("--test", help=".npz or ImageFolder; omit and use --split to split --train")
    ap.add_argument("--split", type=int, help="first N of a seeded permutation of --train train, rest test")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--methods", default=DEFAULT_METHOD, help="comma list or 'all'")
    ap.add_argument("--budget", type=float, default=300.0, help="pretraining seconds per method")
    ap.add_argument("--epochs", type=float, help="train epochs instead of a time budget")
    ap.add_argument("--backbone", help="registry name (default: automatic for the data on this device)")
    ap.add_argument("--image-size", type=int, help="backbone input side (default: automatic); larger images stay "
                    "at up to twice it for the crops, and are resized to it to embed")
    ap.add_argument("--layer", default="concat:2", help="layer reported as accuracy_full/_100")
    ap.add_argument("--all-layers", action="store_true", help=f"also probe {LAYERS}")
    ap.add_argument("--extra-layers", default="", help="comma list of further layers to probe (weighted:k needs "
                    "--probe service)")
    ap.add_argument("--probe", choices=["scaled", "service"], default="scaled",
                    help="scaled: StandardScaler + LogisticRegression (the earlier figures); service: the service's "
                    "default estimator, weighted:k behind its learned block weights, as the train job fits it")
    ap.add_argument("--peer", choices=["lightly"], action="append", default=[])
    ap.add_argument("--clock", choices=["cpu", "wall"], default="wall",
                    help="budget in process CPU seconds per thread (robust to a shared machine) or wall seconds")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                    help="training precision, for our methods and the peer alike (auto: bf16 where the CPU has it)")
    ap.add_argument("--peer-workers", type=int, default=0,
                    help="DataLoader processes for the peer's per-image PIL augmentation")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--no-raw", action="store_true", help="skip the raw-pixel baseline (slow on 3,072 dims)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--method-kwargs", default="{}", help="JSON dict passed to every method")
    add_run_args(ap)
    ap.add_argument("--tag", default="", help="free text stored in each JSON record")
    ap.add_argument("--save-dir", help="also save each pretrained checkpoint here (to probe it again later)")
    ap.add_argument("--snapshots", default="", help="comma list of budget seconds: train our methods as "
                    "background pretraining does, one --budget run paused at each, and probe every snapshot")
    return ap


def load_sets(args, ap) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(name, train images, labels, test images, labels): ``--test``, or ``--split`` of ``--train``."""
    train_img, train_y = load(args.train)
    if args.test:
        test_img, test_y = load(args.test)
        return os.path.basename(args.train.rstrip("/")), train_img, train_y, test_img, test_y
    if not args.split:
        ap.error("give --test or --split")
    order = np.random.default_rng(args.split_seed).permutation(len(train_img))
    test, train = order[args.split:], order[:args.split]
    name = f"{os.path.basename(args.train.rstrip('/'))}[{args.split}/{len(test)}]"
    return name, train_img[train], train_y[train], train_img[test], train_y[test]


def run_baselines(args, config, train_img, train_y, test_img, test_y, layers, emit) -> None:
    """Raw pixels and the untrained backbone, probed as the methods are."""
    if not args.no_baselines and not args.no_raw:
        t0 = time.perf_counter()
        flat = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
        emit({"method": "raw_pixels", **probe(flat(train_img), train_y, flat(test_img), test_y),
              "seconds": 0.0, "images_per_s": None, "probe_seconds": time.perf_counter() - t0})
    if not args.no_baselines:
        ck = random_backbone_checkpoint(train_img, seed=args.seed, backbone=config["backbone"], device="cpu")
        emit({"method": "untrained", "seconds": 0.0, "images_per_s": None,
              **probe_layers(ck, train_img, train_y, test_img, test_y, layers, args.probe)})


def write_record(args, rec: dict) -> None:
    """One JSON line to stdout (``--json``) and to ``--out``."""
    line = json.dumps(rec)
    if args.json:
        print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


def emitter(args, common: dict, log):
    """The function that records one result: the common fields, the main layer's figures on top, a JSON
    line to stdout (``--json``) and to ``--out``, a summary line to the log."""
    def emit(rec: dict) -> None:
        rec = {**common, **rec}
        main_layer = rec.get("layers", {}).get(args.layer)
        if main_layer:
            rec.update(main_layer, layer=args.layer)
        write_record(args, rec)
        log(f"{rec['method']:>16}: full {rec.get('accuracy_full', float('nan')):.4f}  "
            f"100 {rec.get('accuracy_100', float('nan')):.4f}  {rec.get('seconds', 0):.0f}s")

    return emit


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.clock == "cpu" and args.peer_workers:
        ap.error("--clock cpu counts this process only; the peer's loader workers would be free time")
    if args.table:
        print(table(args.table))
        return 0
    if not args.train:
        ap.error("--train is required")
    torch.set_num_threads(args.threads)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731

    dataset, train_img, train_y, test_img, test_y = load_sets(args, ap)
    config, train_arr = describe_input(train_img, backbone=args.backbone, device="cpu", image_size=args.image_size)
    layers = [args.layer] + [x for x in (LAYERS if args.all_layers else args.extra_layers.split(","))
                             if x and x != args.layer]
    if args.probe != "service" and any(x.startswith("weighted") for x in layers):
        ap.error("a weighted:k layer needs --probe service (per-column scaling would undo the block weights)")
    # The default (best) method runs first and the peer right after it, so the head-to-head comparison
    # is made under the same machine conditions even when the machine is shared.
    methods = ([DEFAULT_METHOD] + [m for m in list_methods() if m != DEFAULT_METHOD] if args.methods == "all"
               else [m for m in args.methods.split(",") if m])
    if args.peer:
        at = methods.index(DEFAULT_METHOD) + 1 if DEFAULT_METHOD in methods else len(methods)
        methods.insert(at, "peers")
    common = {"dataset": dataset, "n_train": len(train_img), "n_test": len(test_img), "backbone": config["backbone"],
              "image_size": config["image_size"], "in_channels": config["in_channels"], "budget_s": args.budget,
              "threads": args.threads, "clock": args.clock, "tag": args.tag, "probe": args.probe}
    emit = emitter(args, common, log)
    run_baselines(args, config, train_img, train_y, test_img, test_y, layers, emit)

    kwargs = json.loads(args.method_kwargs)
    for name in methods:
        if name == "peers":
            run_peers(args, config, train_arr, train_img, train_y, test_img, test_y, layers, emit, log)
            continue
        state = {"last": 0.0}

        def progress(frac, msg, state=state):
            if time.perf_counter() - state["last"] > 15:
                state["last"] = time.perf_counter()
                log(f"  {frac:5.1%} {msg}")

        run_method(args, name, config, train_img, train_y, test_img, test_y, layers, kwargs, emit, progress)

    return 0


if __name__ == "__main__":
    raise SystemExit(main())
