"""Multi-crop views: two global crops at the input side and several small local crops at half of it
(Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS
2020, SwAV; used again by DINO). Local crops cost a quarter of a global one each, and asking a local
crop to agree with the whole image teaches the backbone that parts (a field's texture, a roof, a leaf's
spot) speak for the whole, which is what small pools of real photographs need most."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ml.augment import BatchAugment


@dataclass
class MultiCrop:
    """How many views of which kind, from one augmentation recipe.

    Args:
        n_local: local crops per image (0: only the two global views).
        global_scale: area range of a global crop, as a fraction of the (working) image.
        local_scale: area range of a local crop.
        local_ratio: local side as a fraction of the input side (rounded to a multiple of 4, at least 16).
    """

    n_local: int = 0
    global_scale: tuple[float, float] = (0.25, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.25)
    local_ratio: float = 0.5

    def local_side(self, size: int) -> int:
        return max(16, int(round(size * self.local_ratio / 4)) * 4)

    def views(self, x01: torch.Tensor, g: torch.Generator, augment: BatchAugment,
              size: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(two global views at ``size``, ``n_local`` local views at ``local_side(size)``), each (B, C, s, s)."""
        glob = replace(augment, scale=self.global_scale) if augment.scale is not None else augment
        loc = replace(augment, scale=self.local_scale)
        side = self.local_side(size)
        return ([glob(x01, g, size) for _ in range(2)], [loc(x01, g, side) for _ in range(self.n_local)])
