"""Image normalisation: every PIL mode and size becomes a backbone input array here, and only here.

Dataset loaders, pretraining and embedding call these functions, and the import's working copies use
the same conversion (``imaging.normalise``), so an image is converted identically wherever it is read
(a sample embedded at import time and the same sample seen by a pretraining job give the same pixels).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

# The mode conversion and the EXIF-upright loader are shared with the import's working copies (app),
# which may not import ml: they live in the PIL-only package ``imaging`` and are re-exported here.
from imaging.normalise import ALPHA_BACKGROUND, load_image, to_l_or_rgb, working_mode  # noqa: F401

# Bounds on the backbone input side. Tiny images (the 8x8 scikit-learn digits of the demo project) are
# upscaled to MIN_* because a CNN with four pooling stages needs about 28 px to keep any spatial
# structure; large images are reduced to MAX_* because CPU pretraining cost grows with the pixel count.
MIN_GREY_SIZE = 28
MAX_GREY_SIZE = 64
MIN_COLOUR_SIZE = 32
MAX_COLOUR_SIZE = 96

# Larger inputs where a GPU pretrains: its throughput pays for the pixels a CPU cannot afford (issue 13).
MAX_GPU_SIZE = 224


def to_array(img: Image.Image, size: int, channels: int) -> np.ndarray:
    """Normalise one image to the backbone input.

    The short side is resized to ``size`` (antialiased bicubic) and the centre square kept, as
    torchvision's eval transform does, so objects keep their aspect ratio.

    Args:
        img: any PIL image (L, RGB, RGBA, P, I;16, CMYK, ...).
        size: output side in pixels.
        channels: 1 (greyscale) or 3 (RGB).

    Returns:
        uint8 array of shape (size, size, channels).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    img = to_l_or_rgb(img)
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy warns on read-only arrays
    if channels == 1:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)


def is_greyscale(img: Image.Image, tolerance: int = 3) -> bool:
    """True when an image carries no colour (greyscale modes, or RGB with equal channels)."""
    if working_mode(img.mode) == "L":
        return True
    rgb = np.asarray(to_l_or_rgb(img).convert("RGB").resize((32, 32)), dtype=np.int16)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return bool(np.percentile(spread, 99) <= tolerance)


def choose_input(sample_images: Iterable[Image.Image], device: str = "cpu") -> tuple[int, int]:
    """Decide the backbone input (size, channels) from a sample of the project's images.

    Greyscale data gets one channel and 28-64 px; colour gets three channels and 32-96 px. The side is
    the median short side rounded to a multiple of 4 and clamped to those bounds, so 8x8 digits become
    28 px, MNIST stays 28 px, CIFAR stays 32 px and photographs become 96 px. On a GPU (``device``
    "cuda") the upper bound is MAX_GPU_SIZE for both, so photographs become 224 px.

    Args:
        sample_images: a few dozen PIL images are enough (working copies do: their short side is
            capped at 256 px, above every bound).
        device: "cpu" or "cuda", where the backbone will train.

    Returns:
        (size, channels).
    """
    images = list(sample_images)
    if not images:
        raise ValueError("choose_input needs at least one image")
    grey = sum(is_greyscale(im) for im in images) >= 0.95 * len(images)
    short = float(np.median([min(im.size) for im in images]))
    side = int(round(short / 4.0)) * 4
    gpu = device.startswith("cuda")
    if grey:
        return int(np.clip(side, MIN_GREY_SIZE, MAX_GPU_SIZE if gpu else MAX_GREY_SIZE)), 1
    return int(np.clip(side, MIN_COLOUR_SIZE, MAX_GPU_SIZE if gpu else MAX_COLOUR_SIZE)), 3


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """(N,H,W) or (N,H,W,C) uint8 to (N,H,W,C); rejects other shapes and dtypes early."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        return images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (N,H,W) or (N,H,W,C), got shape {images.shape}")
    return images


def choose_input_from_array(images: np.ndarray) -> tuple[int, int]:
    """choose_input for an in-memory uint8 batch (N,H,W) or (N,H,W,C)."""
    images = as_nhwc(images)
    step = max(1, len(images) // 64)
    sample = images[::step][:64]
    pil = [Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im[..., :3]) for im in sample]
    return choose_input(pil)


def prepare_array(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Bring an in-memory uint8 batch to (N,size,size,channels) through to_array.

    Arrays already at the target shape are returned unchanged (no copy), which is the common case for
    datasets that were decoded with to_array in the first place.
    """
    images = as_nhwc(images)
    if images.shape[1:] == (size, size, channels):
        return images
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, im in enumerate(images):
        c = im.shape[-1]
        pil = Image.fromarray(im[..., 0] if c == 1 else (im if c in (3, 4) else im[..., :3]))
        out[i] = to_array(pil, size, channels)
    return out


def load_arrays(paths: Sequence[str | os.PathLike], size: int, channels: int) -> np.ndarray:
    """Decode a list of files into one (N,size,size,channels) uint8 array (in this process)."""
    out = np.empty((len(paths), size, size, channels), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = to_array(load_image(p), size, channels)
    return out


def input_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1] (from at most 5,000 of them)."""
    arr = as_nhwc(images)
    step = max(1, len(arr) // 5000)
    sample = arr[::step].astype(np.float32) / 255.0
    return sample.mean(axis=(0, 1, 2)).tolist(), sample.std(axis=(0, 1, 2)).tolist()
