"""Real backbone files, written by the libraries that make them: a torchvision ResNet-18 state dict (as
.pth and as .safetensors), a TorchScript module and an ONNX model of a small net, and a garbage file."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

# The API with an admin on SQLite that the worker tests use (``loop``: settings, admin client).
from tests.workers.test_pipeline import loop  # noqa: F401


class SmallNet:
    """Built lazily (torch is imported by the fixtures only)."""

    @staticmethod
    def make():
        import torch
        from torch import nn

        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                             nn.Conv2d(16, 24, 3, stride=2, padding=1), nn.ReLU()).eval()


@pytest.fixture(scope="session")
def backbone_files(tmp_path_factory) -> dict[str, Path]:
    import torch
    import torchvision
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("backbone-files")
    torch.manual_seed(0)
    r18 = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(r18, folder / "resnet18.pth")
    save_file({k: v.contiguous() for k, v in r18.items()}, str(folder / "resnet18.safetensors"))
    net = SmallNet.make()
    x = torch.rand(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, x), str(folder / "small.pt"))
        torch.onnx.export(net, x[:1], str(folder / "small.onnx"), input_names=["input"],
                          dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    (folder / "garbage.bin").write_bytes(b"this is not a neural network\n" * 40)
    return {"pth": folder / "resnet18.pth", "safetensors": folder / "resnet18.safetensors",
            "torchscript": folder / "small.pt", "onnx": folder / "small.onnx", "garbage": folder / "garbage.bin"}


# How each real file registers: (file key, form fields, embedding width the check must report).
REGISTRATIONS = {
    "torchvision-pth": ("pth", {"format": "torchvision", "architecture": "resnet18", "input_size": "32"}, 512),
    "torchvision-safetensors": ("safetensors", {"format": "torchvision", "architecture": "resnet18",
                                                "input_size": "32"}, 512),
    "torchscript": ("torchscript", {"format": "torchscript", "input_size": "32"}, 24),
    "onnx": ("onnx", {"format": "onnx", "input_size": "32"}, 24),
}
