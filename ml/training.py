"""One trainer for every self-supervised method, and the checkpoint that carries its config.

Reproducibility: model initialisation is seeded by the caller, each epoch's order comes from a
generator seeded by (seed, epoch), and each step's augmentation from one seeded by (seed, step), so an
epoch-budgeted run on the CPU gives identical weights every time, including when it is interrupted
and resumed from a checkpoint. A time budget is inherently not step-exact (the step count depends on
the machine), but everything else about it is seeded the same way.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ml.ssl.base import SSLMethod

ProgressFn = Callable[[float, float, float], None]  # (fraction done, loss, images per second)
# Arrays up to this size are copied into one tensor (on the training device) for the fastest batches;
# larger ones (a big project's memory-mapped working set) are read a batch at a time.
IN_MEMORY_BYTES = 2 * 1024**3


@dataclass
class Checkpoint:
    """A trained backbone with everything needed to rebuild, use or resume it.

    Attributes:
        config: plain-data description: ``backbone``, ``in_channels``, ``image_size``, ``method``,
            ``method_kwargs``, ``norm_mean``, ``norm_std``, ``seed`` and the training settings.
        backbone_state: the backbone's ``state_dict`` (normalisation buffers included).
        method_state: the whole method's ``state_dict`` (heads too), kept so training can resume.
        optimizer_state: the optimizer's ``state_dict``, for resuming.
        state: progress counters: ``step``, ``epoch``, ``images_seen``, ``elapsed_s``, ``done``, ``loss``.
    """

    config: dict[str, Any]
    backbone_state: dict[str, torch.Tensor]
    method_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        torch.save(self.__dict__, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str = "cpu") -> Checkpoint:
        """Read a checkpoint; ``weights_only`` refuses pickled code, so a file can't run anything."""
        data = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
        return cls(**data)

    def without_training_state(self) -> Checkpoint:
        """A copy holding only what embedding needs (a fraction of the size)."""
        return Checkpoint(dict(self.config), self.backbone_state, state=dict(self.state))


@dataclass
class TrainConfig:
    """Trainer settings. Exactly one of ``epochs`` and ``budget_seconds`` bounds the run (epochs wins)."""

    epochs: float | None = None
    budget_seconds: float | None = 300.0
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # or "sgd" (momentum 0.9, nesterov)
    warmup: float = 0.05  # fraction of the run spent ramping the learning rate up
    final_lr_ratio: float = 0.02
    seed: int = 0
    num_workers: int = 0  # for Dataset input: decoding processes
    checkpoint_every_s: float = 60.0
    # "wall": the budget is wall-clock seconds (what a job's user waits for). "cpu": process CPU
    # seconds divided by torch's thread count, i.e. wall seconds on an otherwise idle machine, so a
    # benchmark on a shared machine measures the method, not the neighbours' load.
    budget_clock: str = "wall"
    # "auto": bf16 autocast and channels-last where the hardware does bf16 natively (CUDA; CPUs with
    # AVX512-BF16 or AMX, where oneDNN makes a step about twice as fast), fp32 elsewhere. "fp32"
    # forces full precision; "bf16" forces autocast.
    precision: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def lr_factor(fraction: float, warmup: float, final_ratio: float) -> float:
    """Linear warm-up then cosine decay, as a function of the fraction of the run done."""
    if warmup > 0 and fraction < warmup:
        return max(fraction / warmup, 1e-3)
    t = min(1.0, (fraction - warmup) / max(1e-9, 1 - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * t))


def make_optimizer(method: SSLMethod, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on BatchNorm and biases: decaying them only fights the normalisation.
    decay, no_decay = [], []
    for p in method.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_clock(kind: str) -> Callable[[], float]:
    """A monotonic seconds counter: wall clock, or this process's CPU time per torch thread."""
    if kind == "wall":
        return time.perf_counter
    if kind == "cpu":
        threads = max(1, torch.get_num_threads())
        return lambda: time.process_time() / threads
    raise ValueError(f"budget_clock must be 'wall' or 'cpu', got {kind!r}")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast (with channels-last) on this device."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return True
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _step_seed(seed: int, counter: int, salt: int) -> int:
    return (seed * 1_000_003 + counter * 7919 + salt) % (2**63 - 1)


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(_step_seed(seed, epoch, 17)))


class _Batches:
    """Batches of uint8 (B, C, H, W) for one epoch, from an in-memory tensor or a file Dataset."""

    def __init__(self, data: torch.Tensor | Dataset, batch_size: int, num_workers: int, device: torch.device):
        self.data, self.batch_size, self.num_workers, self.device = data, batch_size, num_workers, device
        self.n = len(data)
        self.steps_per_epoch = max(1, self.n // batch_size)  # drop_last: BatchNorm hates tiny batches

    def epoch(self, seed: int, epoch: int, skip: int):
        order = _epoch_order(self.n, seed, epoch)[: self.steps_per_epoch * self.batch_size]
        order = order[skip * self.batch_size:]
        if isinstance(self.data, torch.Tensor):
            for i in range(0, len(order), self.batch_size):
                yield self.data[order[i:i + self.batch_size].to(self.data.device)]
            return
        loader = DataLoader(self.data, batch_size=self.batch_size, sampler=order.tolist(),
                            num_workers=self.num_workers, pin_memory=self.device.type == "cuda")
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)


