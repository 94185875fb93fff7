"""A project's learned backbone written out as a TorchScript file that any project can register (format
``torchscript``): an organisation's own backbone library, with no weights downloaded from anywhere."""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from ml.backbones.base import Backbone
from ml.backbones.external import CONTRACT_FILE
from ml.checkpoint import Checkpoint


class _Normalized(nn.Module):
    """The first block with the project's normalisation in front of it (so the file takes [0, 1] images)."""

    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    std: torch.Tensor

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.block = backbone.blocks[0]
        self.register_buffer("mean", backbone.input_mean.detach().clone())
        self.register_buffer("std", backbone.input_std.detach().clone())

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.block((x01 - self.mean) / self.std)


class _Exported(nn.Module):
    """What ``export_torchscript`` traces: [0, 1] images in, the last block's map out. Each block stays
    a submodule of its own (``block0`` ... ``block{n-1}``, the contract says how many), so a project that
    registers the file gets every block's map, and the multi-layer embeddings (``concat:3``) that the
    benchmarks found best, not the last block's only."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.n_blocks = len(backbone.blocks)
        self.block0 = _Normalized(backbone)
        for i in range(1, self.n_blocks):
            setattr(self, f"block{i}", backbone.blocks[i])

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        x = self.block0(x01)
        for i in range(1, self.n_blocks):
            x = getattr(self, f"block{i}")(x)
        return x


def export_torchscript(checkpoint: Checkpoint, out_path: str | os.PathLike) -> dict[str, Any]:
    """Write a project's backbone as a TorchScript file another project can register (format
    ``torchscript``); its input contract travels inside (``loupe.json``). Returns that contract."""
    from ml.embedding import load_backbone

    net = load_backbone(checkpoint).eval()
    size, chans = int(checkpoint.config["image_size"]), int(checkpoint.config["in_channels"])
    with torch.no_grad():
        traced = torch.jit.trace(_Exported(net), torch.rand(2, chans, size, size), check_trace=False)
    contract = {"image_size": size, "in_channels": chans, "normalization": "unit", "blocks": len(net.blocks),
                "source_method": checkpoint.config.get("method"), "source_backbone": checkpoint.config.get("backbone")}
    torch.jit.save(traced, os.fspath(out_path), _extra_files={CONTRACT_FILE: json.dumps(contract)})
    return contract
