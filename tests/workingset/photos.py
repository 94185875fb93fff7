"""Photographs made in the test: gradients and shapes, so a resize or a rotation shows in the pixels."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image, ImageDraw


def photo(width: int, height: int, seed: int, **save) -> bytes:
    """A JPEG: a colour gradient, a dark band over the top fifth, and a few random ellipses."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width)[None, :, None]
    y = np.linspace(0, 1, height)[:, None, None]
    base = np.concatenate([x * np.ones_like(y), y * np.ones_like(x), (1 - x) * np.ones_like(y)], axis=2)
    img = Image.fromarray((base * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(min(width, height) // 12,
                                                                                   min(width, height) // 4)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw.rectangle((0, 0, width, height // 5), fill=(10, 10, 10))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, **save)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
