"""Backbones an organisation brings as a file: a torchvision architecture with a state dict, a TorchScript
module, or an ONNX model (run with onnxruntime). Weights are never downloaded.

Each file becomes an ``ExternalBackbone``: the same interface as the backbones Loupe trains (blocks,
block widths, normalisation buffers), so ``ml.embedding`` embeds with it, ``ml.pretrain`` continues
training it and ``ml.finetune`` fine-tunes it like any other. A registered file is turned into an
ordinary ``Checkpoint`` (``registered_checkpoint``) whose config says how to rebuild it; TorchScript and
ONNX graphs travel inside that checkpoint as bytes, so a project's copy never depends on the file. An
uploaded file is checked (loaded, a dummy batch embedded) by ``ml.backbones.check``.

Input contract, recorded with every backbone: ``image_size`` (square side), ``in_channels`` and the
per-channel normalisation of images scaled to [0, 1] (ImageNet statistics by default: what torchvision's
published weights and most exported models expect; ``"unit"`` feeds [0, 1] unchanged).
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from ml.backbones.base import Backbone
from ml.checkpoint import Checkpoint

FORMATS = ("torchvision", "torchscript", "onnx")
MODES_FOR_FORMAT = {"torchvision": ("frozen", "continue", "finetune"),
                    "torchscript": ("frozen", "continue", "finetune"), "onnx": ("frozen",)}
NORMALIZATIONS = {"imagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]), "unit": ([0.0] * 3, [1.0] * 3)}
DEFAULT_INPUT_SIZE = 224  # what ImageNet-trained weights saw; a smaller side runs faster on a CPU
# A TorchScript file Loupe writes (``export_torchscript``) carries its input contract under this name.
CONTRACT_FILE = "loupe.json"


# ---------------------------------------------------------------- the adapter


class ExternalBackbone(Backbone):
    """A backbone built from a registered file.

    ``blocks`` run in sequence (block i consumes block i-1's output); a block that ends in a vector
    (B, D) is given as a (B, D, 1, 1) map, so pooling in ``ml.embedding`` leaves it unchanged.
    ``trainable`` is False for ONNX: onnxruntime only runs the graph.
    """

    name = "external"

    def __init__(self, blocks: list[nn.Module], in_channels: int, image_size: int, mean: list[float],
                 std: list[float], trainable: bool = True) -> None:
        super().__init__(in_channels, image_size)
        self.blocks.extend(blocks)
        self.trainable = trainable
        self.set_normalization(mean[:in_channels], std[:in_channels])
        with torch.no_grad():
            was = self.training
            super().train(False)
            maps = self.forward_blocks(torch.zeros(2, in_channels, image_size, image_size))
            super().train(was)
        self.block_dims = [int(m.shape[1]) for m in maps]

    def train(self, mode: bool = True) -> ExternalBackbone:
        if mode and not self.trainable:
            raise ValueError("an ONNX backbone can only be used frozen: onnxruntime runs it but cannot train it "
                             "(register a torchvision state dict or a TorchScript module to continue pretraining "
                             "or to fine-tune)")
        return super().train(mode)


def _as_map(y: Any, what: str) -> torch.Tensor:
    if isinstance(y, (tuple, list)):
        if not y:
            raise ValueError(f"{what} returned an empty tuple")
        y = y[0]
    if isinstance(y, dict):
        raise ValueError(f"{what} returned a dict; it must return a tensor (B, D) or (B, C, H, W)")
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{what} returned {type(y).__name__}, not a tensor")
    if y.ndim == 2:
        return y[:, :, None, None]
    if y.ndim == 4:
        return y
    if y.ndim == 3:  # (B, tokens, D): a transformer without pooling; its mean over tokens is the map
        return y.transpose(1, 2)[..., None]
    raise ValueError(f"{what} returned shape {tuple(y.shape)}; expected (B, D) or (B, C, H, W)")


class _MapOut(nn.Module):
    """Runs a module and gives its output as a 4-D map (see ``_as_map``)."""

    def __init__(self, module: nn.Module, what: str) -> None:
        super().__init__()
        self.module = module
        self.what = what

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _as_map(self.module(x), self.what)


class _OnnxRun(nn.Module):
    """An onnxruntime session as a module (CPU provider; no parameters, no gradient)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception classes
            raise ValueError(f"the file is not an ONNX model onnxruntime can run: {_first_line(exc)}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"the ONNX model takes {len(inputs)} inputs; it must take one image batch")
        self.input = inputs[0]
        if self.input.type != "tensor(float)":
            raise ValueError(f"the ONNX model's input is {self.input.type}; it must be float32 (tensor(float))")
        if len(self.input.shape) != 4:
            raise ValueError(f"the ONNX model's input has shape {self.input.shape}; it must be (N, C, H, W)")

    def declared(self) -> tuple[int | None, int | None]:
        """(channels, side) the graph fixes, None where it is dynamic."""
        _, c, h, w = self.input.shape
        side = h if isinstance(h, int) and h == w else None
        return (c if isinstance(c, int) else None), side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = x.detach().float().cpu().numpy()
        try:
            out = self.session.run(None, {self.input.name: np.ascontiguousarray(arr)})[0]
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"the ONNX model failed on a {tuple(arr.shape)} batch: {_first_line(exc)}") from None
        return _as_map(torch.from_numpy(np.asarray(out, dtype=np.float32)), "the ONNX model").to(x.device)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


# ---------------------------------------------------------------- torchvision


def torchvision_architectures() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _unwrap_state(obj: Any) -> dict[str, torch.Tensor]:
    """The state dict inside what ``torch.save`` wrote: plain, under "state_dict"/"model", or saved
    from DataParallel ("module." prefixes)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError("the file holds no state dict (a mapping of parameter names to tensors)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return OrderedDict(obj)


def read_state_dict(data: bytes, filename: str = "") -> dict[str, torch.Tensor]:
    """A state dict from ``.pth``/``.pt`` bytes (``torch.load(weights_only=True)``: no pickled code
    runs) or from ``.safetensors`` bytes."""
    if filename.endswith(".safetensors") or _looks_like_safetensors(data):
        from safetensors.torch import load as load_safetensors

        try:
            return _unwrap_state(load_safetensors(data))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type
            raise ValueError(f"the file is not a readable safetensors file: {_first_line(exc)}") from None
    if not data.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip (or, before 1.6, a pickle)
        raise ValueError("the file is neither a PyTorch state dict (.pth/.pt written by torch.save) nor a "
                         "safetensors file")
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many classes
        if "Weights only load failed" in str(exc):
            raise ValueError("the file holds pickled Python objects besides tensors (a whole model?); save "
                             "model.state_dict() with torch.save, or as safetensors") from None
        raise ValueError(f"the file is not a state dict torch.load can read: {_first_line(exc)}") from None
    return _unwrap_state(obj)


def _looks_like_safetensors(data: bytes) -> bool:
    # 8-byte little-endian header length, then a JSON header starting with '{'.
    n = int.from_bytes(data[:8], "little")
    return 0 < n < len(data) and data[8:9] == b"{"


def _drop_head(net: nn.Module) -> None:
    """Replace the classifier's last Linear by Identity: the output becomes the pooled penultimate
    features (ResNet 512/2048, ConvNeXt 768 after its LayerNorm, MobileNetV3 its 1024 hidden layer)."""
    for attr in ("fc", "heads", "head", "classifier"):
        head = getattr(net, attr, None)
        if head is None:
            continue
        if isinstance(head, nn.Linear) or attr == "heads":
            setattr(net, attr, nn.Identity())
            return
        if isinstance(head, nn.Sequential):
            last = max((i for i, m in enumerate(head) if isinstance(m, nn.Linear)), default=None)
            if last is not None:
                head[last] = nn.Identity()
                return
    raise ValueError(f"cannot find the classifier head of {type(net).__name__} to drop")


def _head_keys(net: nn.Module) -> set[str]:
    """State-dict keys of the classifier's last Linear (a file saved without its head may lack them)."""
    names = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        return set()
    return {f"{names[-1]}.weight", f"{names[-1]}.bias"}


def _torchvision_blocks(arch: str, state: dict[str, torch.Tensor]) -> list[nn.Module]:
    import torchvision

    if arch not in torchvision_architectures():
        raise ValueError(f"unknown torchvision architecture {arch!r}; examples: resnet18, resnet50, "
                         "mobilenet_v3_small, efficientnet_b0, convnext_tiny, vit_b_16")
    try:
        net = torchvision.models.get_model(arch, weights=None)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot build torchvision architecture {arch!r}: {_first_line(exc)}") from None
    expected = net.state_dict()
    missing = set(expected) - set(state) - _head_keys(net)
    unexpected = set(state) - set(expected)
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} tensors have the wrong shape (e.g. {k}: file {tuple(state[k].shape)}, "
                         f"{arch} {tuple(expected[k].shape)})")
        if missing:
            parts.append(f"{len(missing)} {arch} tensors are missing (e.g. {sorted(missing)[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are not part of {arch} (e.g. {sorted(unexpected)[0]})")
        raise ValueError(f"the state dict does not fit torchvision {arch}: " + "; ".join(parts)
                         + ". Is it the weights of another architecture?")
    net.load_state_dict(state, strict=False)
    _drop_head(net)
    if isinstance(net, torchvision.models.ResNet):
        # Four blocks, so "concat:k" layer choices work as for Loupe's own backbones.
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
        return [stem, net.layer2, net.layer3, net.layer4]
    return [_MapOut(net, f"torchvision {arch}")]


