"""Fine-tune a backbone on the project's labels, end to end, and hand back a checkpoint to embed with.

Pretraining never sees a label; once experts have given a few hundred, adapting the features themselves
(not only the estimator's boundary inside a frozen embedding) usually pays. The result is an ordinary
``ml.training.Checkpoint``, so embedding, the estimators and the strategies use it like any other backbone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict, Unpack

import numpy as np

from ml.checkpoint import Checkpoint

if TYPE_CHECKING:
    from ml.estimators.finetune import FineTuneClassifier


def _start_from(images: np.ndarray, checkpoint: Checkpoint | None, seed: int) -> tuple[Checkpoint, np.ndarray]:
    """The checkpoint to start from (a fresh backbone when there is none) and the images at its input."""
    from ml.images import as_nhwc, prepare_array

    if checkpoint is not None:
        cfg = checkpoint.config
        return checkpoint, prepare_array(as_nhwc(images), cfg["image_size"], cfg["in_channels"])
    import torch

    from ml.backbones import create_backbone
    from ml.pretrain import describe_input

    config, arr = describe_input(images)
    torch.manual_seed(seed)
    net = create_backbone(config["backbone"], config["in_channels"], config["image_size"])
    net.set_normalization(config["norm_mean"], config["norm_std"])
    return Checkpoint({**config, "method": "none"}, net.state_dict()), arr


class Options(TypedDict, total=False):
    """``finetune``'s keyword arguments: ``finetune_classifier``'s, passed on (their defaults are there)."""

    epochs: int
    lr: float
    seed: int
    device: str | None
    progress: Callable[[float, str], None] | None


def finetune(images: np.ndarray, labels: np.ndarray, n_classes: int, checkpoint: Checkpoint | None = None,
             **options: Unpack[Options]) -> Checkpoint:
    """Train backbone + a linear head with cross-entropy on labelled images; return the backbone.

    Args:
        images: (N, H, W[, C]) uint8, the labelled images (any size: they are brought to the input).
        labels: (N,) class indices in [0, n_classes).
        checkpoint: where to start (a self-supervised backbone); None starts from random weights.
        options: ``finetune_classifier``'s: epochs, lr, seed, device (as
            ``ml.estimators.finetune.FineTuneClassifier``) and progress, a callable(fraction, message).

    Returns:
        A checkpoint of the fine-tuned backbone (no head: the project's estimator is fitted on its
        embeddings), ``config["method"] == "finetune"`` and the starting method in ``finetuned_from``.
    """
    est = finetune_classifier(images, labels, n_classes, checkpoint, **options)
    return backbone_checkpoint(est, len(labels))


def backbone_checkpoint(est: FineTuneClassifier, n_labels: int) -> Checkpoint:
    """A fitted ``finetune_classifier``'s backbone as a checkpoint to embed with (its head left out)."""
    start = est.checkpoint
    state = {k: v.detach().cpu().clone() for k, v in est.net_.state_dict().items()}
    config = {**start.config, "method": "finetune", "finetuned_from": start.config.get("method")}
    return Checkpoint(config, state, state={"labels": int(n_labels), "steps": int(est.n_iter_),
                                            "loss": float(est.loss_), "done": True})


def finetune_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    checkpoint: Checkpoint | None = None,
    *,
    epochs: int = 20,
    lr: float = 3e-4,
    seed: int = 0,
    device: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> FineTuneClassifier:
    """What ``finetune`` trains, head included: the fitted classifier (its ``checkpoint`` the start, its
    input flattened images at the start's size; bench/finetune_gain.py weighs its head against the probe)."""
    from ml.estimators.finetune import FineTuneClassifier

    labels = np.asarray(labels, dtype=np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(np.unique(labels)) < 2:
        raise ValueError("fine-tuning needs labels of at least 2 classes")
    start, arr = _start_from(images, checkpoint, seed)
    est = FineTuneClassifier(checkpoint=start, n_classes=n_classes, epochs=epochs, lr=lr, seed=seed, device=device)
    report = None if progress is None else (lambda f, loss: progress(f, f"loss {loss:.4f}"))
    return est.fit(arr.reshape(len(arr), -1), labels, progress=report)
