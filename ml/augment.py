"""Batched tensor augmentation: one set of tensor ops for the whole batch, on whatever device it is.

Per-image PIL pipelines (lightly's, torchvision's v1 transforms) spent about 40% of a CPU pretraining
budget in Python. Here a batch (B, C, H, W) in [0, 1] is cropped, flipped, rotated and rescaled by a
single ``affine_grid``/``grid_sample``, and photometric changes are per-sample scalars or 3x3 colour
matrices broadcast over the batch. Random numbers come from an explicit ``torch.Generator`` (on the
CPU, then moved), so a seeded run is reproducible on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def _bernoulli(n: int, p: float, g: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=g) < p).float()


def random_affine_params(
    n: int,
    g: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
    degrees: float = 0.0,
) -> torch.Tensor:
    """Per-sample affine matrices for random-resized-crop (+ flip, + rotation), as ``affine_grid`` wants.

    Args:
        n: batch size.
        g: CPU generator.
        scale: range of the crop's area as a fraction of the image.
        ratio: range of the crop's aspect ratio.
        flip_p: probability of a horizontal flip.
        degrees: maximum absolute rotation.

    Returns:
        (n, 2, 3) float32 theta mapping output coordinates to input coordinates in [-1, 1].
    """
    area = _uniform(n, scale[0], scale[1], g)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g)
    r = torch.exp(log_r)
    # Half-extents of the crop in normalised coordinates; clamping keeps the crop inside the image.
    sx = torch.sqrt(area * r).clamp(max=1.0)
    sy = torch.sqrt(area / r).clamp(max=1.0)
    tx = (torch.rand(n, generator=g) * 2 - 1) * (1 - sx)
    ty = (torch.rand(n, generator=g) * 2 - 1) * (1 - sy)
    flip = 1 - 2 * _bernoulli(n, flip_p, g)
    angle = _uniform(n, -degrees, degrees, g) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * cos * flip
    theta[:, 0, 1] = -sy * sin
    theta[:, 1, 0] = sx * sin * flip
    theta[:, 1, 1] = sy * cos
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    return theta


def apply_affine(x: torch.Tensor, theta: torch.Tensor, out_size: int | None = None) -> torch.Tensor:
    """Resample a batch through per-sample affine maps (bilinear, zeros outside).

    A crop that shrinks its source by more than 1.5x (a whole working copy at twice the input side, say)
    is sampled from a 2x2-averaged copy of the batch instead: bilinear sampling alone would alias, and the
    embedding side resizes with an antialiased filter, so training would see sharper, noisier pixels than
    the features are later computed on.

    Args:
        x: (B, C, H, W) float.
        theta: (B, 2, 3) from ``random_affine_params`` or any crop box.
        out_size: output side; defaults to H.

    Returns:
        (B, C, out_size, out_size).
    """
    b, c, h, _ = x.shape
    side = out_size or h
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, [b, c, side, side], align_corners=False)
    # Source pixels per output pixel along each axis: the crop's half-extent (column norm of theta) x H / side.
    shrink = theta[:, :, :2].norm(dim=1).min(dim=1).values * h / side
    coarse = shrink > 1.5
    if h < 4 or not bool(coarse.any()):
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Each sample is resampled once, from the full batch or from its 2x2-averaged copy.
    out = x.new_empty((b, c, side, side))
    fine = ~coarse
    if bool(fine.any()):
        out[fine] = F.grid_sample(x[fine], grid[fine], mode="bilinear", padding_mode="zeros", align_corners=False)
    half = F.avg_pool2d(x[coarse], 2, ceil_mode=True)
    out[coarse] = F.grid_sample(half, grid[coarse], mode="bilinear", padding_mode="zeros", align_corners=False)
    return out


def crop_boxes_theta(x0: torch.Tensor, y0: torch.Tensor, w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Affine matrices that crop boxes given in [0, 1] image fractions (left, top, width, height)."""
    theta = torch.zeros(len(x0), 2, 3)
    theta[:, 0, 0] = w
    theta[:, 1, 1] = h
    theta[:, 0, 2] = 2 * x0 + w - 1
    theta[:, 1, 2] = 2 * y0 + h - 1
    return theta


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _hue_matrices(h: torch.Tensor) -> torch.Tensor:
    """(n,) hue shifts in turns to (n, 3, 3) RGB rotation matrices about the grey axis (YIQ rotation)."""
    angle = h * 2 * math.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    k = 1.0 / 3.0
    s3 = math.sqrt(k)
    m = torch.empty(len(h), 3, 3)
    # Rodrigues' rotation about (1,1,1)/sqrt(3): cheap, and keeps grey pixels grey.
    m[:, 0, 0] = cos + (1 - cos) * k
    m[:, 0, 1] = k * (1 - cos) - s3 * sin
    m[:, 0, 2] = k * (1 - cos) + s3 * sin
    m[:, 1, 0] = k * (1 - cos) + s3 * sin
    m[:, 1, 1] = cos + k * (1 - cos)
    m[:, 1, 2] = k * (1 - cos) - s3 * sin
    m[:, 2, 0] = k * (1 - cos) - s3 * sin
    m[:, 2, 1] = k * (1 - cos) + s3 * sin
    m[:, 2, 2] = cos + k * (1 - cos)
    return m


