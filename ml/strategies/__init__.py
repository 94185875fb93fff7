"""Query strategies behind one small registry: ``create_strategy(name, seed=0, **params)``.

Every strategy has ``score_all(embeddings, proba, labelled_mask, exclude_mask=None) -> (N,)`` and
``select(embeddings, proba, labelled_mask, batch_size, exclude_mask=None) -> Selection``.
"""

from __future__ import annotations

from .base import Selection, Strategy
from .diversity import ColdStartStrategy, KCenterGreedyStrategy
from .mixed import MixedStrategy, TypicalFirstStrategy
from .uncertainty import (
    EntropyStrategy,
    LeastConfidenceStrategy,
    MarginStrategy,
    RandomStrategy,
    entropy_uncertainty,
    least_confidence,
    margin_uncertainty,
)

DEFAULT_STRATEGY = "mixed"

_REGISTRY: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        RandomStrategy,
        LeastConfidenceStrategy,
        MarginStrategy,
        EntropyStrategy,
        KCenterGreedyStrategy,
        ColdStartStrategy,
        MixedStrategy,
        TypicalFirstStrategy,
    )
}


def list_strategies() -> list[str]:
    return sorted(_REGISTRY)


def create_strategy(name: str = DEFAULT_STRATEGY, seed: int = 0, **params) -> Strategy:
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; known: {', '.join(list_strategies())}") from None
    return cls(seed=seed, **params)


__all__ = [
    "DEFAULT_STRATEGY",
    "Selection",
    "Strategy",
    "create_strategy",
    "list_strategies",
    "entropy_uncertainty",
    "least_confidence",
    "margin_uncertainty",
]
