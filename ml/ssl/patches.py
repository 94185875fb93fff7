"""Patch grids for the context pretext tasks (relative location, jigsaw), batched via grid_sample."""

from __future__ import annotations

import torch

from ml.augment import apply_affine, crop_boxes_theta


def patch_out_size(image_size: int) -> int:
    """Side patches are resampled to before encoding: half the image, at least 16 px.

    A 3x3 grid on a 28 px image leaves 7 px patches, too small for four pooling stages; resampling
    to a common size keeps the backbone's receptive fields meaningful.
    """
    return max(16, image_size // 2)


def grid_for(image_size: int, min_cell: int = 16) -> int:
    """Jigsaw grid side sized to the image: 2x2 below 48 px (cells >= 16 px), 3x3 above."""
    return 3 if image_size >= 3 * min_cell else 2


def extract_patches(
    x: torch.Tensor,
    cells: torch.Tensor,
    grid: int,
    g: torch.Generator,
    gap: float = 0.2,
    out_size: int | None = None,
) -> torch.Tensor:
    """Crop chosen grid cells from each image, each patch jittered inside its cell.

    The gap between patches (and the random jitter) stops the network solving the task from
    continuing edges and textures across patch borders (Doersch et al. 2015, section 3).

    Args:
        x: (B, C, H, W) images.
        cells: (B, K) long cell indices in row-major order, 0 .. grid*grid-1.
        grid: grid side.
        g: CPU generator for the jitter.
        gap: fraction of the cell left out of the patch.
        out_size: resampled patch side (default ``patch_out_size(H)``).

    Returns:
        (B*K, C, out_size, out_size) patches, image-major (all K patches of image 0 first).
    """
    b, k = cells.shape
    side = out_size or patch_out_size(x.shape[-1])
    cell = 1.0 / grid
    patch = cell * (1.0 - gap)
    flat = cells.reshape(-1).cpu()
    rows, cols = (flat // grid).float(), (flat % grid).float()
    jx = torch.rand(b * k, generator=g) * (cell - patch)
    jy = torch.rand(b * k, generator=g) * (cell - patch)
    size = torch.full((b * k,), patch)
    theta = crop_boxes_theta(cols * cell + jx, rows * cell + jy, size, size)
    return apply_affine(x.repeat_interleave(k, dim=0), theta, out_size=side)