@dataclass
class BatchAugment:
    """A SimCLR-style augmentation applied to a whole batch at once.

    Args:
        scale: random-resized-crop area range (``None`` skips geometry).
        ratio: crop aspect-ratio range.
        flip_p: horizontal-flip probability (0 for digits and text, where a flip changes the class).
        degrees: maximum rotation.
        jitter_p: probability that a sample gets colour jitter.
        brightness: multiplicative brightness range +-.
        contrast: contrast blend range +-.
        saturation: saturation blend range +- (colour only).
        hue: hue shift range +- in turns (colour only).
        grayscale_p: probability of dropping colour.
        noise_std: maximum std of additive Gaussian noise (per-sample uniform in [0, noise_std]).
        erase_p: probability of blanking one random rectangle (cutout).
    """

    scale: tuple[float, float] | None = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    degrees: float = 0.0
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    grayscale_p: float = 0.2
    noise_std: float = 0.0
    erase_p: float = 0.0

    def __call__(self, x: torch.Tensor, g: torch.Generator, out_size: int | None = None) -> torch.Tensor:
        """Augment (B, C, H, W) float in [0, 1].

        Args:
            x: the batch, at the backbone's input side or larger (a working copy at twice the input
                side keeps detail that a crop can zoom into).
            g: CPU generator.
            out_size: side of the views returned (default H); a batch of another side is always cropped
                or resized to it, even with ``scale=None``.

        Returns:
            (B, C, out_size, out_size) in [0, 1].
        """
        b, c = x.shape[:2]
        dev = x.device
        side = out_size or x.shape[-1]
        if self.scale is not None:
            theta = random_affine_params(b, g, self.scale, self.ratio, self.flip_p, self.degrees)
            x = apply_affine(x, theta, side)
        elif side != x.shape[-1]:
            x = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        if self.jitter_p > 0:
            on = _bernoulli(b, self.jitter_p, g)
            bright = 1 + on * _uniform(b, -self.brightness, self.brightness, g)
            contr = 1 + on * _uniform(b, -self.contrast, self.contrast, g)
            x = x * bright.to(dev).view(b, 1, 1, 1)
            mean = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * contr.to(dev).view(b, 1, 1, 1) + mean
            if c == 3:
                sat = 1 + on * _uniform(b, -self.saturation, self.saturation, g)
                grey = _grey(x)
                x = (x - grey) * sat.to(dev).view(b, 1, 1, 1) + grey
                if self.hue > 0:
                    m = _hue_matrices(on * _uniform(b, -self.hue, self.hue, g)).to(dev, x.dtype)
                    x = torch.einsum("bij,bjhw->bihw", m, x)
            x = x.clamp(0, 1)
        if c == 3 and self.grayscale_p > 0:
            drop = _bernoulli(b, self.grayscale_p, g).to(dev).view(b, 1, 1, 1)
            x = drop * _grey(x).expand_as(x) + (1 - drop) * x
        if self.noise_std > 0:
            std = _uniform(b, 0, self.noise_std, g).to(dev).view(b, 1, 1, 1)
            noise = torch.randn(x.shape, generator=g).to(dev, x.dtype)
            x = (x + std * noise).clamp(0, 1)
        if self.erase_p > 0:
            x = random_erase(x, g, self.erase_p)
        return x


def random_erase(x: torch.Tensor, g: torch.Generator, p: float, max_frac: float = 0.4) -> torch.Tensor:
    """Blank one random rectangle per selected sample with its mean (cutout), batched via a mask."""
    b, _, h, w = x.shape
    on = _bernoulli(b, p, g)
    eh = (_uniform(b, 0.1, max_frac, g) * h).long().clamp(min=1)
    ew = (_uniform(b, 0.1, max_frac, g) * w).long().clamp(min=1)
    y0 = (torch.rand(b, generator=g) * (h - eh + 1)).long()
    x0 = (torch.rand(b, generator=g) * (w - ew + 1)).long()
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    mask = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1)) & (xs >= x0.view(b, 1, 1))
            & (xs < (x0 + ew).view(b, 1, 1)) & (on.view(b, 1, 1) > 0))
    mask = mask.unsqueeze(1).to(x.device, x.dtype)
    fill = x.mean(dim=(2, 3), keepdim=True)
    return x * (1 - mask) + fill * mask


def contrastive_augment(channels: int) -> BatchAugment:
    """Strong two-view augmentation: SimCLR's CIFAR recipe for colour; crops/rotation/noise for grey.

    Greyscale small images are usually digits, characters or scans, where flips change meaning and
    colour is absent, so the invariances that are left are position, scale, slant, stroke contrast.
    """
    if channels == 1:
        return BatchAugment(scale=(0.35, 1.0), ratio=(0.7, 1.4), flip_p=0.0, degrees=15.0, jitter_p=0.8,
                            brightness=0.4, contrast=0.4, noise_std=0.1, erase_p=0.25)
    return BatchAugment(scale=(0.2, 1.0), flip_p=0.5, jitter_p=0.8, brightness=0.4, contrast=0.4,
                        saturation=0.4, hue=0.1, grayscale_p=0.2)


def light_augment(channels: int) -> BatchAugment:
    """Mild augmentation for pretext tasks that need the image mostly intact (rotation, patches, AE)."""
    return BatchAugment(scale=(0.6, 1.0), ratio=(0.8, 1.25), flip_p=0.0 if channels == 1 else 0.5,
                        degrees=0.0, jitter_p=0.5, brightness=0.2, contrast=0.2, saturation=0.2,
                        hue=0.02, grayscale_p=0.0 if channels == 1 else 0.1)