# ---------------------------------------------------------------- building and checking


def _torchscript_module(data: bytes) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    extra = {CONTRACT_FILE: ""}
    try:
        module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    except Exception as exc:  # noqa: BLE001 - the loader raises RuntimeError, ValueError, ...
        raise ValueError(f"the file is not a TorchScript module torch.jit.load can read: {_first_line(exc)}") from None
    contract = json.loads(extra[CONTRACT_FILE]) if extra[CONTRACT_FILE] else {}
    return module, contract


def _torchscript_blocks(module: torch.jit.ScriptModule, n_blocks: int) -> list[nn.Module]:
    """A file Loupe exported names its blocks (``block0`` ...) in its contract: each is a block here, as in
    the project that learned it; any other module is one block."""
    if n_blocks > 1 and all(hasattr(module, f"block{i}") for i in range(n_blocks)):
        return [_MapOut(getattr(module, f"block{i}"), f"block {i} of the TorchScript module")
                for i in range(n_blocks)]
    return [_MapOut(module, "the TorchScript module")]


def build_external(fmt: str, architecture: str | None, image_size: int, in_channels: int, mean: list[float],
                   std: list[float], source: bytes | None = None,
                   state: dict[str, torch.Tensor] | None = None) -> ExternalBackbone:
    """The adapter for one format. ``source``: the TorchScript or ONNX bytes; ``state``: torchvision
    weights (otherwise the checkpoint's ``backbone_state`` is loaded into it afterwards)."""
    if fmt == "torchvision":
        if not architecture:
            raise ValueError("format torchvision needs an architecture (a torchvision.models name, e.g. resnet18)")
        if state is None:
            import torchvision

            state = torchvision.models.get_model(architecture, weights=None).state_dict()
        blocks, trainable = _torchvision_blocks(architecture, state), True
    elif fmt == "torchscript":
        module, contract = _torchscript_module(source or b"")
        blocks, trainable = _torchscript_blocks(module, int(contract.get("blocks") or 0)), True
    elif fmt == "onnx":
        blocks, trainable = [_MapOut(_OnnxRun(source or b""), "the ONNX model")], False
    else:
        raise ValueError(f"unknown backbone format {fmt!r}; use one of {', '.join(FORMATS)}")
    try:
        return ExternalBackbone(blocks, in_channels, image_size, mean, std, trainable=trainable)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a shape mismatch inside the user's graph
        raise ValueError(f"the {fmt} backbone does not run on a ({in_channels}, {image_size}, {image_size}) "
                         f"input: {_first_line(exc)}") from None


