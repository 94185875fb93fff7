"""The raw-pixel baseline: downsampled greyscale pixels and a logistic regression.

It is the estimator of last resort (no backbone yet) and the baseline every learned representation
must beat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps
from sklearn.linear_model import LogisticRegression


def pixel_features(paths: Sequence[str], size: int = 16,
                   progress: Callable[[float], None] | None = None) -> np.ndarray:
    """(N, size*size) float32 in [0, 1]: each image upright, greyscale, resized."""
    out = np.empty((len(paths), size * size), dtype=np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as opened:
            img = ImageOps.exif_transpose(opened)
            if img.mode.startswith("I") or img.mode == "F":
                arr = np.asarray(img, dtype=np.float32)
                img = Image.fromarray((arr * (255.0 / max(float(arr.max()), 1.0))).astype(np.uint8))
            grey = img.convert("L").resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(grey, dtype=np.float32).reshape(-1) / 255.0
        if progress is not None and i % 256 == 0:
            progress(i / max(len(paths), 1))
    return out


def fit_predict_proba(X_train: np.ndarray, y_train: np.ndarray, X_all: np.ndarray, n_classes: int,
                      seed: int = 0) -> np.ndarray:
    """(N, n_classes) class probabilities for ``X_all``; classes never labelled get probability 0."""
    seen = np.unique(y_train)
    proba = np.zeros((len(X_all), n_classes), dtype=np.float32)
    if len(seen) == 1:
        proba[:, seen[0]] = 1.0
        return proba
    model = LogisticRegression(max_iter=1000, C=1.0, random_state=seed).fit(X_train, y_train)
    proba[:, model.classes_] = model.predict_proba(X_all)
    return proba
