"""Exemplar / instance discrimination by contrast: SimCLR (Chen, Kornblith, Norouzi and Hinton, "A Simple
Framework for Contrastive Learning of Visual Representations", ICML 2020), descending from exemplar
CNNs (Dosovitskiy et al. 2014: every image is its own class)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.augment import BatchAugment, contrastive_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod, mlp
from ml.ssl.multicrop import MultiCrop


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Normalised-temperature cross-entropy over two views.

    Each of the 2B embeddings must pick its other view among the 2B - 1 others, by softmax over
    cosine similarities divided by the temperature.

    Args:
        z1: (B, D) projections of view 1.
        z2: (B, D) projections of view 2 (row i is the positive of z1 row i).
        temperature: softmax temperature.

    Returns:
        Scalar loss averaged over the 2B anchors.
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))  # an embedding is never its own positive or negative
    targets = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, targets)


def default_local_crops(in_channels: int, image_size: int) -> int:
    """Four local crops for colour photographs of 48 px and more, none otherwise.

    On EuroSAT (64 px photographs, 5 CPU-minutes, docs/benchmarks.md) four local crops raised the
    100-label probe from 66.0 to 67.4 % (and the all-label one from 86.4 to 86.6 %) although each step
    costs about 1.5x; digits, scans and 32 px thumbnails keep the two views their figures were measured
    with (a half-size local crop of a 28 px digit is a stroke, not a part that speaks for the whole)."""
    return 4 if in_channels == 3 and image_size >= 48 else 0


class SimCLR(SSLMethod):
    """Two strongly augmented views of each image are pulled together, all others pushed apart.

    Args:
        backbone: network to pretrain.
        proj_hidden: hidden width of the projection MLP.
        proj_dim: output width of the projection (the loss is computed there; the embedding used
            downstream is the backbone's pooled output, before projection, which transfers better).
        temperature: NT-Xent temperature.
        augment: view augmentation (default: ``contrastive_augment``).
        n_local: local crops per image (multi-crop, ``ml.ssl.multicrop``); 0 keeps the original two views;
            None: ``default_local_crops``.

    Shapes: input (B, C, H, W) -> two views (B, C, H, W) -> projections (B, proj_dim) each -> scalar.
    """

    name = "simclr"
    default_lr = 3e-3
    default_batch_size = 256

    def __init__(
        self,
        backbone: Backbone,
        proj_hidden: int = 512,
        proj_dim: int = 128,
        temperature: float = 0.3,
        augment: BatchAugment | None = None,
        n_local: int | None = None,
    ) -> None:
        super().__init__(backbone)
        self.temperature = temperature
        self.augment = augment or contrastive_augment(backbone.in_channels)
        self.projector = mlp([backbone.out_dim, proj_hidden, proj_dim])
        if n_local is None:
            n_local = default_local_crops(backbone.in_channels, backbone.image_size)
        self.crops = MultiCrop(n_local=n_local, global_scale=self.augment.scale or (1.0, 1.0))

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        glob, loc = self.crops.views(x01, g, self.augment, self.backbone.image_size)
        # Both views go through the backbone as one batch so BatchNorm sees the same statistics.
        z1, z2 = self.projector(self.encode(torch.cat(glob))).chunk(2)
        loss = nt_xent_loss(z1, z2, self.temperature)
        if loc:  # multi-crop: each local crop's positive is either global view of its image
            for zl in self.projector(self.encode(torch.cat(loc))).chunk(len(loc)):
                loss = loss + 0.5 * (nt_xent_loss(zl, z1, self.temperature) + nt_xent_loss(zl, z2, self.temperature))
        return loss / (1 + len(loc))
