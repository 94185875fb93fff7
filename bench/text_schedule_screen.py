"""What comes after the cold start on text (issue 19, the labels-to-95 % floor): one shared prefix, many tails.

The default text strategy (``typical_first``) picks from zero labels to ``--switch`` labels (399 on
BANKING77: its cold start ends at 5 labels a class, 385, inside the 363-399 batch) with the batches of
``bench/text_efficiency.py`` (10 up to 100, then a tenth of the labelled set, capped at its budgets); that
prefix is kept per seed under ``--cache``, and each ``--variants`` picker carries on from it, without the
budget caps, until the test accuracy reaches ``--target`` times the probe's accuracy with every pool label.
``random`` starts from zero instead (the reference). A variant is a registered strategy with
``+param=value`` as in ``text_efficiency.py``, or ``balanced`` (the most uncertain documents by margin,
round-robin over the predicted classes); ``measure=margin_dens1``/``margin_dens2`` weigh the margin by the
document's density (mean cosine similarity to its 20 nearest documents, to the power 1 or 2: information
density, Settles and Craven 2008).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/text_schedule_screen.py --dataset banking77 --seeds 0 \
        --variants typical_first,margin,balanced,typical_first+measure=margin_dens1 --json out.jsonl
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
sys.path.insert(0, str(ROOT / "bench"))

import text_efficiency as te  # noqa: E402

import ml.strategies.mixed as mixed  # noqa: E402
from ml.estimators import create_estimator  # noqa: E402
from ml.strategies.base import l2_normalise  # noqa: E402
from ml.strategies.uncertainty import margin_uncertainty  # noqa: E402


def fit(c: float, X, y, labelled, X_test, n_classes: int, calibrate: bool = True):
    """The service's probe with ``C=c``: (pool probabilities, test predictions)."""
    est = create_estimator("logistic", n_classes=n_classes, C=c, calibrate=calibrate)
    est.fit(X[labelled], y[labelled])
    return est.predict_proba(X).astype(np.float32), est.predict_proba(X_test).argmax(1)


def add_density_measures(X: np.ndarray) -> None:
    """Register ``margin_dens1`` and ``margin_dens2`` (margin times density to the power 1, 2) as measures."""
    xn = l2_normalise(X.astype(np.float32))
    dens = np.empty(len(X), np.float32)
    for s in range(0, len(X), 1000):
        dens[s:s + 1000] = np.sort(xn[s:s + 1000] @ xn.T, axis=1)[:, -21:-1].mean(1)
    dens = np.clip(dens, 0, None)
    for b in (1, 2):
        mixed.MEASURES[f"margin_dens{b}"] = (lambda p, b=b: margin_uncertainty(p) * dens ** b)


def balanced_margin(proba: np.ndarray, labelled: np.ndarray, k: int) -> np.ndarray:
    """The most uncertain unlabelled documents by margin, one per predicted class in turn."""
    u = margin_uncertainty(proba)
    cand = np.flatnonzero(~labelled)
    order = cand[np.argsort(-u[cand], kind="stable")]
    pred = proba[order].argmax(1)
    queues = {int(c): list(order[pred == c]) for c in np.unique(pred)}
    classes = sorted(queues, key=lambda c: -u[queues[c][0]])
    picks: list[int] = []
    while len(picks) < k and any(queues.values()):
        for c in classes:
            if queues[c] and len(picks) < k:
                picks.append(int(queues[c].pop(0)))
    return np.array(picks)


def prefix(data: tuple, seed: int, switch: int, c: float, cache: Path) -> tuple[np.ndarray, list]:
    """``typical_first`` from zero to ``switch`` labels: (labelled mask, [(labels, test accuracy)])."""
    X, y, X_test, y_test, n_classes = data
    f = cache / f"{len(y)}_s{seed}_{switch}_C{c}.npz"
    if f.exists():
        z = np.load(f)
        return z["lab"], [tuple(s) for s in z["steps"]]
    st = te.picker_strategy("typical_first", seed)
    lab, proba, steps = np.zeros(len(y), bool), None, []
    while lab.sum() < switch:
        have = int(lab.sum())
        nxt = min(b for b in (*te.BUDGETS, 10**9) if b > have)
        lab[st.select(X, proba, lab, min(te.step(have), nxt - have, switch - have)).indices] = True
        proba, pred = fit(c, X, y, lab, X_test, n_classes)
        steps.append((int(lab.sum()), float(np.mean(pred == y_test))))
    np.savez(f, lab=lab, steps=np.array(steps))
    return lab, steps


def tail(data: tuple, variant: str, seed: int, start: tuple, target: float, c: float, cap: int) -> list:
    """Carry on from ``start`` (labelled mask, steps) with ``variant`` until ``target``: the steps."""
    X, y, X_test, y_test, n_classes = data
    lab, steps = start[0].copy(), list(start[1])
    rng = np.random.default_rng(seed)
    if variant == "random":
        lab[:], steps = False, []
        lab[rng.choice(len(y), 10, replace=False)] = True
    st = None if variant == "balanced" else te.picker_strategy(variant, seed)
    proba, pred = fit(c, X, y, lab, X_test, n_classes)
    steps.append((int(lab.sum()), float(np.mean(pred == y_test))))
    while steps[-1][1] < target and lab.sum() < cap:
        k = te.step(int(lab.sum()))
        lab[balanced_margin(proba, lab, k) if st is None else st.select(X, proba, lab, k).indices] = True
        proba, pred = fit(c, X, y, lab, X_test, n_classes)
        steps.append((int(lab.sum()), float(np.mean(pred == y_test))))
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="banking77")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--variants", default="typical_first,random")
    ap.add_argument("--switch", type=int, default=399)
    ap.add_argument("--C", type=float, default=1.0, help="the probe's C (the service's: 1)")
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--max-labels", type=int, default=4000)
    ap.add_argument("--cache", default="/tmp")
    ap.add_argument("--json", default="", help="append a record per run here")
    args = ap.parse_args()
    pool, y, test, y_test, classes = te.load(args.dataset)
    X, X_test = te.features(pool, test, False)["lsa"]
    data = (X, y, X_test, y_test, len(classes))
    everything = np.ones(len(y), bool)
    full = float(np.mean(fit(args.C, X, y, everything, X_test, len(classes), calibrate=False)[1] == y_test))
    add_density_measures(X)
    for seed in (int(s) for s in args.seeds.split(",")):
        start = prefix(data, seed, args.switch, args.C, Path(args.cache))
        for v in args.variants.split(","):
            t0 = time.process_time()
            steps = tail(data, v, seed, start, args.target * full, args.C, args.max_labels)
            rec = {"dataset": args.dataset, "seed": seed, "variant": v, "C": args.C, "switch": args.switch,
                   "full": full, "target": args.target * full, "labels_to_target": steps[-1][0],
                   "reached": steps[-1][1] >= args.target * full, "cpu_s": round(time.process_time() - t0),
                   "steps": steps}
            print(v, seed, steps[-1], f"full {full:.3f}", flush=True)
            if args.json:
                with open(args.json, "a") as fh:
                    fh.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
