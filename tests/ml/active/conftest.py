"""A tiny real pool (scikit-learn's bundled digits, always present) shared by the active-learning tests."""

import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def digits_state(digits):
    """The pool after 40 random labels: a labelled mask and a fitted probe's probabilities."""
    from ml.estimators import LogisticProbe

    X, y = digits
    labelled = np.zeros(len(y), dtype=bool)
    labelled[np.random.default_rng(0).choice(len(y), 40, replace=False)] = True
    proba = LogisticProbe(n_classes=10).fit(X[labelled], y[labelled]).predict_proba(X)
    return labelled, proba
