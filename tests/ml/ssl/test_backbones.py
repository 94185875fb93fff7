"""Every registered backbone builds and runs forward at both ends of its input sizes."""

from __future__ import annotations

import pytest
import torch

from ml.backbones import SUPPORTED_SIZES, create_backbone, default_backbone, list_backbones


@pytest.mark.parametrize("name", list_backbones())
@pytest.mark.parametrize("channels", [1, 3])
def test_backbone_forward(name, channels):
    for size in SUPPORTED_SIZES[name]:
        torch.manual_seed(0)
        net = create_backbone(name, channels, size).eval()
        x = torch.randn(2, channels, size, size)
        with torch.no_grad():
            maps = net.forward_blocks(x)
            pooled = net(x)
        assert len(maps) == len(net.blocks) == len(net.block_dims) >= 3
        assert [m.shape[1] for m in maps] == net.block_dims
        assert pooled.shape == (2, net.out_dim) and torch.isfinite(pooled).all()
        assert torch.allclose(pooled, maps[-1].mean(dim=(2, 3)), atol=1e-5)


def test_compact_cnn_is_compact():
    params = sum(p.numel() for p in create_backbone("cnn", 1, 28).parameters())
    assert 300_000 < params < 500_000


def test_resnet18_keeps_resolution():
    maps = create_backbone("resnet18", 3, 32).eval().forward_blocks(torch.randn(1, 3, 32, 32))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 4]


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        create_backbone("nope", 1, 28)


def test_default_backbone():
    assert default_backbone(1, 28, "cpu") == "cnn"
    assert default_backbone(3, 32, "cuda") == "resnet18"
