"""ml.finetune: the backbone learns from labels, and the result embeds like any checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression


def _probe_accuracy(checkpoint, train_x, train_y, test_x, test_y) -> float:
    from ml.embedding import extract_embeddings

    a = extract_embeddings(checkpoint, train_x).astype(np.float32)
    b = extract_embeddings(checkpoint, test_x).astype(np.float32)
    return LogisticRegression(max_iter=2000).fit(a, train_y).score(b, test_y)


def test_finetuning_improves_the_embedding_for_held_out_images(digits_28):
    from ml.finetune import _start_from, finetune

    images, y = digits_28
    train_x, train_y, test_x, test_y = images[:150], y[:150], images[1000:1400], y[1000:1400]
    start, _ = _start_from(train_x, None, seed=0)
    seen = []
    tuned = finetune(train_x, train_y, 10, start, epochs=10, progress=lambda f, m: seen.append((f, m)))
    assert tuned.config["method"] == "finetune" and tuned.config["finetuned_from"] == "none"
    assert seen and seen[-1][0] == 1.0 and "loss" in seen[-1][1]
    before = _probe_accuracy(start, train_x, train_y, test_x, test_y)
    after = _probe_accuracy(tuned, train_x, train_y, test_x, test_y)
    # A random CNN's features already separate digits somewhat; trained on 150 labels they do much better.
    assert after > before + 0.05, (before, after)
    assert after > 0.8, after


def test_finetuning_refuses_what_it_cannot_learn_from(digits_28):
    from ml.finetune import finetune

    images, y = digits_28
    with pytest.raises(ValueError, match="at least 2 classes"):
        finetune(images[:20], np.zeros(20, dtype=int), 10)
    with pytest.raises(ValueError, match="20 images but 19 labels"):
        finetune(images[:20], y[:19], 10)