def train(
    method: SSLMethod,
    data: np.ndarray | torch.Tensor | Dataset,
    cfg: TrainConfig,
    *,
    device: str | torch.device | None = None,
    progress: ProgressFn | None = None,
    checkpoint_path: str | None = None,
    config: dict[str, Any] | None = None,
    resume_from: Checkpoint | None = None,
    stop_after_steps: int | None = None,
    stop_after_seconds: float | None = None,
) -> Checkpoint:
    """Train ``method`` on unlabelled images until the epoch or time budget is spent.

    Args:
        method: an ``SSLMethod`` wrapping the backbone (seed the model init before building it).
        data: uint8 images (N, H, W, C) as numpy/torch, or a Dataset yielding uint8 (C, H, W) tensors
            (e.g. ``ml.data.FileDataset``, decoded in ``cfg.num_workers`` processes).
        cfg: trainer settings.
        device: "cpu", "cuda", ... (default: CUDA when available).
        progress: called about twice a second with (fraction, loss, images/s).
        checkpoint_path: where to save every ``cfg.checkpoint_every_s`` and at the end.
        config: model description stored in the checkpoint (backbone, input, method, ...).
        resume_from: a checkpoint of this same run to continue from.
        stop_after_steps: pause after this many steps of this call (``state["done"]`` stays False),
            e.g. to yield a shared GPU; resuming from the result continues the same run.
        stop_after_seconds: pause likewise after this many seconds of this call, on the budget's clock
            (a chunk of a longer run: the learning-rate schedule still spans the whole budget).

    Returns:
        The final ``Checkpoint`` (also saved to ``checkpoint_path`` when given).
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if isinstance(data, np.ndarray) and data.nbytes > IN_MEMORY_BYTES:
        from ml.data import ArrayDataset

        data = ArrayDataset(data)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, torch.Tensor):
        if data.ndim == 3:
            data = data.unsqueeze(-1)
        data = data.permute(0, 3, 1, 2).contiguous().to(dev)  # NHWC uint8 -> NCHW, kept as uint8
    batches = _Batches(data, cfg.batch_size, cfg.num_workers, dev)
    method.to(dev)
    bf16 = use_bf16(cfg.precision, dev)
    if bf16:
        method.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(method, cfg)
    state = {"step": 0, "epoch": 0, "images_seen": 0, "elapsed_s": 0.0, "done": False, "loss": float("nan")}
    if resume_from is not None:
        method.load_state_dict(resume_from.method_state)
        optimizer.load_state_dict(resume_from.optimizer_state)
        state.update(resume_from.state)
    total_steps = None if cfg.epochs is None else max(1, round(cfg.epochs * batches.steps_per_epoch))
    full_config = {**(config or {}), "train": cfg.as_dict()}

    def fraction() -> float:
        if total_steps is not None:
            return min(1.0, state["step"] / total_steps)
        return min(1.0, state["elapsed_s"] / max(1e-9, cfg.budget_seconds or 0.0))

    def snapshot() -> Checkpoint:
        return Checkpoint(full_config, {k: v.detach().cpu().clone() for k, v in method.backbone.state_dict().items()},
                          {k: v.detach().cpu().clone() for k, v in method.state_dict().items()},
                          optimizer.state_dict(), dict(state))

    method.train()
    clock = make_clock(cfg.budget_clock)
    start = clock() - state["elapsed_s"]
    wall_start = time.perf_counter() - state.get("wall_s", 0.0)
    cpu_clock = make_clock("cpu")
    cpu_start = cpu_clock() - state.get("cpu_s", 0.0)
    last_report = last_save = time.perf_counter()
    window_images, window_start, ema_loss = 0, time.perf_counter(), None
    first_step, first_elapsed = state["step"], state["elapsed_s"]
    paused = lambda: ((stop_after_steps is not None and state["step"] - first_step >= stop_after_steps)  # noqa: E731
                      or (stop_after_seconds is not None and state["elapsed_s"] - first_elapsed >= stop_after_seconds))
    while fraction() < 1.0 and not paused():
        skip = state["step"] - state["epoch"] * batches.steps_per_epoch
        for batch in batches.epoch(cfg.seed, state["epoch"], skip):
            factor = lr_factor(fraction(), cfg.warmup, cfg.final_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * factor
            g = torch.Generator().manual_seed(_step_seed(cfg.seed, state["step"], 31))
            x = batch.float().div_(255.0)
            if bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                loss = method(x, g)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at step {state['step']}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            ema_loss = value if ema_loss is None else 0.9 * ema_loss + 0.1 * value
            state["step"] += 1
            state["images_seen"] += len(batch)
            state["loss"] = ema_loss
            window_images += len(batch)
            now = time.perf_counter()
            state["elapsed_s"] = clock() - start
            state["wall_s"] = now - wall_start
            state["cpu_s"] = cpu_clock() - cpu_start  # < wall_s when the machine is shared
            if progress is not None and now - last_report >= 0.5:
                progress(fraction(), ema_loss, window_images / max(1e-9, now - window_start))
                last_report, window_images, window_start = now, 0, now
            if checkpoint_path and now - last_save >= cfg.checkpoint_every_s:
                snapshot().save(checkpoint_path)
                last_save = time.perf_counter()
            if fraction() >= 1.0 or paused():
                break
        else:
            state["epoch"] += 1
    state["done"] = fraction() >= 1.0
    images_per_s = state["images_seen"] / max(1e-9, state["elapsed_s"])  # over the whole run, resumes included
    state["images_per_s"] = images_per_s
    if progress is not None:
        progress(1.0, state["loss"], images_per_s)
    final = snapshot()
    if checkpoint_path:
        final.save(checkpoint_path)
    return final
