"""How far the annotators agree, on the samples two or more of them labelled (the project's overlap,
``app/services/overlap.py``, or a second opinion given by hand).

Per pair of annotators: the shared samples ``n``, their raw agreement (the share labelled alike) with a
Wilson interval, and Cohen's kappa (agreement beyond what their label frequencies give by chance;
``sklearn.metrics.cohen_kappa_score``) with a 95 % bootstrap interval; per class, of the samples
either of them called that class, the share both did. Figures on fewer than ``FEW`` shared samples are
flagged (``few_samples``): the interval says how little they rest on, and the dashboard says it in words.
Each annotator's opinion of a sample is their newest live label; a review's decision is no opinion (the
reviewer saw both labels), nor is an import's folder.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
from sqlalchemy.orm import Session

from app.models import Project
from app.repos import reviews as review_repo
from app.services import overlap
from app.services import reviews as review_service

# Below this many shared samples a pair's figures are flagged: with 10 samples all alike, raw
# agreement's 95 % interval still reaches down to 72 % (the dashboard's rule for audit labels too).
FEW = 30
_Z = 1.959963984540054  # the normal quantile of a two-sided 95 % interval
_RESAMPLES = 1000
# Up to this many shared samples a pair's kappa interval is bootstrapped (1,000 resamples, a fixed seed:
# the same labels give the same interval); beyond it the normal approximation is close (within 0.01 at 200
# and 10 classes) and costs nothing, where the bootstrap costs 30 ms a pair at 200 and 300 ms at 2,000 on
# every poll of the dashboard.
_BOOTSTRAP_MAX = 200


def wilson(k: int, n: int) -> list[float] | None:
    """The 95 % Wilson score interval of a proportion ``k / n`` (honest at 0, 1 and small n)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + _Z**2 / (2 * n)) / (1 + _Z**2 / n)
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n**2)) / (1 + _Z**2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def kappa(a: list[str], b: list[str]) -> float | None:
    """Cohen's kappa of two annotators' labels of the same samples; None where it is undefined (both
    always chose one and the same class: chance alone explains their agreement entirely)."""
    if len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score  # loaded only where two annotators shared samples

    value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else value


def _chance(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(observed, chance) agreement of each row of (R, n) class-index arrays ``a`` and ``b``."""
    rows, n = a.shape
    offsets = np.arange(rows)[:, None] * k
    pa = np.bincount((a + offsets).ravel(), minlength=rows * k).reshape(rows, k) / n
    pb = np.bincount((b + offsets).ravel(), minlength=rows * k).reshape(rows, k) / n
    return (a == b).mean(axis=1), (pa * pb).sum(axis=1)


def kappa_interval(a: np.ndarray, b: np.ndarray, k: int) -> list[float] | None:
    """A 95 % interval for kappa: the bootstrap's percentiles over the shared samples (those resamples
    where kappa is defined; None if under half are), or the normal approximation on many samples."""
    n = len(a)
    if n < 2:
        return None
    if n > _BOOTSTRAP_MAX:
        obs, chance = (float(v[0]) for v in _chance(a[None, :], b[None, :], k))
        if chance >= 1 - 1e-12:
            return None
        point, se = (obs - chance) / (1 - chance), math.sqrt(obs * (1 - obs) / n) / (1 - chance)
        return [max(-1.0, point - _Z * se), min(1.0, point + _Z * se)]
    idx = np.random.default_rng(0).integers(0, n, size=(_RESAMPLES, n))  # the same resamples for both
    po, pe = _chance(a[idx], b[idx], k)
    defined = pe < 1 - 1e-12
    if int(defined.sum()) < _RESAMPLES / 2:
        return None
    lo, hi = np.quantile((po[defined] - pe[defined]) / (1 - pe[defined]), [0.025, 0.975])
    return [float(lo), float(hi)]


def _per_class(pairs: list[tuple[str, str]], classes: list[str]) -> list[dict]:
    """For each class: of the shared samples either annotator called it, how many both did."""
    either: dict[str, int] = defaultdict(int)
    both: dict[str, int] = defaultdict(int)
    for x, y in pairs:
        for c in {x, y}:
            either[c] += 1
        both[x] += x == y
    return [{"class": c, "n": either[c], "agreeing": both[c], "agreement": both[c] / either[c],
             "agreement_ci": wilson(both[c], either[c]), "few_samples": either[c] < FEW}
            for c in classes if either[c]]


def _pair(names: tuple[str, str], pairs: list[tuple[str, str]], classes: list[str]) -> dict:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    index = {c: i for i, c in enumerate(classes)}
    agreeing, n = sum(x == y for x, y in pairs), len(pairs)
    return {"annotators": list(names), "n": n, "agreeing": agreeing, "agreement": agreeing / n,
            "agreement_ci": wilson(agreeing, n), "kappa": kappa(a, b),
            "kappa_ci": kappa_interval(np.array([index[x] for x in a]), np.array([index[y] for y in b]),
                                       len(classes)),
            "few_samples": n < FEW, "classes": _per_class(pairs, classes)}


def of_project(session: Session, project: Project) -> dict:
    """The dashboard's agreement: the second opinions' figures of before (``reviews.agreement``), the
    overlap and the samples awaiting a second opinion, then per pair and per class."""
    opinions: dict[int, dict[str, str]] = defaultdict(dict)
    for sid, _uid, name, label in review_repo.opinions_of_shared(session, project.id):
        opinions[sid][name] = label  # oldest first: each annotator's newest label stays
    shared: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for by in opinions.values():
        names = sorted(by)
        for i, x in enumerate(names):
            for y in names[i + 1:]:
                shared[(x, y)].append((by[x], by[y]))
    classes = list(project.classes) + sorted({lab for by in opinions.values() for lab in by.values()}
                                             - set(project.classes))
    everything = [p for pairs in shared.values() for p in pairs]
    rule = overlap.Rule(project)
    agreeing = sum(x == y for x, y in everything)
    return review_service.agreement(session, project.id) | {
        "overlap": rule.share, "overlap_classes": sorted(rule.classes),
        "awaiting_second": review_repo.awaiting_count(session, project.id),
        "shared": len(everything), "shared_agreement": agreeing / len(everything) if everything else None,
        "shared_agreement_ci": wilson(agreeing, len(everything)), "few_samples_below": FEW,
        "pairs": [_pair(names, pairs, classes) for names, pairs in sorted(shared.items())],
        "classes": _per_class(everything, classes)}
