"""Label efficiency: the oracle loop from zero labels, every strategy against random on the same embeddings.

    python bench/label_efficiency.py --pool digits --strategies random,margin,mixed --seeds 0,1,2 --json
    python bench/label_efficiency.py --pool ../shared/data/mnist/train-10k.npz \
        --test ../shared/data/mnist/test.npz --embedding raw --json

For each (strategy, seed) it starts with no labels, asks the strategy for a batch, reveals the true labels
of what it asked for, refits the estimator, and records test accuracy whenever the label count hits a
budget. modAL's margin sampling runs on the same embeddings and estimator as a peer ("modal_margin").
Embeddings are cached in bench/out/ so a second run does not pretrain again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.block_weights import is_weighted  # noqa: E402
from ml.estimators import create_estimator  # noqa: E402
from ml.estimators.block_weighted import BlockWeighted  # noqa: E402
from ml.evaluation import labels_needed  # noqa: E402
from ml.strategies import create_strategy  # noqa: E402

OUT = ROOT / "bench" / "out"


def load_images(spec: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W) or (N, H, W, 3) and int labels from an .npz, an ImageFolder, or 'digits'."""
    if spec == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return (d.images * (255 / 16)).astype(np.uint8), d.target.astype(np.int64)
    p = Path(spec)
    if p.suffix == ".npz":
        z = np.load(p)
        return z["images"], z["labels"].astype(np.int64)
    from PIL import Image

    classes = sorted(d.name for d in p.iterdir() if d.is_dir())
    imgs, labels = [], []
    for ci, c in enumerate(classes):
        for f in sorted((p / c).iterdir()):
            imgs.append(np.asarray(Image.open(f).convert("RGB"))), labels.append(ci)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


def split_digits(images, labels, seed=0):
    """digits has no test split: a fixed stratified 50/50 split (pool, test)."""
    from sklearn.model_selection import train_test_split

    return train_test_split(images, labels, test_size=0.5, stratify=labels, random_state=seed)


