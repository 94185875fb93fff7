"""Relative patch location (Doersch, Gupta and Efros, "Unsupervised Visual Representation Learning by
Context Prediction", ICCV 2015)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.augment import BatchAugment, light_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod, mlp
from ml.ssl.patches import extract_patches, patch_out_size

NEIGHBOURS = torch.tensor([0, 1, 2, 3, 5, 6, 7, 8])  # the 8 cells around the centre of a 3x3 grid


class RelativePatchLocation(SSLMethod):
    """Given the centre patch of a 3x3 grid and one neighbour, predict which of the 8 it is.

    Both patches go through the shared backbone (a siamese pair); their pooled features are
    concatenated and classified by a small MLP. The grid is always 3x3 (eight neighbours, as in the
    paper); patch size follows the image (a cell minus a jittered gap, resampled to
    ``patch_out_size``).

    Args:
        backbone: network to pretrain.
        hidden: width of the pair-classifier head.
        augment: augmentation of the whole image before cutting patches.

    Shapes: input (B, C, H, W) -> patches (2B, C, P, P) -> pair features (B, 2D) -> logits (B, 8).
    """

    name = "relative_patch"
    default_batch_size = 256

    def __init__(self, backbone: Backbone, hidden: int = 512, augment: BatchAugment | None = None) -> None:
        super().__init__(backbone)
        self.augment = augment or light_augment(backbone.in_channels)
        self.patch_size = patch_out_size(backbone.image_size)
        self.head = mlp([2 * backbone.out_dim, hidden, 8])

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b = len(x01)
        labels = torch.randint(0, 8, (b,), generator=g)
        cells = torch.stack([torch.full((b,), 4), NEIGHBOURS[labels]], dim=1)
        patches = extract_patches(self.view(x01, g), cells, 3, g, out_size=self.patch_size)
        feats = self.encode(patches).reshape(b, -1)
        return F.cross_entropy(self.head(feats), labels.to(x01.device))
