"""Honest numbers for the dashboard: audit accuracy and labels still needed to reach a target.

Actively chosen samples are the hard ones, so accuracy measured on them underestimates the model, and
accuracy on the training labels overestimates it. The audit sample is a uniform random draw from the
pool, disjoint from every active pick, labelled by the expert but never trained on.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import norm


def choose_audit_sample(n_samples: int, size: int, seed: int = 0, exclude_mask=None) -> np.ndarray:
    """Sorted indices of a uniform random audit sample of ``size`` rows, avoiding ``exclude_mask``.

    Pass the rows already labelled by active picks as ``exclude_mask`` so the audit stays disjoint; the
    same seed and pool give the same sample, so adding rows later only needs a fresh, larger draw.
    """
    allowed = np.arange(n_samples)
    if exclude_mask is not None:
        allowed = allowed[~np.asarray(exclude_mask, dtype=bool)]
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(allowed, size=min(size, len(allowed)), replace=False))


def audit_accuracy(y_true, y_pred, confidence: float = 0.95) -> tuple[float, float, float]:
    """Accuracy on the audit sample with a Wilson score interval: (estimate, ci_low, ci_high).

    Wilson rather than the normal approximation because audit samples are small (tens of labels) and
    accuracies near 1, where the normal interval runs past 100% and is far too narrow.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred must have the same shape")
    n = len(y_true)
    if n == 0:
        return float("nan"), 0.0, 1.0
    p = float(np.mean(y_true == y_pred))
    z = float(norm.ppf(0.5 + confidence / 2))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _power_law(n, a, b, c):
    return a - b * np.power(n, -c)


def fit_learning_curve(curve) -> tuple[float, float, float] | None:
    """Fit accuracy(n) = a - b n^-c (an inverse power law, the usual shape of learning curves, e.g.
    Figueroa et al. 2012) to [(n_labels, accuracy), ...]; returns (a, b, c) or None if it cannot."""
    pts = sorted((float(n), float(a)) for n, a in curve if n > 0 and np.isfinite(a))
    if len({n for n, _ in pts}) < 3:
        return None
    n, acc = np.array(pts).T
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            (a, b, c), _ = curve_fit(
                _power_law, n, acc, p0=(min(1.0, acc.max() + 0.02), 1.0, 0.5),
                bounds=([0.0, 0.0, 0.01], [1.0, 100.0, 3.0]), maxfev=20000,
            )
    except (RuntimeError, ValueError):
        return None
    return float(a), float(b), float(c)


def labels_to_target(curve, target: float) -> int | None:
    """How many *more* labels the fitted learning curve needs to reach ``target`` accuracy.

    0 if the latest point already reaches it; None if the curve levels off below the target (or there
    are fewer than three distinct label counts to fit).
    """
    pts = sorted((n, a) for n, a in curve)
    if pts and pts[-1][1] >= target:
        return 0
    params = fit_learning_curve(curve)
    if params is None:
        return None
    a, b, c = params
    if target >= a or b <= 0:
        return None
    n_needed = (b / (a - target)) ** (1.0 / c)
    return max(0, int(math.ceil(n_needed - pts[-1][0])))


def labels_needed(curve, target: float) -> float | None:
    """Empirical: the label count where the measured curve first reaches ``target``, interpolating
    linearly between measured budgets; None if it never does. Used by the benchmarks."""
    pts = sorted((float(n), float(a)) for n, a in curve)
    prev = None
    for n, a in pts:
        if a >= target:
            if prev is None or prev[1] >= a:
                return n
            n0, a0 = prev
            return n0 + (target - a0) / (a - a0) * (n - n0)
        prev = (n, a)
    return None
