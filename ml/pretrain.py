"""Backbones for a pool of images: pretrained by self-supervision (the entry point workers call), or
randomly initialised (the baseline), each sized and normalised to the pool."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ml.backbones import Backbone, create_backbone, default_backbone
from ml.checkpoint import Checkpoint
from ml.embedding import load_backbone, recalibrate_batchnorm
from ml.images import as_nhwc, choose_input_from_array, input_stats, prepare_array
from ml.run import Run, default_device
from ml.ssl import create_method, method_class

# The best 100-label probe on MNIST, CIFAR-10 and EuroSAT photographs with a fair 300 CPU-s budget
# (docs/benchmarks.md); on colour photographs of 48 px and more it takes four local crops (multi-crop).
DEFAULT_METHOD = "simclr"


def working_side(image_hw: tuple[int, int], size: int) -> int:
    """Side at which pretraining keeps the pool: up to twice the input, so a random-resized crop can
    zoom into detail the input-size view has lost (never upscaled: small images stay at ``size``)."""
    return int(max(size, min(min(image_hw), 2 * size)))


def describe_input(images: np.ndarray, backbone: str | None = None, device: str | None = None,
                   image_size: int | None = None, channels: int | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """Choose the input size, channels, backbone and normalisation for a pool of images.

    Returns:
        (config dict, images as (N, S, S, channels) uint8 with S = ``working_side``: the input side, or up
        to twice it when the images are larger, for the augmentation to crop from).
    """
    images = as_nhwc(images)
    size, chans = choose_input_from_array(images)
    size, chans = image_size or size, channels or chans
    arr = prepare_array(images, working_side(images.shape[1:3], size), chans)
    mean, std = input_stats(arr)
    name = backbone or default_backbone(chans, size, default_device(device))
    return {"backbone": name, "in_channels": chans, "image_size": size, "norm_mean": mean,
            "norm_std": std, "backbone_kwargs": {}}, arr


def pretrain(
    images: np.ndarray,
    method: str = DEFAULT_METHOD,
    backbone: str | None = None,
    run: Run = Run(),
    *,
    method_kwargs: dict[str, Any] | None = None,
    optimizer: str = "adamw",
    weight_decay: float = 1e-4,
    image_size: int | None = None,
    channels: int | None = None,
    recalibrate_bn: bool = True,
    initial_backbone: Checkpoint | None = None,
) -> Checkpoint:
    """Self-supervised pretraining of a backbone on unlabelled images (labels are never seen).

    Args:
        images: uint8 (N, H, W) or (N, H, W, C); any size, resized to the input ``choose_input`` picks.
        method: one of ``ml.ssl.list_methods()``; ``DEFAULT_METHOD`` (SimCLR) by default.
        backbone: registry name, or None for ``default_backbone`` (compact CNN on a CPU).
        run: the budget (``epochs`` instead for a reproducible step count), seed, device, progress
            (messages with the loss and images/s), checkpoint, resumption (the same images; a resumed run
            keeps its checkpoint's settings), chunk, learning rate, batch size and precision: ``Run``.
        method_kwargs: passed to the method (e.g. ``{"temperature": 0.2}``).
        optimizer: "adamw" or "sgd".
        weight_decay: decoupled weight decay.
        image_size, channels: override the automatic input choice.
        recalibrate_bn: re-estimate BatchNorm statistics on the clean images at the end (the
            optimiser state in the checkpoint is untouched, so resuming still works).
        initial_backbone: start from this backbone's weights (e.g. a registered file,
            ``ml.backbones.external``) instead of a fresh one; its input contract (size, channels,
            normalisation) is kept, and the result reloads as it did.

    Returns:
        The trained ``Checkpoint`` (backbone weights + config + training state).
    """
    dev = run.on()
    resume_from = run.resume_from()
    if resume_from is not None:
        c, t = resume_from.config, resume_from.config["train"]  # a later chunk keeps the run's settings
        method, backbone = c["method"], c["backbone"]
        method_kwargs, image_size, channels = c.get("method_kwargs", {}), c["image_size"], c["in_channels"]
        optimizer, weight_decay, run = t["optimizer"], t["weight_decay"], run.resumed(resume_from)
    config, arr = _describe_run(images, backbone, dev, image_size, channels, resume_from, initial_backbone)
    cls = method_class(method)
    method_kwargs = dict(method_kwargs or {})
    config.update(method=cls.name, method_kwargs=method_kwargs, seed=run.seed)
    cfg = run.train_config(len(arr), cls.default_batch_size, cls.default_lr, optimizer=optimizer,
                           weight_decay=weight_decay)
    if cfg.epochs is None and cfg.budget_seconds is None:
        raise ValueError("give budget_seconds or epochs")
    torch.manual_seed(run.seed)
    net = _initial_net(config, initial_backbone)
    ssl = create_method(cls.name, net, **method_kwargs)

    def report(fraction: float, loss: float, ips: float) -> None:
        if run.progress is not None:
            run.progress(fraction, f"{cls.name}: loss {loss:.4f}, {ips:.0f} images/s")

    ckpt = run.train(ssl, arr, cfg, config, resume_from, report)
    if recalibrate_bn:
        _recalibrate(ckpt, net, arr, dev, run.seed, run.checkpoint_path)
    return ckpt


def _describe_run(images: np.ndarray, backbone: str | None, dev: str, image_size: int | None, channels: int | None,
                  resume_from: Checkpoint | None,
                  initial_backbone: Checkpoint | None) -> tuple[dict[str, Any], np.ndarray]:
    """``describe_input`` for a run: a resumed run keeps its normalisation, a run from a given backbone that
    backbone's whole description (external source, normalisation) so the result rebuilds as it did."""
    if initial_backbone is not None:
        image_size, channels = initial_backbone.config["image_size"], initial_backbone.config["in_channels"]
    config, arr = describe_input(images, backbone=backbone, device=dev, image_size=image_size, channels=channels)
    if initial_backbone is not None:
        config = {**initial_backbone.config, **{k: config[k] for k in ("in_channels", "image_size")}}
    if resume_from is not None:
        config["norm_mean"], config["norm_std"] = resume_from.config["norm_mean"], resume_from.config["norm_std"]
    return config, arr


