"""One trainer for every self-supervised method (the checkpoint it writes: ``ml.checkpoint``).

Reproducibility: model initialisation is seeded by the caller, each epoch's order comes from a
generator seeded by (seed, epoch), and each step's augmentation from one seeded by (seed, step), so an
epoch-budgeted run on the CPU gives identical weights every time, including when it is interrupted
and resumed from a checkpoint. A time budget is inherently not step-exact (the step count depends on
the machine), but everything else about it is seeded the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ml.checkpoint import Checkpoint
from ml.ssl.base import SSLMethod

ProgressFn = Callable[[float, float, float], None]  # (fraction done, loss, images per second)
# Arrays up to this size are copied into one tensor (on the training device) for the fastest batches;
# larger ones (a big project's memory-mapped working set) are read a batch at a time.
IN_MEMORY_BYTES = 2 * 1024**3


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
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
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
        self.n = len(data)  # type: ignore[arg-type]  # a map-style Dataset has __len__; its stub does not say
        self.steps_per_epoch = max(1, self.n // batch_size)  # drop_last: BatchNorm hates tiny batches

    def epoch(self, seed: int, epoch: int, skip: int) -> Iterator[torch.Tensor]:
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


@dataclass
class TrainState:
    """Where a run stands. Saved in its checkpoint as a plain dict (``Checkpoint.state``), so a resumed
    run carries on: the step and epoch place it in the seeded data order, the clocks in its budget."""

    step: int = 0
    epoch: int = 0
    images_seen: int = 0
    elapsed_s: float = 0.0  # on the budget's clock (``TrainConfig.budget_clock``)
    done: bool = False
    loss: float = math.nan  # moving average of the step losses
    wall_s: float = 0.0
    cpu_s: float = 0.0  # < wall_s when the machine is shared
    images_per_s: float | None = None  # over the whole run, resumes included; set when a call ends

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class _Clocks:
    """The run's clocks, started so that a resumed run's figures go on from where the last call stopped."""

    budget: Callable[[], float]
    budget_start: float
    wall_start: float
    cpu: Callable[[], float]
    cpu_start: float

    @classmethod
    def start(cls, kind: str, state: TrainState) -> _Clocks:
        budget, cpu = make_clock(kind), make_clock("cpu")
        return cls(budget, budget() - state.elapsed_s, time.perf_counter() - state.wall_s, cpu, cpu() - state.cpu_s)

    def stamp(self, state: TrainState, now: float) -> None:
        state.elapsed_s = self.budget() - self.budget_start
        state.wall_s = now - self.wall_start
        state.cpu_s = self.cpu() - self.cpu_start


class _Loop:
    """One ``train`` call: optimiser steps under the schedule, progress reports and periodic saves."""

    def __init__(self, method: SSLMethod, optimizer: torch.optim.Optimizer, batches: _Batches, cfg: TrainConfig,
                 state: TrainState, *, bf16: bool, config: dict[str, Any], progress: ProgressFn | None,
                 checkpoint_path: str | None, stop_after_steps: int | None, stop_after_seconds: float | None):
        self.method, self.optimizer, self.batches, self.cfg, self.state = method, optimizer, batches, cfg, state
        self.bf16, self.progress, self.checkpoint_path = bf16, progress, checkpoint_path
        self.config = {**config, "train": cfg.as_dict()}
        self.total_steps = None if cfg.epochs is None else max(1, round(cfg.epochs * batches.steps_per_epoch))
        self.stop_after_steps, self.stop_after_seconds = stop_after_steps, stop_after_seconds
        self.first_step, self.first_elapsed = state.step, state.elapsed_s
        self.ema_loss: float | None = None
        self.last_report = self.last_save = self.window_start = time.perf_counter()
        self.window_images = 0

    def fraction(self) -> float:
        if self.total_steps is not None:
            return min(1.0, self.state.step / self.total_steps)
        return min(1.0, self.state.elapsed_s / max(1e-9, self.cfg.budget_seconds or 0.0))

    def paused(self) -> bool:
        steps, seconds = self.state.step - self.first_step, self.state.elapsed_s - self.first_elapsed
        return ((self.stop_after_steps is not None and steps >= self.stop_after_steps)
                or (self.stop_after_seconds is not None and seconds >= self.stop_after_seconds))

    def snapshot(self) -> Checkpoint:
        def copy(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu().clone() for k, v in sd.items()}

        return Checkpoint(self.config, copy(self.method.backbone.state_dict()), copy(self.method.state_dict()),
                          self.optimizer.state_dict(), self.state.as_dict())

    def run(self) -> None:
        self.method.train()
        clocks = _Clocks.start(self.cfg.budget_clock, self.state)
        state, per_epoch = self.state, self.batches.steps_per_epoch
        while self.fraction() < 1.0 and not self.paused():
            for batch in self.batches.epoch(self.cfg.seed, state.epoch, state.step - state.epoch * per_epoch):
                self.step(batch)
                self.after_step(len(batch), clocks)
                if self.fraction() >= 1.0 or self.paused():
                    break
            else:
                state.epoch += 1

    def step(self, batch: torch.Tensor) -> None:
        """One optimiser step on a uint8 batch, its learning rate and augmentation seeded by the step."""
        cfg, state = self.cfg, self.state
        factor = lr_factor(self.fraction(), cfg.warmup, cfg.final_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor
        g = torch.Generator().manual_seed(_step_seed(cfg.seed, state.step, 31))
        x = _model_input(batch, self.bf16)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.method(x, g)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {state.step}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        value = float(loss.detach())
        self.ema_loss = value if self.ema_loss is None else 0.9 * self.ema_loss + 0.1 * value
        state.step += 1
        state.images_seen += len(batch)
        state.loss = self.ema_loss

    def after_step(self, images: int, clocks: _Clocks) -> None:
        """Advance the clocks; report about twice a second and save every ``checkpoint_every_s``."""
        self.window_images += images
        now = time.perf_counter()
        clocks.stamp(self.state, now)
        if self.progress is not None and now - self.last_report >= 0.5:
            self.progress(self.fraction(), self.state.loss, self.window_images / max(1e-9, now - self.window_start))
            self.last_report, self.window_images, self.window_start = now, 0, now
        if self.checkpoint_path and now - self.last_save >= self.cfg.checkpoint_every_s:
            self.snapshot().save(self.checkpoint_path)
            self.last_save = time.perf_counter()


def _is_tokens(data: np.ndarray | torch.Tensor) -> bool:
    """(N, L) integer token ids of a text encoder's language model (``ml.ssl.mlm``), not uint8 pixels."""
    dtype = data.dtype
    integer = not (dtype.is_floating_point if isinstance(dtype, torch.dtype) else np.issubdtype(dtype, np.floating))
    return data.ndim == 2 and integer and dtype not in (np.uint8, torch.uint8)


