"""Fixtures for the self-supervised representation tests: real images from scikit-learn's digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _two_threads():
    # The suite shares a 2-core machine; more threads only add contention.
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits_28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (always installed) upscaled to 28 px uint8 (N, 28, 28) + labels."""
    from sklearn.datasets import load_digits

    from ml.images import prepare_array

    d = load_digits()
    small = np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return prepare_array(small, 28, 1)[..., 0], d.target


@pytest.fixture(scope="session")
def colour_32(digits_28) -> np.ndarray:
    """Colour 32 px images built from the digits (random foreground/background colours), (N, 32, 32, 3)."""
    from ml.images import prepare_array

    grey = prepare_array(digits_28[0][:512], 32, 1).astype(np.float32) / 255.0
    rng = np.random.default_rng(0)
    fg = rng.uniform(0, 1, (len(grey), 1, 1, 3))
    bg = rng.uniform(0, 1, (len(grey), 1, 1, 3))
    return (255 * (grey * fg + (1 - grey) * bg)).astype(np.uint8)
