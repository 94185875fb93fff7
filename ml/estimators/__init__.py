"""Estimators on embeddings behind a small registry: ``create_estimator(name, **params)``.

All follow scikit-learn's conventions and accept ``n_classes`` so ``predict_proba`` has one column per
project class from the first label on. Semi-supervised ones (label spreading, co-training) read
``y == -1`` as "unlabelled, but part of the pool".
"""

from __future__ import annotations

from .base import UNLABELLED, LoupeClassifier
from .cotraining import CoTraining
from .probe import LogisticProbe
from .spreading import LabelSpreadingKNN, knn_graph

DEFAULT_ESTIMATOR = "logistic"

_REGISTRY: dict[str, type] = {
    "logistic": LogisticProbe,
    "label_spreading": LabelSpreadingKNN,
    "co_training": CoTraining,
}


def _finetune_cls():
    # Imported lazily: fine-tuning needs torch and the backbones of ml.backbones, which a CPU worker that
    # only fits probes should not have to import.
    from .finetune import FineTuneClassifier

    return FineTuneClassifier


_LAZY = {"finetune": _finetune_cls}


def list_estimators() -> list[str]:
    return sorted([*_REGISTRY, *_LAZY])


def create_estimator(name: str = DEFAULT_ESTIMATOR, **params):
    if name in _REGISTRY:
        return _REGISTRY[name](**params)
    if name in _LAZY:
        return _LAZY[name]()(**params)
    raise KeyError(f"unknown estimator {name!r}; known: {', '.join(list_estimators())}")


__all__ = [
    "DEFAULT_ESTIMATOR",
    "UNLABELLED",
    "CoTraining",
    "LabelSpreadingKNN",
    "LogisticProbe",
    "LoupeClassifier",
    "create_estimator",
    "knn_graph",
    "list_estimators",
]
