"""Backbone registry: ``create_backbone(name, in_channels, image_size)`` and ``list_backbones()``."""

from __future__ import annotations

from collections.abc import Callable

from ml.backbones.base import Backbone
from ml.backbones.cnn import CompactCNN
from ml.backbones.resnet import SmallImageResNet18

_REGISTRY: dict[str, Callable[..., Backbone]] = {}
# Input sides each backbone is meant for; the registry test builds every backbone at both ends.
SUPPORTED_SIZES: dict[str, tuple[int, int]] = {}


def register_backbone(name: str, factory: Callable[..., Backbone], sizes: tuple[int, int]) -> None:
    """Add a backbone factory ``factory(in_channels, image_size, **kwargs)`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"backbone {name!r} already registered")
    _REGISTRY[name] = factory
    SUPPORTED_SIZES[name] = sizes


def _named(factory: Callable[..., Backbone], name: str, **defaults) -> Callable[..., Backbone]:
    def build(in_channels: int, image_size: int, **kwargs) -> Backbone:
        model = factory(in_channels, image_size, **{**defaults, **kwargs})
        model.name = name
        return model

    return build


register_backbone("cnn", _named(CompactCNN, "cnn"), (16, 64))
# Twice the widths (about 1.6M parameters): for colour images when a GPU is not there for ResNet-18.
register_backbone("cnn-wide", _named(CompactCNN, "cnn-wide", widths=(64, 128, 256, 512), first_convs=1), (16, 96))
register_backbone("resnet18", _named(SmallImageResNet18, "resnet18"), (32, 96))


def create_backbone(name: str, in_channels: int, image_size: int, **kwargs) -> Backbone:
    """Build a freshly initialised backbone.

    Args:
        name: one of ``list_backbones()``.
        in_channels: 1 or 3.
        image_size: input side in pixels.
        **kwargs: passed to the backbone class.

    Returns:
        The backbone, in training mode, on the CPU.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; known: {list_backbones()}") from None
    return factory(in_channels, image_size, **kwargs)


def list_backbones() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(_REGISTRY)


def default_backbone(in_channels: int, image_size: int, device: str) -> str:
    """The backbone ``pretrain`` picks when none is named.

    ResNet-18 needs a GPU to learn anything in minutes (about 25x the compute of the compact CNN per
    image), so on a CPU every input gets the compact CNN. (The wider CNN was no better on CIFAR-10 on
    this budget: half the throughput, and weaker untrained features, 49.9% vs 51.0% probe.)
    """
    if str(device).startswith("cuda") and in_channels == 3 and image_size >= 32:
        return "resnet18"
    return "cnn"


__all__ = ["Backbone", "create_backbone", "list_backbones", "default_backbone", "register_backbone"]
