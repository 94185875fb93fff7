"""The interface every backbone keeps, so extraction and SSL methods never depend on a concrete net."""

from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """A convolutional feature extractor made of an ordered list of blocks.

    Subclasses fill ``self.blocks`` (an ``nn.ModuleList``; block i consumes block i-1's map) and
    ``self.block_dims`` (channels out of each block). Input normalisation lives in buffers, so a
    backbone loaded from a checkpoint embeds raw uint8 images exactly as it was trained on them.

    Attributes:
        name: registry name.
        in_channels: input channels (1 or 3).
        image_size: the side it was built and trained for.
        blocks: the stages, shallow to deep.
        block_dims: output channels per block.
    """

    name: str = "backbone"
    input_mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    input_std: torch.Tensor

    def __init__(self, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.image_size = image_size
        self.blocks = nn.ModuleList()
        self.block_dims: list[int] = []
        self.register_buffer("input_mean", torch.full((1, in_channels, 1, 1), 0.5))
        self.register_buffer("input_std", torch.full((1, in_channels, 1, 1), 0.25))

    @property
    def out_dim(self) -> int:
        """Width of the pooled last block (the default embedding)."""
        return self.block_dims[-1]

    def set_normalization(self, mean: list[float], std: list[float]) -> None:
        """Store per-channel input statistics (of images scaled to [0, 1])."""
        self.input_mean.copy_(torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.input_std.copy_(torch.tensor(std, dtype=torch.float32).clamp_min(1e-3).view(1, -1, 1, 1))

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) float in [0,1] to the standardised input the first block expects."""
        return (x01 - self.input_mean) / self.input_std

    def forward_blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All block outputs for a normalised batch.

        Args:
            x: (B, C, H, W) normalised input.

        Returns:
            One (B, block_dims[i], H_i, W_i) map per block.
        """
        maps = []
        for block in self.blocks:
            x = block(x)
            maps.append(x)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) normalised input to (B, out_dim) global-average-pooled last block."""
        for block in self.blocks:
            x = block(x)
        return x.mean(dim=(2, 3))
