"""Label efficiency on text (issue 19): the default text pipeline from zero labels against random picks
and the TF-IDF + logistic regression baseline, on AG News and BANKING77.

    nice -n 10 .venv/bin/python bench/text_efficiency.py --datasets ag_news --seeds 0,1,2 --no-full \
        --pickers typical_first,random --only word:no:random,lsa:logistic:random,lsa:logistic:typical_first \
        --to-target 0.95 --json bench/out/text_efficiency_ag_news.json

For each dataset, seed and picker it starts with no labels, asks for a batch, reveals the true labels of
what was asked for, refits, and records test accuracy at each budget (10/20/50/100/200/300/500 labels);
with ``--to-target`` the dense runs go on until they reach that fraction of their own all-labels accuracy
and record the labels it took (the first batch at or above it).

* The baseline: scikit-learn's LogisticRegression(C=10) on TF-IDF word 1-2-grams of the pool (the
  issue's), with and without the intercept (with few labels the intercept dominates: the baseline gets
  its best simple setting); with ``--wide`` the same on Loupe's own sparse view (word 1-2-grams and
  character 2-5-grams, ``ml.text_features.sparse_features``).
* The default text pipeline: the service's estimators (``logistic``, the probe) on Loupe's dense text
  embedding (``lsa``: ``ml.text_features.tfidf_embedding``, the sparse view reduced to 256 dimensions by
  SVD, as the embed job of a text project writes it), the picker reading the same view; ``--two-views``
  adds ``word|char`` (each n-gram kind reduced on its own: co-training's two views), ``--encoder`` a
  pretrained encoder's views.
* The pickers (``--pickers``): any registered strategy (``random``, ``mixed``, ``cold_start``,
  ``typical_first``: a text project's default), or ``mixed@N``: ``mixed`` with its cold start kept until N
  labels.
* Batches of 10 up to 100 labels, then a tenth of the labelled set, or with ``--batch 20`` batches of 20
  (the service's default ``batch_size`` and ``retrain_every``: it refits every 20 labels), so every budget
  is hit exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.estimators import create_estimator  # noqa: E402
from ml.strategies import DEFAULT_STRATEGY, create_strategy  # noqa: E402
from ml.text_features import TextView, sparse_features, tfidf_embedding  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "text"
BUDGETS = (10, 20, 50, 100, 200, 300, 500)
# BANKING77 at 10 labels: 10 classes of 10 rows, "could represent a regression problem".
warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")


BATCH = 0  # --batch: past 100 labels, batches of this many (0: a tenth of the labelled set)
LIMIT = 0  # --limit: the first rows of each split only (a smoke test)
PROBE: dict = {}  # --probe-C, --probe-class-weight: the probe's parameters (none: the service's)
DIM = 0  # --dim: the lsa view's dimension (0: ml.text_features.DIM, what a text project gets)


def load(name: str) -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str]]:
    """(pool texts, pool labels, test texts, test labels, class names) of a dataset under DATA."""
    def rows(split: str) -> list[dict]:
        with (DATA / name / f"{split}.jsonl").open() as fh:
            out = [json.loads(line) for line in fh]
        return out[:LIMIT] if LIMIT else out

    train, test = rows("train"), rows("test")
    classes = sorted({r["label"] for r in train})
    index = {c: i for i, c in enumerate(classes)}
    return ([r["text"] for r in train], np.array([index[r["label"]] for r in train]),
            [r["text"] for r in test], np.array([index[r["label"]] for r in test]), classes)


def features(pool: list[str], test: list[str], wide: bool) -> dict[str, tuple]:
    """The sparse views (pool rows, test rows), fitted on pool and test together as the service fits on
    its whole pool (no labels read), and the dense embedding of the pool the strategies read."""
    both = pool + test
    n = len(pool)
    word = sparse_features(both, TextView(use_chars=False))
    # pool and test fitted together, as the sparse views (no label read)
    lsa = tfidf_embedding(both, **({"dim": DIM} if DIM else {}))
    out = {"word": (word[:n], word[n:]), "dense": lsa[:n], "lsa": (lsa[:n], lsa[n:])}
    if wide:
        loupe = sparse_features(both)
        out["word+char"] = (loupe[:n], loupe[n:])
    return out


def fit_proba(X, y, labelled, X_test, n_classes: int, intercept: bool) -> tuple[np.ndarray, np.ndarray]:
    """LogisticRegression(C=10) on the labelled rows: (pool probabilities (N, C), test predictions)."""
    from sklearn.linear_model import LogisticRegression

    seen = np.unique(y[labelled])
    proba = np.zeros((X.shape[0], n_classes), np.float32)
    if len(seen) == 1:
        proba[:, seen[0]] = 1.0
        return proba, np.full(X_test.shape[0], seen[0])
    # 100 iterations: with a few hundred labels the problem is separable and lbfgs would run to any cap
    # (C=10 lets the weights grow); the test accuracy no longer moves by then.
    clf = LogisticRegression(C=10, max_iter=100, fit_intercept=intercept).fit(X[labelled], y[labelled])
    proba[:, clf.classes_] = clf.predict_proba(X)
    return proba, clf.predict(X_test)


def encoder_views(pool: list[str], test: list[str], lsa: np.ndarray, ckpt_path: Path, layer: str,
                  pooling: str, result: dict) -> dict[str, tuple]:
    """The dense views the service can give a text project, (pool rows, test rows) each: ``lsa`` (TF-IDF
    word and character n-grams reduced to 256 by SVD, fitted on pool and test together, no labels read),
    ``mlm`` (the pretrained encoder's ``layer`` pooled by ``pooling``) and ``lsa+mlm`` (both side by side,
    each L2-normalised: the two views co-training splits at column 256)."""
    from ml.checkpoint import Checkpoint
    from ml.text_pretrain import encoder_embedding, two_views

    n = len(pool)
    ckpt = Checkpoint.load(str(ckpt_path))
    while not ckpt.state.get("done"):  # bench/text_pretrain.py still at it (it saves as it goes): its end
        time.sleep(30)
        ckpt = Checkpoint.load(str(ckpt_path))
    t0 = time.perf_counter()
    enc = encoder_embedding(ckpt, pool + test, layer=layer, pooling=pooling)
    result["encoder"] = {"checkpoint": str(ckpt_path), "layer": layer, "pooling": pooling,
                         "embed_s": round(time.perf_counter() - t0, 1)}
    both, _ = two_views(lsa, enc)  # as the service embeds a text project with an encoder
    return {"lsa": (lsa[:n], lsa[n:]), "mlm": (enc[:n], enc[n:]), "lsa+mlm": (both[:n], both[n:])}


def fit_estimator(name: str, X, y, labelled, X_test, n_classes: int, split: int | None,
                  proba_read: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """The service's estimator ``name`` (``logistic``: the temperature-scaled probe; ``co_training`` with its
    second view from column ``split``) on the labelled rows: (pool probabilities, test predictions). When no
    picker reads the probabilities (``proba_read`` False: random picks) they are not computed, nor the
    probe's temperature: it rescales the logits and never changes a prediction."""
    est = create_estimator(name, n_classes=n_classes, **(PROBE if name == "logistic" else {}))
    if not proba_read and "calibrate" in est.get_params():
        est.set_params(calibrate=False)
    if name == "co_training":
        est.set_params(view_split=split)
        est.fit(X, np.where(labelled, y, -1))
    else:
        est.fit(X[labelled], y[labelled])
    proba = est.predict_proba(X).astype(np.float32) if proba_read else None
    return proba, est.predict_proba(X_test).argmax(1)


