"""The working copy of an imported image: upright, 'L' or 'RGB', short side at most ``side`` pixels.

Pretraining and embedding read working copies (through a worker's working set), never the
multi-megapixel originals, which are decoded once, at import. The side is about twice the largest
backbone input (256 px for inputs up to 128 px), so random-resized crops still find detail in it.
"""

from __future__ import annotations

import io

from PIL import Image

from imaging.normalise import to_l_or_rgb, working_mode

WORK_SIDE = 256
JPEG_QUALITY = 95  # chroma kept at full resolution too: the copy feeds a network, not an eye


def original_serves(mode: str, width: int, height: int, side: int = WORK_SIDE) -> bool:
    """True when the original needs neither conversion nor reduction: it is its own working copy
    (no second file; readers load it through ``load_image``, which applies its EXIF orientation)."""
    return mode in ("L", "RGB") and min(width, height) <= side


def extension(mode: str, width: int, height: int, side: int = WORK_SIDE) -> str:
    """'.png' for greyscale (X-rays, microscopy: lossless, and PNG compresses grey well) and for images
    kept at their size (small, lossless originals stay lossless); '.jpg' (quality 95) for reduced colour
    photographs, where PNG would be several times larger."""
    return ".png" if working_mode(mode) == "L" or min(width, height) <= side else ".jpg"


def reduce(img: Image.Image, side: int = WORK_SIDE) -> Image.Image:
    """``img`` (any mode, upright) to 'L'/'RGB' with its short side at most ``side`` (never upscaled)."""
    img = to_l_or_rgb(img)
    w, h = img.size
    if min(w, h) <= side:
        return img
    scale = side / min(w, h)
    size = (max(side, round(w * scale)), max(side, round(h * scale)))
    # reducing_gap: a box reduction first, then bicubic over the last factor of 2 (as PIL's thumbnail()
    # does): faster than bicubic alone on a multi-megapixel photo, and visually the same.
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def encode(img: Image.Image, ext: str) -> bytes:
    out = io.BytesIO()
    if ext == ".png":
        img.save(out, "PNG", compress_level=1)  # fast; the copy is small anyway
    else:
        img.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    return out.getvalue()