def registered_checkpoint(path: str | os.PathLike, fmt: str, architecture: str | None = None,
                          input_size: int | None = None, normalization: str | None = None,
                          registered_id: int | None = None) -> Checkpoint:
    """Load a backbone file and describe it as a ``Checkpoint`` that ``ml.embedding.load_backbone``
    rebuilds (``config["external"]``). Raises ValueError naming what is wrong with the file."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown backbone format {fmt!r}; use one of {', '.join(FORMATS)}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; use one of {', '.join(NORMALIZATIONS)}")
    if input_size is not None and not 8 <= input_size <= 1024:
        raise ValueError(f"input_size must be between 8 and 1024 px, got {input_size}")
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise ValueError("the file is empty")
    channels, source, state = 3, None, None
    if fmt == "torchvision":
        state = read_state_dict(data, os.fspath(path))
    else:
        source = data
        if fmt == "torchscript":
            _, contract = _torchscript_module(data)
            channels = int(contract.get("in_channels", channels))
            input_size = input_size or contract.get("image_size")
            normalization = normalization or contract.get("normalization")
        else:
            declared_c, declared_side = _OnnxRun(data).declared()
            channels = declared_c or channels
            if declared_side and input_size and input_size != declared_side:
                raise ValueError(f"the ONNX model takes {declared_side} px inputs only, not {input_size}")
            input_size = declared_side or input_size
    if architecture and architecture.startswith("vit_") and input_size not in (None, 224):
        raise ValueError(f"torchvision {architecture} takes 224 px inputs only, not {input_size}")
    if channels not in (1, 3):
        raise ValueError(f"the backbone takes {channels} input channels; Loupe feeds 1 (greyscale) or 3 (RGB)")
    size = int(input_size or DEFAULT_INPUT_SIZE)
    normalization = normalization or "imagenet"
    mean, std = NORMALIZATIONS[normalization]
    net = build_external(fmt, architecture, size, channels, mean, std, source=source, state=state)
    config = {
        "backbone": f"{fmt}:{architecture}" if architecture else fmt, "in_channels": channels, "image_size": size,
        "norm_mean": mean[:channels], "norm_std": std[:channels], "normalization": normalization,
        "method": "registered", "registered_backbone": registered_id,
        "external": {"format": fmt, "architecture": architecture, "source": source},
    }
    return Checkpoint(config, {k: v.detach().clone() for k, v in net.state_dict().items()}, state={"done": True})


def load_external(checkpoint: Checkpoint) -> ExternalBackbone:
    """Rebuild the backbone of a checkpoint made by ``registered_checkpoint`` (or trained from one)."""
    cfg, ext = checkpoint.config, checkpoint.config["external"]
    net = build_external(ext["format"], ext.get("architecture"), cfg["image_size"], cfg["in_channels"],
                         cfg["norm_mean"], cfg["norm_std"], source=ext.get("source"))
    net.load_state_dict(checkpoint.backbone_state)
    return net