def step(have: int) -> int:
    """The next batch: 10 up to 100 labels, then ``BATCH`` (the service picks and retrains every 20 labels
    by default: ``batch_size``, ``retrain_every``), or a tenth of the labelled set."""
    return 10 if have < 100 else (BATCH or max(10, have // 10))


def picker_strategy(picker: str, seed: int):
    """A picker by name: a registered strategy (``random``, ``mixed``, ``cold_start``, ...); ``mixed@N``:
    the default strategy with its cold start (typical samples of uncovered clusters) kept until N labels
    instead of one per class; ``+param=value`` after either sets one of the strategy's parameters
    (``typical_first+cold_start_per_class=2``, ``typical_first+measure=entropy``); ``typical_first+after=badge``
    (``cal``, ``cal_diverse``): another rule after its cold start, ``bench/text_tails.py``."""
    name, *pairs = picker.split("+")
    name, _, labels = name.partition("@")
    params: dict = {"cold_start_labels": int(labels)} if labels else {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    if "after" in params:  # another tail after typical_first's cold start (bench/text_tails.py)
        from text_tails import TypicalFirstThen

        return TypicalFirstThen(seed=seed, **params)
    return create_strategy(name, seed=seed, **params)


def run(X, y, X_test, y_test, dense, n_classes: int, picker: str, seed: int, intercept: bool,
        estimator: str | None = None, split: int | None = None, target: float | None = None,
        max_labels: int = 0) -> tuple[list[dict], dict]:
    """One oracle run from zero labels: a record per budget, and the whole curve (test accuracy after
    every batch) with, when ``target`` is given, the labels at which it was first reached (the run goes on
    past the last budget until then, or until ``max_labels``). ``estimator``: one of the service's on a
    dense view (None: scikit-learn's LogisticRegression(C=10) on a sparse one, the baseline)."""
    strategy = picker_strategy(picker, seed)
    labelled = np.zeros(len(y), dtype=bool)
    proba, pred, out, t_pick, t_fit = None, None, [], 0.0, 0.0
    steps: list[tuple[int, float]] = []

    def batch(k: int) -> None:
        nonlocal proba, pred, t_pick, t_fit
        t0 = time.perf_counter()
        picks = strategy.select(dense, proba, labelled, k).indices
        t_pick += time.perf_counter() - t0
        labelled[picks] = True
        t0 = time.perf_counter()
        proba, pred = (fit_proba(X, y, labelled, X_test, n_classes, intercept) if estimator is None
                       else fit_estimator(estimator, X, y, labelled, X_test, n_classes, split,
                                          strategy.uses_proba))
        t_fit += time.perf_counter() - t0
        steps.append((int(labelled.sum()), float(np.mean(pred == y_test))))

    for budget in BUDGETS:
        while labelled.sum() < budget:
            have = int(labelled.sum())
            batch(min(step(have), budget - have))
        out.append({"budget": budget, "accuracy": float(np.mean(pred == y_test)), "pick_s": round(t_pick, 2),
                    "fit_s": round(t_fit, 2)})

    def reached() -> int | None:
        return next((n for n, acc in steps if acc >= target), None) if target is not None else None

    cap = min(max_labels or len(y), len(y))
    while target is not None and reached() is None and labelled.sum() < cap:
        have = int(labelled.sum())
        batch(min(step(have), cap - have))
    return out, {"steps": steps, "target": target, "labels_to_target": reached(),
                 "pick_s": round(t_pick, 2), "fit_s": round(t_fit, 2)}


def full_accuracy(X, y, X_test, y_test, n_classes: int, estimator: str | None = None,
                  split: int | None = None) -> float:
    """Test accuracy with every pool label: the sparse baseline (LR C=10 with its intercept, the issue's
    reference), or one of the service's estimators on a dense view."""
    everything = np.ones(len(y), bool)
    _, pred = (fit_proba(X, y, everything, X_test, n_classes, True) if estimator is None
               else fit_estimator(estimator, X, y, everything, X_test, n_classes, split, proba_read=False))
    return float(np.mean(pred == y_test))


CONFIGS = (  # (view, intercept, pickers): the sparse baselines (scikit-learn's LR C=10)
    ("word", True, ("random", DEFAULT_STRATEGY)),
    ("word", False, ("random", DEFAULT_STRATEGY)),
)
WIDE = (("word+char", False, ("random", DEFAULT_STRATEGY)),)  # --wide: Loupe's sparse view too
# The dense views under the service's own estimators; the picker reads the same view. ``lsa`` is what a
# text project is embedded with; ``word|char`` (--two-views) the word and the character n-grams each
# reduced by SVD on their own, side by side: two genuinely different views for co-training; the encoder's
# (--encoder) ``mlm`` and ``lsa+mlm``.
DENSE = (("lsa", "logistic"), ("word|char", "logistic"), ("word|char", "co_training"), ("mlm", "logistic"),
         ("lsa+mlm", "logistic"), ("lsa+mlm", "co_training"))


def _wanted(only: str, key: str) -> bool:
    return not only or key in only.split(",")


def word_char_views(both: list[str]) -> tuple[np.ndarray, int]:
    """Word 1-2-grams and character 2-5-grams, each TF-IDF reduced to 256 dimensions by SVD on its own,
    side by side (each block L2-normalised, then weighed 1/sqrt(2)); and the column where the second starts."""
    word = tfidf_embedding(both, view=TextView(use_chars=False))
    char = tfidf_embedding(both, view=TextView(use_words=False))
    return np.hstack([word, char]) / np.sqrt(2.0), word.shape[1]


def bench(name: str, seeds: list[int], wide: bool = False, only: str = "", encoder: Path | None = None,
          layer: str = "concat:3", pooling: str = "mean", full: bool = True, pickers: tuple[str, ...] = (),
          target: float | None = None, max_labels: int = 0, views2: bool = False) -> dict:
    pool, y, test, y_test, classes = load(name)
    t0 = time.perf_counter()
    feats = features(pool, test, wide)
    result: dict = {"dataset": name, "pool": len(pool), "test": len(test), "classes": len(classes),
                    "features_s": round(time.perf_counter() - t0, 1), "full": {}, "runs": []}
    print(name, f"features in {result['features_s']} s", flush=True)
    # All pool labels, the word view only (the reference; weakly regularised, the wider view's
    # fit on 10,000 rows took minutes on a loaded machine).
    if full:
        result["full"]["word"] = full_accuracy(*feats["word"][:1], y, feats["word"][1], y_test, len(classes))
        print(name, f"all labels {result['full']['word']:.3f}", flush=True)
    for view, intercept, default_pickers in CONFIGS + (WIDE if wide else ()):
        X, X_test = feats[view]
        for picker in pickers or default_pickers:
            if not _wanted(only, f"{view}:{'yes' if intercept else 'no'}:{picker}"):
                continue
            for seed in seeds:
                recs = run(X, y, X_test, y_test, feats["dense"], len(classes), picker, seed, intercept)
                _record(result, recs, view=view, estimator=f"LR C=10, intercept {'yes' if intercept else 'no'}",
                        picker=picker, seed=seed)
    views = {"lsa": feats["lsa"]}
    splits = {"lsa+mlm": feats["lsa"][0].shape[1]}  # where co-training's second view starts
    n = len(pool)
    if views2:
        t0 = time.perf_counter()
        wc, splits["word|char"] = word_char_views(pool + test)
        views["word|char"] = (wc[:n], wc[n:])
        result["two_views_s"] = round(time.perf_counter() - t0, 1)
        print(name, f"word|char views in {result['two_views_s']} s", flush=True)
    if encoder is not None:
        views.update(encoder_views(pool, test, np.vstack(feats["lsa"]), encoder, layer, pooling, result))
    for view, estimator in DENSE:
        if view not in views:
            continue
        X, X_test = views[view]
        for picker in pickers or ("random", DEFAULT_STRATEGY):
            if not _wanted(only, f"{view}:{estimator}:{picker}"):
                continue
            goal = None
            if target is not None:
                key = f"{view}:{estimator}"
                if key not in result["full"]:
                    result["full"][key] = full_accuracy(X, y, X_test, y_test, len(classes), estimator,
                                                        splits.get(view))
                    print(name, f"all labels, {key}: {result['full'][key]:.3f}", flush=True)
                goal = target * result["full"][key]
            for seed in seeds:
                recs = run(X, y, X_test, y_test, X, len(classes), picker, seed, True, estimator=estimator,
                           split=splits.get(view), target=goal, max_labels=max_labels)
                _record(result, recs, view=view, estimator=estimator, picker=picker, seed=seed)
    return result


def _record(result: dict, recs: tuple[list[dict], dict], **key) -> None:
    curve, more = recs
    result["runs"].append({**key, "curve": curve, **more})
    to = f" to {more['target']:.3f}: {more['labels_to_target']}" if more.get("target") is not None else ""
    print(result["dataset"], *key.values(), " ".join(f"{r['budget']}:{r['accuracy']:.3f}" for r in curve) + to,
          f"(pick {more['pick_s']} s, fit {more['fit_s']} s)", flush=True)


def layer_choice(name: str, encoder: Path, seeds: list[int], labels: int = 100) -> list[dict]:
    """The seed's feature-based choices on one pretrained encoder: each layer (token embeddings, each
    transformer layer, a concatenation and a learned weighted sum of all of them) pooled by the mean or the
    first token, under the logistic probe with ``labels`` random labels."""
    from ml.checkpoint import Checkpoint
    from ml.estimators.block_weighted import BlockWeighted
    from ml.text_pretrain import encoder_embedding

    pool, y, test, y_test, classes = load(name)
    ckpt = Checkpoint.load(str(encoder))
    blocks, d = ckpt.config["encoder"]["layers"] + 1, ckpt.config["encoder"]["d_model"]
    out = []
    for pooling in ("mean", "first"):
        # Every hidden state once, each L2-normalised (embed_ids): a layer's features are its slice.
        Z = encoder_embedding(ckpt, pool + test, layer=f"concat:{blocks}", pooling=pooling) * np.sqrt(blocks)
        choices = {"embeddings": [0], **{f"layer {i}": [i] for i in range(1, blocks)},
                   f"concat:{blocks}": list(range(blocks)), f"weighted:{blocks}": list(range(blocks))}
        for choice, idx in choices.items():
            X = np.hstack([Z[:, i * d:(i + 1) * d] for i in idx])
            X /= np.linalg.norm(X, axis=1, keepdims=True) + 1e-8
            accs = []
            for seed in seeds:
                rows = np.random.default_rng(seed).choice(len(pool), labels, replace=False)
                est = create_estimator("logistic", n_classes=len(classes))
                if choice.startswith("weighted"):
                    est = BlockWeighted(est, blocks=(d,) * len(idx))
                est.fit(X[rows], y[rows])
                accs.append(float(np.mean(est.predict_proba(X[len(pool):]).argmax(1) == y_test)))
            out.append({"dataset": name, "pooling": pooling, "layer": choice, "labels": labels,
                        "accuracy": float(np.mean(accs)), "sd": float(np.std(accs)), "seeds": seeds})
            print(name, pooling, choice, f"{np.mean(accs):.3f} ± {np.std(accs):.3f}", flush=True)
    return out


def table(result: dict) -> str:
    """Mean ± sd accuracy per configuration and budget (Markdown): the budgets every run has."""
    full = "".join(f"; all pool labels, {k}: {v:.1%}" for k, v in result["full"].items())
    budgets = sorted(set.intersection(*({c["budget"] for c in r["curve"]} for r in result["runs"])))
    lines = [f"**{result['dataset']}** ({result['pool']} pool, {result['test']} test, "
             f"{result['classes']} classes{full})", "",
             "| view | estimator | picker | seeds | " + " | ".join(str(b) for b in budgets) + " |",
             "|---|---|---|---|" + "---|" * len(budgets)]
    keys = list(dict.fromkeys((r["view"], r["estimator"], r["picker"]) for r in result["runs"]))
    for view, estimator, picker in keys:
        runs = [r for r in result["runs"] if (r["view"], r["estimator"], r["picker"]) == (view, estimator, picker)]
        cells = []
        for b in budgets:
            acc = np.array([next(c["accuracy"] for c in r["curve"] if c["budget"] == b) for r in runs])
            cells.append(f"{acc.mean():.1%} ± {acc.std():.1%}")
        lines.append(f"| {view} | {estimator} | {picker} | {len(runs)} | " + " | ".join(cells) + " |")
    reach = [r for r in result["runs"] if r.get("target") is not None]
    if reach:
        lines += ["", "| view | estimator | picker | target accuracy | labels to reach it, per seed | mean |",
                  "|---|---|---|---|---|---|"]
        for view, estimator, picker in keys:
            runs = [r for r in reach if (r["view"], r["estimator"], r["picker"]) == (view, estimator, picker)]
            if not runs:
                continue
            got = [r["labels_to_target"] for r in runs]
            mean = f"{np.mean(got):.0f}" if None not in got else "not reached"
            lines.append(f"| {view} | {estimator} | {picker} | {runs[0]['target']:.1%} | "
                         f"{', '.join(str(g) for g in got)} | {mean} |")
    return "\n".join(lines)


def merged(files: list[dict]) -> list[dict]:
    """The results of several --json files, one per dataset: their runs together, the first's references."""
    out: dict[str, dict] = {}
    for f in files:
        for r in f["results"]:
            into = out.setdefault(r["dataset"], {**r, "runs": [], "full": {}})
            into["full"] = {**r["full"], **into["full"]}
            into["runs"] += r["runs"]
    return list(out.values())


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="ag_news,banking77")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", type=Path, default=None, help="write every curve here")
    ap.add_argument("--wide", action="store_true", help="also Loupe's word+character sparse view")
    ap.add_argument("--only", default="", help="view:intercept:picker or view:estimator:picker,... to run "
                    "(word:yes:mixed, lsa+mlm:co_training:random); all by default")
    ap.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS))
    ap.add_argument("--encoder", default="", help="a pretrained text encoder per dataset ({dataset} in the path: "
                    "bench/out/text_mlm_{dataset}_300s_seed0.pt, made by bench/text_pretrain.py): adds the dense "
                    "views (lsa, mlm, lsa+mlm) under the service's estimators (logistic, co_training)")
    ap.add_argument("--layer", default="concat:3", help="the encoder's layer choice (ml.text_encoder)")
    ap.add_argument("--pooling", default="mean", choices=("mean", "first"))
    ap.add_argument("--layers-only", action="store_true", help="only the layer and pooling table of --encoder")
    ap.add_argument("--no-full", action="store_true", help="skip the all-labels reference (minutes under load)")
    ap.add_argument("--pickers", default="", help="pickers to run, each a registered strategy or mixed@N (the "
                    "default strategy with its cold start kept until N labels); random and mixed by default")
    ap.add_argument("--to-target", type=float, default=None, help="a fraction (0.95): the dense runs go on past "
                    "the last budget until they reach it times their own all-labels accuracy")
    ap.add_argument("--max-labels", type=int, default=0, help="with --to-target: stop there (0: the whole pool)")
    ap.add_argument("--two-views", action="store_true", help="also word|char: the word and the character "
                    "n-grams each reduced by SVD on its own (co-training's two views)")
    ap.add_argument("--merge", nargs="+", type=Path, default=None, help="only print the tables of these --json "
                    "files' runs together (seeds run apart, by dataset)")
    ap.add_argument("--batch", type=int, default=0, help="past 100 labels, batches of this many (20: the "
                    "service's batch_size and retrain_every); default a tenth of the labelled set")
    ap.add_argument("--dim", type=int, default=0, help="the lsa view's SVD dimension (default: the service's, "
                    "ml.text_features.DIM)")
    ap.add_argument("--probe-C", type=float, default=None, help="the logistic probe's C (default the service's)")
    ap.add_argument("--probe-class-weight", default=None, help="the logistic probe's class_weight (balanced)")
    ap.add_argument("--limit", type=int, default=0, help="the first rows of each split only (a smoke test)")
    return ap


