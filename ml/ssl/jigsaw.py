"""Jigsaw puzzles (Noroozi and Favaro, "Unsupervised Learning of Visual Representations by Solving
Jigsaw Puzzles", ECCV 2016)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from ml.augment import BatchAugment, light_augment
from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod, mlp
from ml.ssl.patches import extract_patches, grid_for, patch_out_size


def permutation_set(grid: int, count: int) -> torch.Tensor:
    """A fixed set of tile permutations, far apart in Hamming distance (the paper's greedy choice).

    For a 2x2 grid all 24 permutations are used. Otherwise, starting from the identity, each next
    permutation is the one whose minimum Hamming distance to those chosen is largest (ties to the
    lexicographically first), so the set is deterministic and the classes are easy to tell apart.

    Returns:
        (count, grid*grid) long tensor; row p lists, for each position, the cell shown there.
    """
    n = grid * grid
    if grid == 2:
        return torch.tensor(list(itertools.permutations(range(4))))
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
    chosen = [0]
    min_dist = (perms != perms[0]).sum(1)
    for _ in range(count - 1):
        nxt = int(np.argmax(min_dist))
        chosen.append(nxt)
        min_dist = np.minimum(min_dist, (perms != perms[nxt]).sum(1))
    return torch.from_numpy(perms[chosen].astype(np.int64))


class Jigsaw(SSLMethod):
    """Shuffle the tiles of a grid by one of P known permutations; predict which.

    Each tile is encoded alone by the shared backbone (the paper's context-free network), so no
    layer below the head can compare tiles: ordering them needs knowing what the parts of objects
    look like. The grid is sized to the image (2x2 for under 48 px, 3x3 above).

    Args:
        backbone: network to pretrain.
        grid: grid side (default ``grid_for(image_size)``).
        num_permutations: P for 3x3 grids (2x2 always uses all 24).
        hidden: width of the head.
        augment: augmentation of the whole image before tiling.

    Shapes: input (B, C, H, W) -> tiles (B*n*n, C, P, P) -> features (B, n*n*D) -> logits (B, P).
    """

    name = "jigsaw"
    default_batch_size = 128
    perms: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(
        self,
        backbone: Backbone,
        grid: int | None = None,
        num_permutations: int = 64,
        hidden: int = 512,
        augment: BatchAugment | None = None,
    ) -> None:
        super().__init__(backbone)
        self.grid = grid or grid_for(backbone.image_size)
        self.augment = augment or light_augment(backbone.in_channels)
        self.patch_size = patch_out_size(backbone.image_size)
        self.register_buffer("perms", permutation_set(self.grid, num_permutations), persistent=False)
        self.head = mlp([self.grid * self.grid * backbone.out_dim, hidden, len(self.perms)])

    def forward(self, x01: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b = len(x01)
        labels = torch.randint(0, len(self.perms), (b,), generator=g)
        cells = self.perms.cpu()[labels]
        tiles = extract_patches(self.view(x01, g), cells, self.grid, g, out_size=self.patch_size)
        feats = self.encode(tiles).reshape(b, -1)
        return F.cross_entropy(self.head(feats), labels.to(x01.device))