def embed(method: str, pool: np.ndarray, test: np.ndarray, budget: float, tag: str,
          layer: str = "last") -> tuple[np.ndarray, np.ndarray]:
    if method.endswith(".pt") or method.endswith(".ckpt"):  # a saved checkpoint (bench/ssl_probe.py --save-dir)
        from ml.embedding import extract_embeddings

        return tuple(np.asarray(extract_embeddings(method, a, layer=layer, dtype=np.float32)) for a in (pool, test))
    if method == "raw":
        f = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
        return f(pool), f(test)
    h = hashlib.sha1(pool[:: max(1, len(pool) // 500)].tobytes() + test[:: max(1, len(test) // 500)].tobytes())
    cache = OUT / f"emb-{tag}-{method}-{int(budget)}s-{h.hexdigest()[:10]}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["pool"], z["test"]
    from ml.embedding import extract_embeddings  # the self-supervised side (issue 3)
    from ml.pretrain import pretrain
    from ml.run import Run

    t0 = time.time()
    checkpoint = pretrain(pool, method=method, run=Run(budget_seconds=budget))
    OUT.mkdir(parents=True, exist_ok=True)
    checkpoint.save(cache.with_suffix(".ckpt"))
    ep, et = np.asarray(extract_embeddings(checkpoint, pool)), np.asarray(extract_embeddings(checkpoint, test))
    print(f"pretrained {method} in {time.time() - t0:.0f}s -> {ep.shape}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, pool=ep.astype(np.float32), test=et.astype(np.float32))
    return ep.astype(np.float32), et.astype(np.float32)


def fit_predict(est, X, y_obs, labelled, X_test):
    """Fit on what is labelled; semi-supervised estimators also see the unlabelled pool as y = -1."""
    if getattr(est, "semi_supervised", False):
        est.fit(X, np.where(labelled, y_obs, -1))
    else:
        est.fit(X[labelled], y_obs[labelled])
    return est.predict_proba(X), est.predict(X_test)


def _modal():
    """modAL 0.4.2 still passes ``force_all_finite`` to scikit-learn's check_X_y, which scikit-learn 1.8
    renamed to ``ensure_all_finite``; translate it so the peer runs unmodified otherwise."""
    import modAL.models.learners as learners
    from modAL.models import ActiveLearner
    from modAL.uncertainty import margin_sampling
    from sklearn.utils import check_X_y

    def compat(*a, force_all_finite=True, **kw):
        return check_X_y(*a, ensure_all_finite=force_all_finite, **kw)

    learners.check_X_y = compat
    return ActiveLearner, margin_sampling


def run_loop(strategy_name, seed, X, y, Xt, yt, est, budgets, batch_size, strategy_params, growth=0.0):
    """One oracle run from zero labels; yields a record per budget."""
    labelled = np.zeros(len(X), dtype=bool)
    proba, t_sel, t_fit = None, 0.0, 0.0
    learner, modal = None, strategy_name == "modal_margin"
    if modal:
        ActiveLearner, margin_sampling = _modal()
    else:
        strategy = create_strategy(strategy_name, seed=seed, **strategy_params.get(strategy_name, {}))
    for budget in budgets:
        while labelled.sum() < budget:
            # A batch may grow with the labelled set (as a service's retrain interval would), which keeps
            # runs to 1000 labels affordable on a CPU; budgets are always hit exactly.
            k = int(min(max(batch_size, round(growth * labelled.sum())), budget - labelled.sum()))
            t0 = time.perf_counter()
            if modal and learner is not None:
                unl = np.flatnonzero(~labelled)
                q, _ = learner.query(X[unl], n_instances=k)
                picks = unl[q]
            elif modal:  # modAL needs a seed set to start from: the same uniform draw as "random"
                picks = create_strategy("random", seed=seed).select(X, None, labelled, k).indices
            else:
                picks = strategy.select(X, proba, labelled, k).indices
            t_sel += time.perf_counter() - t0
            assert not labelled[picks].any() and len(set(picks.tolist())) == len(picks)
            labelled[picks] = True
            t0 = time.perf_counter()
            if modal:
                if learner is None:
                    learner = ActiveLearner(clone(est), margin_sampling, X_training=X[picks], y_training=y[picks])
                else:
                    learner.teach(X[picks], y[picks])
                pred = learner.predict(Xt)
            else:
                proba, pred = fit_predict(est, X, y, labelled, Xt)
            t_fit += time.perf_counter() - t0
        yield {
            "strategy": strategy_name, "seed": seed, "budget": int(budget),
            "accuracy": float(np.mean(pred == yt)), "select_seconds": round(t_sel, 3),
            "fit_seconds": round(t_fit, 3),
        }


def plot(records, full_acc, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(r["strategy"] for r in records):
        rs = [r for r in records if r["strategy"] == name]
        b = sorted({r["budget"] for r in rs})
        acc = [[r["accuracy"] for r in rs if r["budget"] == x] for x in b]  # ragged if a run was cut short
        m, s = np.array([np.mean(a) for a in acc]), np.array([np.std(a) for a in acc])
        ax.plot(b, m, marker="o", ms=3, label=name, ls="--" if name in ("random", "modal_margin") else "-")
        ax.fill_between(b, m - s, m + s, alpha=0.15)
    if full_acc is not None:
        ax.axhline(full_acc, color="k", lw=0.8, label=f"all labels ({full_acc:.3f})")
        ax.axhline(0.95 * full_acc, color="grey", lw=0.8, ls=":", label="95% of all labels")
    ax.set_xscale("log")
    ticks = sorted({r["budget"] for r in records})
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("labels (from zero)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summarise(records, full_acc, budgets) -> str:
    names = list(dict.fromkeys(r["strategy"] for r in records))
    head = "| strategy | " + " | ".join(str(b) for b in budgets) + " | labels to 95% of full |"
    lines = [head, "|" + "---|" * (len(budgets) + 2)]
    for name in names:
        curve = []
        cells = []
        for b in budgets:
            acc = [r["accuracy"] for r in records if r["strategy"] == name and r["budget"] == b]
            curve.append((b, float(np.mean(acc))))
            cells.append(f"{np.mean(acc):.3f} ± {np.std(acc):.3f}")
        need = labels_needed(curve, 0.95 * full_acc) if full_acc is not None else None
        need_s = f">{budgets[-1]}" if need is None else str(round(need))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {need_s} |")
    return "\n".join(lines)


def replot(paths, out):
    lines = [json.loads(line) for p in paths for line in open(p)]
    summary = next(r for r in lines if r.get("summary"))
    records = [r for r in lines if not r.get("summary")]
    budgets = sorted({r["budget"] for r in records})
    print(summarise(records, summary["full_label_accuracy"], budgets))
    plot(records, summary["full_label_accuracy"], Path(out or OUT / "label_efficiency.png"),
         f"{summary['dataset']}, {summary['embedding']} embeddings, {summary['estimator']}")


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", default="digits", help="'digits', an .npz (images, labels) or an ImageFolder")
    ap.add_argument("--test", default=None, help="test set (.npz or ImageFolder); digits splits its own")
    ap.add_argument("--split", type=int, default=None,
                    help="no --test: the first N of a seed-0 permutation of --pool are the pool, the rest the test "
                         "set (the split bench/ssl_probe.py --split makes)")
    ap.add_argument("--layer", default="last", help="layer for an --embedding that is a checkpoint file (last, "
                    "penultimate, concat:k, weighted:k: weights learned on the labels at each fit)")
    ap.add_argument("--embedding", default="raw",
                    help="'raw' pixels, a self-supervised method of ml.pretrain, or 'a+b' for two views")
    ap.add_argument("--pretrain-budget", type=float, default=300.0, help="pretraining seconds (CPU)")
    ap.add_argument("--estimator", default="logistic")
    ap.add_argument("--estimator-params", default="{}", help="JSON kwargs for create_estimator")
    ap.add_argument("--strategies", default="random,margin,entropy,kcenter,cold_start,mixed,modal_margin")
    ap.add_argument("--strategy-params", default="{}", help='JSON {"mixed": {...}} kwargs per strategy')
    ap.add_argument("--budgets", default="10,20,50,100,200,500")
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--batch-growth", type=float, default=0.0, help="batch = max(batch-size, growth * labels)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--no-full", action="store_true", help="skip the all-labels reference fit")
    ap.add_argument("--json", action="store_true", help="print one JSON object per (strategy, seed, budget)")
    ap.add_argument("--jsonl", default=None, help="also write a summary line and the records to this file")
    ap.add_argument("--plot", default=None, help="learning-curve PNG (default bench/out/label_efficiency.png)")
    ap.add_argument("--embed-only", action="store_true", help="compute and cache the embeddings, then stop")
    ap.add_argument("--tag", default=None, help="name used in the plot title and cache files")
    ap.add_argument("--replot", nargs="+", default=None, metavar="JSONL",
                    help="no runs: merge these --jsonl files into one table and --plot")
    return ap


def _pool_and_test(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pool images, test images, pool labels, test labels) as --pool, --test and --split say."""
    images, labels = load_images(args.pool)
    if args.test is None and args.split:
        order = np.random.default_rng(0).permutation(len(images))
        return (images[order[:args.split]], images[order[args.split:]], labels[order[:args.split]],
                labels[order[args.split:]])
    if args.test is None:
        return split_digits(images, labels)
    test_img, yt = load_images(args.test)
    return images, test_img, labels, yt


def _full_label_accuracy(args: argparse.Namespace, est, est_params: dict, tag: str, X, y, Xt, yt) -> float:
    """The accuracy with every pool label (the ceiling the curves approach), cached per data and estimator."""
    emb_tag = "+".join(Path(m).stem for m in args.embedding.split("+")) + f"-{args.layer}"
    ref_cache = OUT / f"full-{tag}-{emb_tag}-{args.estimator}-{len(X)}-{len(Xt)}.json"
    if ref_cache.exists() and json.loads(ref_cache.read_text())["params"] == est_params:
        return json.loads(ref_cache.read_text())["accuracy"]
    t0 = time.perf_counter()
    ref = clone(est)
    if "calibrate" in ref.get_params():
        # A temperature never changes the argmax, so the reference skips the calibration folds (4x faster).
        ref.set_params(calibrate=False)
    _, pred = fit_predict(ref, X, y, np.ones(len(X), dtype=bool), Xt)
    full_acc = float(np.mean(pred == yt))
    OUT.mkdir(parents=True, exist_ok=True)
    ref_cache.write_text(json.dumps({"params": est_params, "accuracy": full_acc}))
    print(f"{tag}/{args.embedding}/{args.estimator}: all {len(X)} labels -> {full_acc:.4f} "
          f"({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
    return full_acc


def _blocks(args: argparse.Namespace) -> list[int] | None:
    """Widths of the blocks a one-checkpoint --embedding lays side by side for --layer (None otherwise)."""
    if "+" in args.embedding or not args.embedding.endswith((".pt", ".ckpt")):
        return None
    from ml.embedding import block_widths, load_backbone

    return block_widths(load_backbone(args.embedding), args.layer)


def main(argv=None):
    args = _arguments().parse_args(argv)
    if args.replot:
        return replot(args.replot, args.plot)

    pool_img, test_img, y, yt = _pool_and_test(args)
    tag = args.tag or Path(args.pool).stem
    # "a+b" puts two embeddings side by side: the two views co-training needs (view_split = width of a).
    views = [embed(m, pool_img, test_img, args.pretrain_budget, tag, args.layer) for m in args.embedding.split("+")]
    X, Xt = (np.hstack([v[i] for v in views]) for i in (0, 1))
    est_params = json.loads(args.estimator_params)
    blocks = _blocks(args)
    if args.estimator == "co_training" and len(views) == 2:
        est_params.setdefault("view_split", views[0][0].shape[1])
    elif args.estimator == "co_training" and blocks and len(blocks) > 1:  # as the service: last block vs the rest
        est_params.setdefault("view_split", sum(blocks[:-1]))
    if args.embed_only:
        print(f"embeddings {X.shape} {Xt.shape} cached", file=sys.stderr)
        return
    n_classes = int(max(y.max(), yt.max()) + 1)
    est = create_estimator(args.estimator, n_classes=n_classes, **est_params)
    if blocks and is_weighted(args.layer):  # weighted:k: the blocks' weights learned on the labels at each fit
        est = BlockWeighted(est, blocks=tuple(blocks))
    budgets = [int(b) for b in args.budgets.split(",")]
    strategy_params = json.loads(args.strategy_params)

    full_acc = None if args.no_full else _full_label_accuracy(args, est, est_params, tag, X, y, Xt, yt)
    # Records stream to --jsonl as they are measured (summary line first), so an interrupted run keeps
    # everything it finished.
    sink = open(args.jsonl, "w") if args.jsonl else None  # noqa: SIM115
    if sink:
        sink.write(json.dumps({"summary": True, "dataset": tag, "embedding": args.embedding,
                               "estimator": args.estimator, "full_label_accuracy": full_acc, "n_pool": len(X),
                               "n_test": len(Xt), "batch_size": args.batch_size,
                               "batch_growth": args.batch_growth}) + "\n")
    records = []
    for name in args.strategies.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            for rec in run_loop(name, seed, X, y, Xt, yt, clone(est), budgets, args.batch_size, strategy_params,
                                args.batch_growth):
                rec.update(dataset=tag, embedding=args.embedding, estimator=args.estimator)
                records.append(rec)
                if args.json:
                    print(json.dumps(rec), flush=True)
                if sink:
                    sink.write(json.dumps(rec) + "\n")
                    sink.flush()
            print(f"  {name} seed {seed}: " + " ".join(f"{r['budget']}:{r['accuracy']:.3f}" for r in records
                  if r["strategy"] == name and r["seed"] == seed), file=sys.stderr)
    if sink:
        sink.close()
    print(summarise(records, full_acc, budgets), file=sys.stderr)
    plot(records, full_acc, Path(args.plot or OUT / "label_efficiency.png"),
         f"{tag}, {args.embedding} embeddings, {args.estimator}")


if __name__ == "__main__":
    main()
