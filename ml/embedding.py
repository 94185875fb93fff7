"""Embedding extraction from a backbone or checkpoint: layer choice, L2 normalisation, batching.

Layer choices follow the feature-based comparison of BERT (Devlin et al. 2019, table 7), where the
concatenation of the last few layers beat the last layer alone:

- ``"last"``: global-average-pooled output of the last block;
- ``"penultimate"``: the block before it (less specialised to the pretext task);
- ``"concat:k"``: the last k blocks' pooled outputs, each L2-normalised so a wide block cannot drown
  a narrow one, then concatenated;
- ``"weighted:k"`` (``"weighted"``: every block): a learned weighted sum of the last k blocks. The vectors
  are those of ``concat:k``; the weights are learned on the labels when the estimator is fitted
  (``ml.block_weights``, ``ml.estimators.block_weighted``), so they follow the labels without re-embedding.

Every vector is L2-normalised at the end, so dot products are cosine similarities for kNN graphs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ml.backbones import Backbone, create_backbone
from ml.block_weights import is_weighted
from ml.checkpoint import Checkpoint
from ml.data import FileDataset
from ml.images import as_nhwc, prepare_array

Progress = Callable[[float, str], None]


def load_backbone(checkpoint: Checkpoint | str) -> Backbone:
    """Rebuild the backbone a checkpoint describes, with its weights, in eval mode on the CPU."""
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = Checkpoint.load(checkpoint)
    cfg = checkpoint.config
    if cfg.get("external"):  # a registered backbone file (torchvision, TorchScript, ONNX)
        from ml.backbones.external import load_external

        return load_external(checkpoint).eval()
    model = create_backbone(cfg["backbone"], cfg["in_channels"], cfg["image_size"], **cfg.get("backbone_kwargs", {}))
    model.load_state_dict(checkpoint.backbone_state)
    return model.eval()


def _count(layer: str, num_blocks: int) -> int:
    """k of "concat:k" / "weighted:k" ("weighted" alone: every block)."""
    if layer == "weighted":
        return num_blocks
    return int(layer.split(":", 1)[1])


def parse_layer(layer: str, num_blocks: int) -> list[int]:
    """Block indices a layer choice pools ("last", "penultimate", "concat:k", "weighted:k", "weighted")."""
    if layer == "last":
        return [num_blocks - 1]
    if layer == "penultimate":
        return [num_blocks - 2]
    if layer.startswith("concat:") or is_weighted(layer):
        k = _count(layer, num_blocks)
        if not 1 <= k <= num_blocks:
            raise ValueError(f"{layer.split(':')[0]}:k needs 1 <= k <= {num_blocks}, got {k}")
        return list(range(num_blocks - k, num_blocks))
    raise ValueError(f"layer must be 'last', 'penultimate', 'concat:k', 'weighted:k' or 'weighted', got {layer!r}")


def layer_for(layer: str, num_blocks: int) -> str:
    """A project's layer choice as this backbone can give it: ``concat:k`` (``weighted:k``) with more blocks
    than the backbone has (a registered one-block TorchScript or ONNX file) pools all of them; ``penultimate``
    of a one-block backbone is its last."""
    if (layer.startswith("concat:") or is_weighted(layer)) and _count(layer, num_blocks) > num_blocks:
        return "last" if num_blocks == 1 else f"{layer.split(':')[0]}:{num_blocks}"
    if layer == "penultimate" and num_blocks < 2:
        return "last"
    return layer


def block_widths(backbone: Backbone, layer: str) -> list[int]:
    """Widths of the blocks an embedding of this layer choice lays side by side, in column order (what
    co-training splits into views and ``weighted:k`` weighs)."""
    return [backbone.block_dims[i] for i in parse_layer(layer, len(backbone.blocks))]


def embedding_dim(backbone: Backbone, layer: str = "last") -> int:
    """Width of the vectors ``extract_embeddings`` returns for this layer choice."""
    return sum(block_widths(backbone, layer))


@torch.inference_mode()
def embed_batch(backbone: Backbone, batch_uint8: torch.Tensor, layer: str = "last") -> torch.Tensor:
    """(B, C, H, W) uint8 on the backbone's device to (B, D) float32 L2-normalised embeddings."""
    idx = parse_layer(layer, len(backbone.blocks))
    x = backbone.normalize(batch_uint8.float().div_(255.0))
    cuda = x.device.type == "cuda"
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        maps = backbone.forward_blocks(x)
    pooled = [maps[i].float().mean(dim=(2, 3)) for i in idx]
    if len(pooled) > 1:
        pooled = [F.normalize(p, dim=1) for p in pooled]
    return F.normalize(torch.cat(pooled, dim=1), dim=1)


