"""Rotation prediction (Gidaris, Singh and Komodakis, "Unsupervised Representation Learning by
Predicting Image Rotations", ICLR 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.augment import BatchAugment, light_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod, mlp


def rotate_all(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image at 0, 90, 180 and 270 degrees.

    Args:
        x: (B, C, H, W) with H == W.

    Returns:
        (4B, C, H, W) rotated images (all of rotation 0 first, then 90, ...) and (4B,) labels 0-3.
    """
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=x.device).repeat_interleave(len(x))
    return rotated, labels


class RotationPrediction(SSLMethod):
    """Classify which of four rotations was applied; recognising "upright" requires knowing objects.

    As in the paper, every image appears in all four rotations in the same batch, which keeps the
    batch balanced over labels and was found better than sampling one rotation per image.

    Args:
        backbone: network to pretrain.
        hidden: width of the MLP head on the pooled features.
        augment: augmentation applied before rotating (default: mild crop and jitter).

    Shapes: input (B, C, H, W) -> logits (4B, 4) -> scalar cross-entropy.
    """

    name = "rotation"
    default_batch_size = 128  # x4 after rotation

    def __init__(self, backbone: Backbone, hidden: int = 256, augment: BatchAugment | None = None) -> None:
        super().__init__(backbone)
        self.augment = augment or light_augment(backbone.in_channels)
        self.head = mlp([backbone.out_dim, hidden, 4])

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        x, labels = rotate_all(self.view(x01, g))
        return F.cross_entropy(self.head(self.encode(x)), labels)