def main(argv=None) -> None:
    global BUDGETS, LIMIT, BATCH, DIM
    args = parser().parse_args(argv)
    LIMIT, BATCH, DIM = args.limit, args.batch, args.dim
    PROBE.update({k: v for k, v in (("C", args.probe_C), ("class_weight", args.probe_class_weight)) if v is not None})
    seeds = [int(s) for s in args.seeds.split(",")]
    BUDGETS = tuple(int(b) for b in args.budgets.split(","))
    if args.merge:
        for r in merged([json.loads(f.read_text()) for f in args.merge]):
            print("\n" + table(r))
        return
    t0, load0 = time.perf_counter(), os.getloadavg()
    names = args.datasets.split(",")
    if args.layers_only:
        rows = [r for name in names for r in layer_choice(name, Path(args.encoder.format(dataset=name)), seeds)]
        print(f"\n{time.perf_counter() - t0:.0f} s; load average at start {load0[0]:.1f}, "
              f"at end {os.getloadavg()[0]:.1f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"layers": rows, "load_start": load0, "load_end": os.getloadavg()}))
        return
    results = [bench(name, seeds, args.wide, args.only,
                     Path(args.encoder.format(dataset=name)) if args.encoder else None, args.layer, args.pooling,
                     not args.no_full, tuple(p for p in args.pickers.split(",") if p), args.to_target,
                     args.max_labels, args.two_views)
               for name in names]
    for r in results:
        print("\n" + table(r))
    print(f"\n{time.perf_counter() - t0:.0f} s; load average at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"results": results, "load_start": load0, "load_end": os.getloadavg()}))


if __name__ == "__main__":
    main()
