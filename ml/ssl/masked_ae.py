"""Masked / denoising autoencoding (Vincent et al. 2008, "Extracting and Composing Robust Features
with Denoising Autoencoders"; Pathak et al. 2016 context encoders; He et al. 2022 MAE's random patch
masking), adapted to a convolutional encoder."""

from __future__ import annotations

import torch
from torch import nn

from ml.augment import BatchAugment, light_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod


def random_patch_mask(b: int, size: int, patch: int, ratio: float, g: torch.Generator) -> torch.Tensor:
    """(b, 1, size, size) float mask, 1 where a pixel is hidden, in square patches of side ``patch``."""
    cells = -(-size // patch)
    mask = (torch.rand(b, 1, cells, cells, generator=g) < ratio).float()
    mask = mask.repeat_interleave(patch, 2).repeat_interleave(patch, 3)
    return mask[:, :, :size, :size]


def patch_normalised(x: torch.Tensor, patch: int, eps: float = 1e-6) -> torch.Tensor:
    """Each ``patch`` x ``patch`` cell (per channel) to zero mean and unit variance: MAE's normalised
    pixel target, which leaves the structure of a patch to predict rather than its mean colour."""
    b, c, h, w = x.shape
    ph, pw = -(-h // patch) * patch, -(-w // patch) * patch
    padded = nn.functional.pad(x, (0, pw - w, 0, ph - h), mode="replicate")
    cells = padded.view(b, c, ph // patch, patch, pw // patch, patch)
    mean = cells.mean(dim=(3, 5), keepdim=True)
    var = cells.var(dim=(3, 5), keepdim=True, unbiased=False)
    out = ((cells - mean) / (var + eps).sqrt()).view(b, c, ph, pw)
    return out[:, :, :h, :w]


class MaskedAutoencoder(SSLMethod):
    """Hide random square patches (and add noise), then rebuild the clean image from the deepest block.

    The decoder reads only the last block's map (no skip connections), so everything needed to
    restore the hidden parts has to pass through the representation we keep.

    Args:
        backbone: network to pretrain.
        mask_ratio: fraction of patches hidden.
        patch: mask patch side in pixels (default: image side / 7).
        noise_std: std of Gaussian noise added to the visible pixels (in normalised units).
        visible_weight: loss weight of visible pixels (masked pixels weigh 1).
        norm_pix: reconstruct each mask patch normalised to zero mean and unit variance (MAE's
            ``norm_pix_loss``) instead of the pixels themselves.
        augment: augmentation before masking.

    Shapes: input (B, C, H, W) -> last map (B, D, h, w) -> reconstruction (B, C, H, W) -> scalar MSE.
    """

    name = "masked_ae"

    def __init__(
        self,
        backbone: Backbone,
        mask_ratio: float = 0.5,
        patch: int | None = None,
        noise_std: float = 0.2,
        visible_weight: float = 0.1,
        norm_pix: bool = False,
        augment: BatchAugment | None = None,
    ) -> None:
        super().__init__(backbone)
        self.mask_ratio = mask_ratio
        self.patch = patch or max(2, backbone.image_size // 7)
        self.noise_std = noise_std
        self.visible_weight = visible_weight
        self.norm_pix = norm_pix
        self.augment = augment or light_augment(backbone.in_channels)
        c = backbone.in_channels
        layers: list[nn.Module] = [nn.Conv2d(backbone.out_dim, 128, 1), nn.ReLU(inplace=True)]
        width = 128
        # One 2x upsampling per pooling stage of the encoder (len(blocks) - 1).
        for _ in range(len(backbone.blocks) - 1):
            nxt = max(32, width // 2)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, nxt, 3, padding=1),
                       nn.BatchNorm2d(nxt), nn.ReLU(inplace=True)]
            width = nxt
        layers.append(nn.Conv2d(width, c, 3, padding=1))
        self.decoder = nn.Sequential(*layers)

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        clean = self.backbone.normalize(self.view(x01, g))
        b, _, h, w = clean.shape
        mask = random_patch_mask(b, h, self.patch, self.mask_ratio, g).to(clean.device, clean.dtype)
        noise = torch.randn(clean.shape, generator=g).to(clean.device, clean.dtype) * self.noise_std
        # Hidden pixels become 0, the dataset mean in normalised units.
        corrupted = (clean + noise) * (1 - mask)
        recon = self.decoder(self.backbone.forward_blocks(corrupted)[-1])
        recon = nn.functional.interpolate(recon, size=(h, w), mode="bilinear", align_corners=False)
        target = patch_normalised(clean.float(), self.patch) if self.norm_pix else clean.float()
        err = (recon.float() - target).pow(2).mean(1, keepdim=True)
        weight = mask + self.visible_weight * (1 - mask)
        return (err * weight).sum() / weight.sum()
