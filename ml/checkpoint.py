"""The checkpoint: a trained backbone that carries its config (nanoGPT's ``train.py`` habit).

Everything that makes, embeds with, fine-tunes or exports a backbone passes one of these; it holds plain
data and tensors only, so ``torch.load(weights_only=True)`` reads it and no pickled code can run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Checkpoint:
    """A trained backbone with everything needed to rebuild, use or resume it.

    Attributes:
        config: plain-data description: ``backbone``, ``in_channels``, ``image_size``, ``method``,
            ``method_kwargs``, ``norm_mean``, ``norm_std``, ``seed`` and the training settings.
        backbone_state: the backbone's ``state_dict`` (normalisation buffers included).
        method_state: the whole method's ``state_dict`` (heads too), kept so training can resume.
        optimizer_state: the optimizer's ``state_dict``, for resuming.
        state: progress counters (``ml.training.TrainState`` as a dict): ``step``, ``epoch``,
            ``images_seen``, ``elapsed_s``, ``done``, ``loss``, ...
    """

    config: dict[str, Any]
    backbone_state: dict[str, torch.Tensor]
    method_state: dict[str, torch.Tensor] | None = None
    optimizer_state: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
        path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        torch.save(self.__dict__, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str = "cpu") -> Checkpoint:
        """Read a checkpoint; ``weights_only`` refuses pickled code, so a file can't run anything."""
        data = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
        return cls(**data)

    def without_training_state(self) -> Checkpoint:
        """A copy holding only what embedding needs (a fraction of the size)."""
        return Checkpoint(dict(self.config), self.backbone_state, state=dict(self.state))
