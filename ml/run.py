"""What one pretraining call asks of the trainer (``ml.training``): its length, seed, device, chunk and
checkpoint, the settings ``ml.pretrain.pretrain`` and ``ml.text_pretrain.pretrain_text`` share."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ml.checkpoint import Checkpoint
from ml.ssl.base import SSLMethod
from ml.training import ProgressFn, TrainConfig, train


def default_device(device: str | None) -> str:
    """``device``, or CUDA when there is one, else the CPU."""
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class Run:
    """How one pretraining call trains: its length, seed, device and checkpoint, the settings
    ``ml.pretrain.pretrain`` and ``ml.text_pretrain.pretrain_text`` share (each adds its model's own).

    Attributes:
        budget_seconds: the run's budget in seconds of ``budget_clock`` (ignored when ``epochs`` is given).
        epochs: train for this many epochs instead (a reproducible step count).
        budget_clock: "wall" seconds, or "cpu" (process CPU seconds per thread; benchmarks on a shared machine).
        stop_after_seconds: train one chunk of this many seconds (``budget_clock``) of the run and pause
            (``state["done"]`` stays False); resuming from ``checkpoint_path`` continues it.
        seed: seeds initialisation, data order and augmentation.
        device: "cpu", "cuda", ... (default CUDA when available).
        progress: called with (fraction 0..1, message with the loss and the speed).
        checkpoint_path: save here periodically and at the end.
        resume: continue from ``checkpoint_path`` if it exists (same data, same settings: a resumed run
            keeps the seed, learning rate and batch size its checkpoint records).
        lr, batch_size: override the method's defaults.
        precision: "auto", "bf16" or "fp32" (``TrainConfig.precision``).
    """

    budget_seconds: float | None = 300
    epochs: float | None = None
    budget_clock: str = "wall"
    stop_after_seconds: float | None = None
    seed: int = 0
    device: str | None = None
    progress: Callable[[float, str], None] | None = None
    checkpoint_path: str | None = None
    resume: bool = False
    lr: float | None = None
    batch_size: int | None = None
    precision: str = "auto"

    def on(self) -> str:
        """The device to train on."""
        return default_device(self.device)

    def resume_from(self) -> Checkpoint | None:
        """The checkpoint to continue: ``checkpoint_path``'s, when resuming and it exists."""
        path = self.checkpoint_path
        return Checkpoint.load(path) if self.resume and path and os.path.exists(path) else None

    def resumed(self, ckpt: Checkpoint) -> Run:
        """This run with the seed, learning rate and batch size of the run ``ckpt`` is a chunk of."""
        t = ckpt.config["train"]
        return replace(self, seed=t["seed"], lr=t["lr"], batch_size=t["batch_size"])

    def train_config(self, n: int, default_batch_size: int, default_lr: float, **more: Any) -> TrainConfig:
        """The trainer's settings for ``n`` items (a batch no larger), the method's defaults where this run
        gives none; ``more``: further ``TrainConfig`` fields."""
        return TrainConfig(epochs=self.epochs, budget_seconds=None if self.epochs is not None else self.budget_seconds,
                           batch_size=min(self.batch_size or default_batch_size, n), lr=self.lr or default_lr,
                           seed=self.seed, budget_clock=self.budget_clock, precision=self.precision, **more)

    def train(self, method: SSLMethod, data: np.ndarray, cfg: TrainConfig, config: dict[str, Any],
              resume_from: Checkpoint | None, progress: ProgressFn) -> Checkpoint:
        """``train`` on this run's device, checkpoint and chunk."""
        return train(method, data, cfg, device=self.on(), progress=progress, checkpoint_path=self.checkpoint_path,
                     config=config, resume_from=resume_from, stop_after_seconds=self.stop_after_seconds)