def _model_input(batch: torch.Tensor, bf16: bool) -> torch.Tensor:
    """A batch as the method takes it: images as floats in [0, 1] (channels-last under bf16), token ids as they are."""
    if _is_tokens(batch):
        return batch
    x = batch.float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if bf16 else x


def _on_device(data: np.ndarray | torch.Tensor | Dataset, dev: torch.device) -> torch.Tensor | Dataset:
    """Images as the batches read them: an NCHW uint8 tensor on ``dev``, or a Dataset (too big to copy);
    token ids as an (N, L) tensor on ``dev``."""
    if isinstance(data, np.ndarray | torch.Tensor) and _is_tokens(data):
        return torch.as_tensor(data).to(dev)
    if isinstance(data, np.ndarray) and data.nbytes > IN_MEMORY_BYTES:
        from ml.data import ArrayDataset

        data = ArrayDataset(data)
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, torch.Tensor):
        if data.ndim == 3:
            data = data.unsqueeze(-1)
        data = data.permute(0, 3, 1, 2).contiguous().to(dev)  # NHWC uint8 -> NCHW, kept as uint8
    return data


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
            (e.g. ``ml.data.FileDataset``, decoded in ``cfg.num_workers`` processes); or (N, L) integer
            token ids for a text encoder's language model (``ml.ssl.mlm``).
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
    batches = _Batches(_on_device(data, dev), cfg.batch_size, cfg.num_workers, dev)
    method.to(dev)
    bf16 = use_bf16(cfg.precision, dev)
    if bf16:
        method.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(method, cfg)
    state = TrainState()
    if resume_from is not None:
        method.load_state_dict(resume_from.method_state or {})
        optimizer.load_state_dict(resume_from.optimizer_state or {})
        state = TrainState.from_dict(resume_from.state)
    loop = _Loop(method, optimizer, batches, cfg, state, bf16=bf16, config=config or {}, progress=progress,
                 checkpoint_path=checkpoint_path, stop_after_steps=stop_after_steps,
                 stop_after_seconds=stop_after_seconds)
    loop.run()
    state.done = loop.fraction() >= 1.0
    state.images_per_s = state.images_seen / max(1e-9, state.elapsed_s)
    if progress is not None:
        progress(1.0, state.loss, state.images_per_s)
    final = loop.snapshot()
    if checkpoint_path:
        final.save(checkpoint_path)
    return final
