"""Self-supervised methods behind a registry: ``create_method(name, backbone, **kwargs)``, ``list_methods()``."""

from __future__ import annotations

from ml.backbones.base import Backbone
from ml.ssl.base import SSLMethod
from ml.ssl.jigsaw import Jigsaw
from ml.ssl.masked_ae import MaskedAutoencoder
from ml.ssl.relative_patch import RelativePatchLocation
from ml.ssl.rotation import RotationPrediction
from ml.ssl.simclr import SimCLR
from ml.ssl.vicreg import VICReg

_REGISTRY: dict[str, type[SSLMethod]] = {
    cls.name: cls for cls in (RotationPrediction, SimCLR, MaskedAutoencoder, RelativePatchLocation, Jigsaw, VICReg)
}
# "exemplar" is the seed material's name for instance discrimination; same method.
_ALIASES = {"exemplar": "simclr", "mae": "masked_ae", "denoising_ae": "masked_ae", "patch_location": "relative_patch"}


def method_class(name: str) -> type[SSLMethod]:
    """The class registered under ``name`` (or an alias)."""
    key = _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown SSL method {name!r}; known: {list_methods()}") from None


def create_method(name: str, backbone: Backbone, **kwargs) -> SSLMethod:
    """Wrap ``backbone`` in the pretext task ``name``; kwargs go to the method's constructor."""
    return method_class(name)(backbone, **kwargs)


def list_methods() -> list[str]:
    """Registered method names (aliases excluded), sorted."""
    return sorted(_REGISTRY)


__all__ = ["SSLMethod", "create_method", "list_methods", "method_class"]
