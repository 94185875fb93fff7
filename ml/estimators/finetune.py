"""Fine-tuning the backbone itself on the labels (for GPU workers; it also runs, slowly, on a CPU).

The probe and label spreading only move a decision boundary inside a frozen embedding; once there are a
few hundred labels, adapting the features too usually pays. Starts from a self-supervised checkpoint when
one is given (``ml.pretrain``), otherwise from a fresh ``ml.backbones`` network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import LoupeClassifier


class FineTuneClassifier(LoupeClassifier):
    """Backbone + linear head trained end to end with cross-entropy on the labelled images.

    ``X`` is images flattened from (N, H, W, C) to (N, H*W*C), pixel values in [0, 255] (uint8 or float),
    at ``image_size`` x ``image_size`` with ``in_channels`` channels.

    Args:
        backbone: ``ml.backbones`` registry name (ignored when ``checkpoint`` is given).
        checkpoint: a ``ml.training.Checkpoint`` or its path, to start from pretrained weights.
        in_channels, image_size: the input layout (taken from the checkpoint when there is one).
        n_classes: the full class count; None takes the labels seen.
        epochs: passes over the labelled set (at least ``min_steps`` optimiser steps either way).
        lr, head_lr_scale: AdamW learning rate of the backbone; the new head learns ``head_lr_scale``x faster.
        batch_size, weight_decay, seed, device: the usual; device None picks CUDA when available.
    """

    def __init__(self, backbone="cnn", checkpoint=None, in_channels=1, image_size=28, n_classes=None, epochs=20,
                 min_steps=50, lr=3e-4, head_lr_scale=10.0, batch_size=64, weight_decay=1e-4, seed=0, device=None):
        self.backbone = backbone
        self.checkpoint = checkpoint
        self.in_channels = in_channels
        self.image_size = image_size
        self.n_classes = n_classes
        self.epochs = epochs
        self.min_steps = min_steps
        self.lr = lr
        self.head_lr_scale = head_lr_scale
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = True  # CUDA kernels are not bit-reproducible
        return tags

    def _build(self) -> nn.Module:
        from ml.backbones import create_backbone

        if self.checkpoint is not None:
            from ml.embedding import load_backbone

            net = load_backbone(self.checkpoint)
        else:
            net = create_backbone(self.backbone, self.in_channels, self.image_size)
        return net

    def _images(self, X) -> torch.Tensor:
        """Flattened NHWC pixels in [0, 255] to the backbone's normalised (N, C, H, W) input."""
        c, s = self.net_.in_channels, self.net_.image_size
        if X.shape[1] != c * s * s:
            raise ValueError(f"expected {c * s * s} features ({s}x{s}x{c} images), got {X.shape[1]}")
        x = torch.from_numpy(np.asarray(X, dtype=np.float32) / 255.0).view(-1, s, s, c).permute(0, 3, 1, 2)
        return self.net_.normalize(x.contiguous())

    def fit(self, X, y, progress=None):
        """progress: optional callable(fraction, loss), called every few steps (a job reports it)."""
        X, codes, _ = self._validate_fit(X, y)
        self.seen_classes_ = np.unique(codes)
        self.class_counts_ = np.bincount(codes, minlength=len(self.classes_))[self.seen_classes_]
        torch.manual_seed(self.seed)
        dev = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_ = self._build()
        self.head_ = nn.Linear(self.net_.out_dim, len(self.classes_))
        self.device_ = str(dev)
        if len(self.seen_classes_) < 2:
            return self  # nothing to discriminate yet: predict_proba says the label frequencies
        net, head = self.net_.to(dev).train(), self.head_.to(dev).train()
        opt = torch.optim.AdamW([
            {"params": net.parameters(), "lr": self.lr},
            {"params": head.parameters(), "lr": self.lr * self.head_lr_scale},
        ], weight_decay=self.weight_decay)
        xs, ys = self._images(X), torch.from_numpy(codes)
        # Unseen classes are masked out of the loss so their logits are not pushed to -infinity by a
        # handful of examples of the others; they stay reachable when their first labels arrive.
        mask = torch.full((len(self.classes_),), float("-inf"))
        mask[torch.from_numpy(self.seen_classes_)] = 0.0
        gen = torch.Generator().manual_seed(self.seed)
        bs = min(self.batch_size, len(xs))
        steps = max(self.min_steps, self.epochs * int(np.ceil(len(xs) / bs)))
        self.n_iter_ = steps
        every = max(1, steps // 50)
        # The trainer's rule (ml.training.use_bf16): bf16 autocast where the hardware has it natively.
        from ml.training import use_bf16

        bf16 = use_bf16("auto", dev)
        for step in range(steps):
            idx = torch.randint(len(xs), (bs,), generator=gen)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                logits = head(net(xs[idx].to(dev))).float() + mask.to(dev)
            loss = nn.functional.cross_entropy(logits, ys[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if progress is not None and (step + 1) % every == 0:
                progress((step + 1) / steps, float(loss.detach()))
        self.loss_ = float(loss.detach())
        self.net_, self.head_ = net.eval(), head.eval()
        return self

    @torch.inference_mode()
    def predict_proba(self, X):
        X = self._validate_predict(X)
        if len(self.seen_classes_) < 2:
            return self._prior_proba(len(X), self.seen_classes_, self.class_counts_)
        dev = torch.device(self.device_)
        mask = torch.full((len(self.classes_),), float("-inf"), device=dev)
        mask[torch.from_numpy(self.seen_classes_).to(dev)] = 0.0
        out = []
        xs = self._images(X)
        for s in range(0, len(xs), 512):
            out.append(torch.softmax(self.head_(self.net_(xs[s:s + 512].to(dev))) + mask, dim=1).cpu())
        return torch.cat(out).double().numpy()
