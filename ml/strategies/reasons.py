"""Why a sample was picked, as a short code: ``kind;key=value;...``.

Codes, not sentences: the API turns them into the expert's words with the project's class names
(``app/services/reasons.py``: "the model is torn between 3 and 8") and shows the code's figures as the
technical detail one click away. Classes are column indices of ``proba``, never names (names live with
the project and may contain any character). Kinds:

* ``torn``: the model hesitates between classes ``a`` and ``b`` (probabilities ``pa``, ``pb``);
  ``measure`` and ``score`` are the uncertainty that ranked it; ``diverse=1`` when it was also picked to
  differ from the rest of its batch.
* ``group``: a typical member of embedding cluster ``cluster`` (``size`` samples, ``labelled`` of them
  labelled) before the model is trusted.
* ``typical``: high in the cold start's typicality order, past its first batch.
* ``far``: far from everything labelled (squared distance ``d2``).
* ``random``: a uniform random pick (no model yet for an uncertainty strategy).
"""

from __future__ import annotations

import numpy as np


def code(kind: str, **fields) -> str:
    parts = [kind]
    for key, value in fields.items():
        parts.append(f"{key}={value:.3f}" if isinstance(value, float) else f"{key}={value}")
    return ";".join(parts)


def torn(proba: np.ndarray, rows: np.ndarray, measure: str, scores: np.ndarray, **extra) -> list[str]:
    """``torn`` codes for ``rows`` of ``proba``: its two likeliest classes and how likely each is."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return []
    p = np.asarray(proba[rows], dtype=np.float64)
    top2 = np.argsort(-p, axis=1, kind="stable")[:, :2] if p.shape[1] > 1 else np.zeros((len(rows), 2), np.int64)
    out = []
    for r, (a, b), s in zip(range(len(rows)), top2, np.asarray(scores, dtype=np.float64), strict=True):
        out.append(code("torn", a=int(a), b=int(b), pa=float(p[r, a]), pb=float(p[r, b]), measure=measure,
                        score=float(s), **extra))
    return out


def past_batch(proba: np.ndarray | None, rows: np.ndarray, chosen_by: str, measure: str,
               scores: np.ndarray) -> list[str]:
    """Codes for queue items past the selected batch (served in score order until the next model):
    what ranks them there, in the terms of what chose the batch."""
    rows = np.asarray(rows, dtype=np.int64)
    if proba is not None and chosen_by not in ("random", "cold_start", "kcenter"):
        return torn(proba, rows, measure, np.asarray(scores)[rows])
    if chosen_by == "cold_start":
        return [code("typical", score=float(s)) for s in np.asarray(scores)[rows]]
    if chosen_by == "kcenter":
        return [code("far", d2=float(s)) for s in np.asarray(scores)[rows]]
    return [code("random")] * len(rows)
