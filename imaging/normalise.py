"""Any image file to upright 8-bit 'L' or 'RGB': the one place where a PIL mode is interpreted.

``ml.images`` (backbone input) and ``app.services.image_check`` (working copy and thumbnail at import)
both call these functions, so a sample's pixels are the same wherever it is read.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

# Background that transparent pixels are composited onto. Transparent PNGs are usually drawn to be
# seen on a white page (icons, scans, cut-outs), so white keeps them looking as their authors meant.
ALPHA_BACKGROUND = (255, 255, 255)

HIGH_DEPTH_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Modes whose pixels carry no colour: they become 'L'; every other mode becomes 'RGB'.
GREY_MODES = HIGH_DEPTH_MODES | {"1", "L", "LA", "La"}


def load_image(path_or_fileobj: str | os.PathLike | BinaryIO | bytes) -> Image.Image:
    """Open an image file fully, honouring its EXIF orientation.

    Args:
        path_or_fileobj: a path, an open binary file, or the raw bytes.

    Returns:
        The decoded first frame (animated GIF/TIFF stacks give frame 0), rotated upright.
    """
    if isinstance(path_or_fileobj, (bytes, bytearray)):
        path_or_fileobj = io.BytesIO(path_or_fileobj)
    with Image.open(path_or_fileobj) as img:
        img.seek(0)
        img.load()
        # exif_transpose returns a copy, so the image outlives the closed file.
        upright = ImageOps.exif_transpose(img)
        return upright if upright is not None else img.copy()


def stretch_high_depth(img: Image.Image) -> Image.Image:
    """16-bit/32-bit/float images to 8-bit L by a robust per-image contrast stretch.

    Sensor data (microscopy, X-ray, thermal) rarely spans the full 16-bit range (12-bit cameras are
    common), so dividing by 257 would leave most images nearly black; the 0.5/99.5 percentiles ignore
    hot pixels.
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    lo, hi = np.percentile(arr, [0.5, 99.5])
    if hi <= lo:
        out = np.zeros(arr.shape, dtype=np.uint8)
    else:
        out = np.clip((arr - lo) * (255.0 / (hi - lo)), 0, 255).round().astype(np.uint8)
    return Image.fromarray(out, mode="L")


def to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 'L' or 'RGB' (``working_mode`` says which), flattening transparency onto
    ALPHA_BACKGROUND."""
    if img.mode in HIGH_DEPTH_MODES:
        return stretch_high_depth(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        composed = Image.alpha_composite(background, rgba)
        return composed.convert("L" if img.mode in ("LA", "La") else "RGB")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    # CMYK, YCbCr, LAB, HSV, RGBX: PIL knows how to reach RGB from each.
    return img.convert("RGB")


def working_mode(mode: str) -> str:
    """The mode ``to_l_or_rgb`` gives an image of ``mode``, known without decoding it."""
    return "L" if mode in GREY_MODES else "RGB"
