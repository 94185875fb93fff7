"""Why the queue asks for a sample, in the expert's words, with the technical detail beside it.

The train job stores a short code per pick (``ml/strategies/reasons.py``: ``torn;a=3;b=8;pa=0.41;...``);
this turns it into a sentence with the project's class names ("The model is torn between cassette
player (41%) and chain saw (38%)") and a line of figures for whoever wants them (a click away in the
label view). Pure string work: no query, so the queue call stays lean."""

from __future__ import annotations

_RANDOM = ("Picked at random: there is no model yet to say what is worth asking.",)
AUDIT = ("A random audit sample: its label measures the model's accuracy honestly.",
         "audit pool: a uniform random sample, never chosen by the strategy")
SECOND = ("A second opinion: another annotator labelled this sample; label it as you see it (their label is "
          "not shown).", "overlap: the project's share of samples labelled by two annotators, for their agreement")


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _fields(code: str) -> tuple[str, dict[str, str]]:
    kind, *parts = code.split(";")
    return kind, dict(p.split("=", 1) for p in parts if "=" in p)


def _cls(classes: list[str], i: str) -> str:
    try:
        return classes[int(i)]
    except (ValueError, IndexError):
        return f"class {i}"


def explain(code: str | None, classes: list[str], strategy: str, suggestion: tuple[str, float] | None = None
            ) -> tuple[str | None, str | None]:
    """(words, details) for a stored reason code; for an item without one (past the reasoned part of
    the queue, or an older version), what its place in the queue says."""
    if not code:
        if strategy in ("random", "cold_start"):
            if strategy == "random":
                return _RANDOM[0], "uniform random order"
            return "A typical example of a group, chosen before any model exists.", "cold start, typicality order"
        if suggestion:
            label, conf = suggestion
            return (f"Next in the model's order of what is worth asking; its best guess, {label}, "
                    f"has {_pct(conf)}.", f"{strategy}: ranked by score, past the selected batch")
        return None, None
    kind, f = _fields(code)
    try:
        return _WORDS[kind](f, classes)
    except (KeyError, ValueError):  # a reason written by an older version: shown as it was
        return None, code


def _torn(f: dict, classes: list[str]) -> tuple[str, str]:
    a, b, pa, pb = _cls(classes, f["a"]), _cls(classes, f["b"]), float(f["pa"]), float(f["pb"])
    if pb >= 0.15:
        words = f"The model is torn between {a} ({_pct(pa)}) and {b} ({_pct(pb)})."
    else:
        words = f"The model is unsure: its best guess, {a}, has only {_pct(pa)}."
    if f.get("diverse") == "1":
        words += " It also differs from the others asked in this batch."
    detail = (f"{f.get('measure', 'uncertainty')} uncertainty {float(f.get('score', 0)):.3f}; "
              f"top two: {a} {pa:.3f}, {b} {pb:.3f}")
    if f.get("diverse") == "1":
        detail += "; picked as its cluster's representative (diverse batch)"
    return words, detail


def _group(f: dict, classes: list[str]) -> tuple[str, str]:
    n = int(f["labelled"])
    words = ("A typical example of a group nobody has labelled yet." if n == 0 else
             f"A typical example of a group with only {n} label{'s' if n != 1 else ''} so far.")
    return words, f"cold start: embedding cluster {f['cluster']}, {f['size']} samples, {n} labelled"


_WORDS = {
    "torn": _torn,
    "group": _group,
    "typical": lambda f, c: ("A typical example of its group, asked while the model is still too new to trust.",
                             f"cold start: typicality {float(f['score']):.3f}"),
    "far": lambda f, c: ("Unlike anything labelled so far.",
                         f"k-center: squared distance {float(f['d2']):.3f} to the nearest label"),
    "random": lambda f, c: (_RANDOM[0], "uniform random pick"),
}
