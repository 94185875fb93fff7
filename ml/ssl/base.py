"""What every self-supervised method shares: a backbone, an augmentation, and ``forward -> loss``."""

from __future__ import annotations

import torch
from torch import nn

from ml.augment import BatchAugment
from ml.backbones.base import Backbone


def mlp(dims: list[int], last_bn: bool = False) -> nn.Sequential:
    """Linear-BN-ReLU stack; the last Linear is bare (optionally followed by BN, as SimCLR v2 does)."""
    layers: list[nn.Module] = []
    for i in range(len(dims) - 2):
        layers += [nn.Linear(dims[i], dims[i + 1], bias=False), nn.BatchNorm1d(dims[i + 1]), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if last_bn:
        layers.append(nn.BatchNorm1d(dims[-1]))
    return nn.Sequential(*layers)


class SSLMethod(nn.Module):
    """Base of the pretext tasks. Subclasses implement ``loss_and_stats``.

    Args:
        backbone: the network being pretrained; only its weights are kept afterwards.

    A method sees the raw batch in [0, 1] so that it can augment before normalising (augmentations
    are defined on pixel values); ``self.backbone.normalize`` then standardises.
    """

    name = "base"
    augment: BatchAugment
    # Learning rate and batch size that suit the method with AdamW, used when the caller names none.
    default_lr = 2e-3
    default_batch_size = 256

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def encode(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] to (B, D) pooled last-block features."""
        return self.backbone(self.backbone.normalize(x01))

    def view(self, x01: torch.Tensor, g: torch.Generator, augment: BatchAugment | None = None,
             size: int | None = None) -> torch.Tensor:
        """One augmented view of the batch at ``size`` (default: the backbone's input side), whatever the
        side of ``x01``: methods are fed working copies larger than the input, and crop from them."""
        return (augment or self.augment)(x01, g, size or self.backbone.image_size)

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Pretext loss for one batch.

        Args:
            x01: (B, C, H, W) float images in [0, 1].
            g: CPU generator for every random choice (augmentation, masks, permutations).

        Returns:
            Scalar loss.
        """
        raise NotImplementedError