def _initial_net(config: dict[str, Any], initial_backbone: Checkpoint | None) -> Backbone:
    """The backbone training starts from: the given one's weights, or a fresh one (seed first)."""
    if initial_backbone is not None:
        return load_backbone(initial_backbone)
    net = create_backbone(config["backbone"], config["in_channels"], config["image_size"])
    net.set_normalization(config["norm_mean"], config["norm_std"])
    return net


def _recalibrate(ckpt: Checkpoint, net: Backbone, arr: np.ndarray, dev: str, seed: int,
                 checkpoint_path: str | None) -> None:
    """BatchNorm statistics of the clean images into ``ckpt`` (its optimiser state stays: resuming works)."""
    net.load_state_dict(ckpt.backbone_state)
    recalibrate_batchnorm(net, arr, device=dev, seed=seed)
    ckpt.backbone_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    ckpt.config["bn_recalibrated"] = True
    if checkpoint_path:
        ckpt.save(checkpoint_path)


def random_backbone_checkpoint(images: np.ndarray, seed: int = 0, backbone: str | None = None,
                               device: str | None = None) -> Checkpoint:
    """An untrained (randomly initialised) backbone sized to the data: the baseline, and the model the
    service can embed with before any pretraining has run."""
    config, arr = describe_input(images, backbone=backbone, device=device)
    torch.manual_seed(seed)
    model = create_backbone(config["backbone"], config["in_channels"], config["image_size"])
    model.set_normalization(config["norm_mean"], config["norm_std"])
    recalibrate_batchnorm(model, arr, device="cpu", seed=seed)
    config.update(method="none", seed=seed)
    return Checkpoint(config, {k: v.clone() for k, v in model.state_dict().items()}, state={"done": True})
