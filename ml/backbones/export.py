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
from ml.training import Checkpoint


class _Exported(nn.Module):
    """What ``export_torchscript`` traces: [0, 1] images in, the last block's map out (the project's
    normalisation is inside, so the file needs none: ``normalization: unit``)."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_blocks(self.backbone.normalize(x01))[-1]


def export_torchscript(checkpoint: Checkpoint, out_path: str | os.PathLike) -> dict[str, Any]:
    """Write a project's backbone as a TorchScript file another project can register (format
    ``torchscript``); its input contract travels inside (``loupe.json``). Returns that contract."""
    from ml.embedding import load_backbone

    net = load_backbone(checkpoint).eval()
    size, chans = int(checkpoint.config["image_size"]), int(checkpoint.config["in_channels"])
    with torch.no_grad():
        traced = torch.jit.trace(_Exported(net), torch.rand(2, chans, size, size), check_trace=False)
    contract = {"image_size": size, "in_channels": chans, "normalization": "unit",
                "source_method": checkpoint.config.get("method"), "source_backbone": checkpoint.config.get("backbone")}
    torch.jit.save(traced, os.fspath(out_path), _extra_files={CONTRACT_FILE: json.dumps(contract)})
    return contract
