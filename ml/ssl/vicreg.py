"""Variance-invariance-covariance regularisation: VICReg (Bardes, Ponce and LeCun, "VICReg:
Variance-Invariance-Covariance Regularization for Self-Supervised Learning", ICLR 2022), with multi-crop.

Non-contrastive: no negatives, so no large batch is needed (a CPU's 256 is fine), no momentum encoder
(one forward per view, as SimCLR), and collapse is prevented explicitly by keeping every dimension's
standard deviation up and the dimensions decorrelated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ml.augment import BatchAugment, contrastive_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod, mlp
from ml.ssl.multicrop import MultiCrop


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Hinge on each dimension's standard deviation over the batch: mean(relu(1 - std)). z: (B, D)."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal covariances over the batch, divided by D. z: (B, D)."""
    b, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.t() @ zc) / max(1, b - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d


def vicreg_loss(z_a: torch.Tensor, z_b: torch.Tensor, inv: float = 25.0, var: float = 25.0,
                cov: float = 1.0) -> torch.Tensor:
    """VICReg between two views.

    Args:
        z_a: (B, D) expanded embeddings of view a.
        z_b: (B, D) of view b (row i is the same image as row i of z_a).
        inv, var, cov: the paper's weights (lambda, mu, nu).

    Returns:
        Scalar: inv * MSE(z_a, z_b) + var * (v(z_a) + v(z_b)) / 2 + cov * (c(z_a) + c(z_b)).
    """
    z_a, z_b = z_a.float(), z_b.float()
    return (inv * F.mse_loss(z_a, z_b) + var * 0.5 * (variance_term(z_a) + variance_term(z_b))
            + cov * (covariance_term(z_a) + covariance_term(z_b)))


class VICReg(SSLMethod):
    """Views of one image are made to agree while each dimension keeps its variance and stays
    decorrelated from the others; with ``n_local`` > 0 every local crop must agree with both global ones.

    Args:
        backbone: network to pretrain.
        expander: widths of the expander MLP after the backbone (the paper uses 8192 x 3; 1024 x 3 is
            what a CPU budget affords, and was as good at this scale).
        inv, var, cov: loss weights.
        n_local: local crops per image (multi-crop).
        augment: view augmentation (default: ``contrastive_augment``).

    Shapes: input (B, C, H, W) -> 2 global views (B, C, s, s) + n_local (B, C, s/2, s/2) -> (B, D) each
    -> scalar, averaged over the (global, global) pair and every (local, global) pair.
    """

    name = "vicreg"
    default_lr = 2e-3
    default_batch_size = 256

    def __init__(self, backbone: Backbone, expander: tuple[int, ...] = (1024, 1024, 1024), inv: float = 25.0,
                 var: float = 25.0, cov: float = 1.0, n_local: int = 4, augment: BatchAugment | None = None) -> None:
        super().__init__(backbone)
        self.inv, self.var, self.cov = inv, var, cov
        self.crops = MultiCrop(n_local=n_local)
        self.augment = augment or contrastive_augment(backbone.in_channels)
        self.expander = mlp([backbone.out_dim, *expander])

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        glob, loc = self.crops.views(x01, g, self.augment, self.backbone.image_size)
        # Views of one side go through the backbone as one batch (one set of BatchNorm statistics).
        z1, z2 = self.expander(self.encode(torch.cat(glob))).chunk(2)
        loss = vicreg_loss(z1, z2, self.inv, self.var, self.cov)
        if loc:
            for zl in self.expander(self.encode(torch.cat(loc))).chunk(len(loc)):
                loss = loss + 0.5 * (vicreg_loss(zl, z1, self.inv, self.var, self.cov)
                                     + vicreg_loss(zl, z2, self.inv, self.var, self.cov))
        return loss / (1 + len(loc))
