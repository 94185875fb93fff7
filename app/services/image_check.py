"""Decide whether an uploaded file is an image we accept, and make its thumbnail.

Everything that can be wrong with a file is found here, before anything is stored, so a rejected file
leaves no trace.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"}
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


class ImageRejected(Exception):
    """The file is not an acceptable image; ``reason`` says why in words a user understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckedImage:
    width: int  # upright, after EXIF orientation
    height: int
    mode: str
    format: str
    thumbnail: bytes | None  # JPEG; None when the file itself is one (a small, upright RGB/grey JPEG)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _to_8bit(img: Image.Image) -> Image.Image:
    """Bring any mode to L, RGB or RGBA for display (16-bit and 32-bit greyscale are rescaled)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) or 1.0
        return Image.fromarray(np.clip(arr * (255.0 / hi), 0, 255).astype(np.uint8), "L")
    if img.mode in ("L", "RGB", "RGBA"):
        return img
    if img.mode in ("P", "PA", "LA") or "transparency" in img.info:
        return img.convert("RGBA")
    return img.convert("RGB")  # CMYK, YCbCr, 1, ...


def _thumbnail(img: Image.Image, size: int) -> bytes:
    img = _to_8bit(img)
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        img = background
    img = img.copy()
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def check_image(data: bytes, *, max_pixels: int, thumbnail_size: int) -> CheckedImage:
    if not data:
        raise ImageRejected("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format or ""
            if fmt not in ACCEPTED_FORMATS:
                raise ImageRejected(f"unsupported image format {fmt or 'unknown'}")
            w, h = img.size
            if w * h > max_pixels:
                raise ImageRejected(f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}")
            if w < 1 or h < 1:
                raise ImageRejected("image has no pixels")
            img.load()  # decodes every byte: truncated or corrupt data fails here, not later
            mode = img.mode
            if (fmt == "JPEG" and mode in ("L", "RGB") and max(w, h) <= thumbnail_size
                    and img.getexif().get(0x0112, 1) == 1):
                # Already a thumbnail: re-encoding it would only cost time and a second file.
                return CheckedImage(w, h, mode, fmt, None)
            img = ImageOps.exif_transpose(img)
            return CheckedImage(img.width, img.height, mode, fmt, _thumbnail(img, thumbnail_size))
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not an image (the content is no image format we know)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"image is over the limit of {max_pixels} pixels (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"corrupt or truncated image ({exc})") from None