def _resolve(backbone_or_checkpoint: Backbone | Checkpoint | str, device: str | None) -> tuple[Backbone, torch.device]:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(backbone_or_checkpoint, Backbone):
        model = backbone_or_checkpoint
    else:
        model = load_backbone(backbone_or_checkpoint)
    model = model.to(dev).eval()
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model, dev


def _run(model: Backbone, batches, n: int, layer: str, dtype, progress: Progress | None) -> np.ndarray:
    out = np.empty((n, embedding_dim(model, layer)), dtype=dtype)
    done = 0
    for batch in batches:
        emb = embed_batch(model, batch, layer)
        out[done:done + len(emb)] = emb.cpu().numpy().astype(dtype, copy=False)
        done += len(emb)
        if progress is not None:
            progress(done / max(1, n), f"embedded {done}/{n}")
    return out


def extract_embeddings(
    backbone_or_checkpoint: Backbone | Checkpoint | str,
    images: np.ndarray,
    layer: str = "last",
    dtype=np.float16,
    batch_size: int = 256,
    device: str | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Embed in-memory images.

    Args:
        backbone_or_checkpoint: a backbone, a ``Checkpoint``, or a checkpoint path.
        images: uint8 (N, H, W) or (N, H, W, C); resized through ``ml.images`` if not already the
            backbone's input size.
        layer: "last", "penultimate", "concat:k" or "weighted:k" (embedded as concat:k).
        dtype: numpy dtype of the result (float16 halves storage; cosine error ~1e-3).
        batch_size: images per forward pass.
        device: default CUDA when available.
        progress: called after each batch with (fraction, message).

    Returns:
        (N, D) L2-normalised embeddings, in input order. Deterministic for a given device.
    """
    model, dev = _resolve(backbone_or_checkpoint, device)
    arr = prepare_array(as_nhwc(images), model.image_size, model.in_channels)
    tensor = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)
    batches = (tensor[i:i + batch_size].to(dev) for i in range(0, len(tensor), batch_size))
    return _run(model, batches, len(tensor), layer, dtype, progress)


def extract_embeddings_from_files(
    checkpoint: Backbone | Checkpoint | str,
    paths: Sequence[str],
    layer: str = "last",
    dtype=np.float16,
    batch_size: int = 256,
    device: str | None = None,
    progress: Progress | None = None,
    num_workers: int | None = None,
) -> np.ndarray:
    """Embed stored image files, decoded (``ml.images``) in ``num_workers`` DataLoader processes.

    ``num_workers=None`` picks: on a CPU none (decoding is a tenth of the forward pass, and loader
    processes would only take cores from it: 0.78 of the bare forward rate with two on two cores, 1.0
    without; bench/embed_throughput.py); on a GPU enough processes to keep it fed while it computes.
    A file that fails to decode raises with its path; the caller decides whether to drop it.

    Returns:
        (len(paths), D) L2-normalised embeddings in the order of ``paths``.
    """
    model, dev = _resolve(checkpoint, device)
    if num_workers is None:
        num_workers = 0 if dev.type == "cpu" else min(8, max(1, (os.cpu_count() or 2) - 1))
    dataset = FileDataset(list(paths), model.image_size, model.in_channels)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=dev.type == "cuda")
    batches = (b.to(dev, non_blocking=True) for b in loader)
    return _run(model, batches, len(dataset), layer, dtype, progress)


@torch.no_grad()
def recalibrate_batchnorm(backbone: Backbone, images: np.ndarray, max_images: int = 4096, batch_size: int = 256,
                          device: str | None = None, seed: int = 0) -> Backbone:
    """Re-estimate BatchNorm running statistics on clean images (no gradient, no weight change).

    Pretraining sees only augmented views (and a random backbone sees nothing), so the running
    statistics it keeps do not describe the un-augmented images it will embed; a forward pass in
    train mode over a sample of them fixes that (a cumulative average, ``momentum=None``).
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    images = as_nhwc(images)
    # Sample first, then resize: the pool may be working copies larger than the input.
    pick = np.sort(np.random.default_rng(seed).permutation(len(images))[:max_images])
    arr = prepare_array(images[pick], backbone.image_size, backbone.in_channels)
    order = np.arange(len(arr))
    bns = [m for m in backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    backbone.to(dev).train()
    for i in range(0, len(order), batch_size):
        batch = torch.from_numpy(arr[np.sort(order[i:i + batch_size])]).permute(0, 3, 1, 2).to(dev)
        backbone(backbone.normalize(batch.float() / 255.0))
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    return backbone.eval()
