"""Decide whether an uploaded file is an image we accept, and make its thumbnail and working copy.

Everything that can be wrong with a file is found here, before anything is stored, so a rejected file
leaves no trace. The file is decoded once: the check, the working copy (what pretraining and embedding
read, ``imaging.working_copy``) and the thumbnail (made from the working copy, so a 12 MP photo is
reduced once) all come from that one decode.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from imaging import working_copy
from imaging.normalise import to_l_or_rgb

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
    working: bytes | None = None  # the working copy; None when the original serves as its own
    working_ext: str = ""  # ".jpg" or ".png" (imaging.working_copy.extension)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def _thumbnail(working: Image.Image, size: int) -> bytes:
    """JPEG of at most ``size`` px a side from the working copy (already 'L' or 'RGB', upright)."""
    img = working.copy()
    img.thumbnail((size, size))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def check_image(data: bytes, *, max_pixels: int, thumbnail_size: int,
                work_side: int = working_copy.WORK_SIDE) -> CheckedImage:
    if not data:
        raise ImageRejected("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
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
                # Already a thumbnail (and its own working copy): re-encoding it would only cost time
                # and a second file.
                return CheckedImage(w, h, mode, fmt, None)
            img = ImageOps.exif_transpose(img)
            work = working_copy.reduce(img, work_side)
            # A large thumbnail setting can ask for more pixels than the working copy has.
            thumb = _thumbnail(work if max(work.size) >= thumbnail_size else to_l_or_rgb(img),
                               thumbnail_size)
            if working_copy.original_serves(mode, img.width, img.height, work_side):
                return CheckedImage(img.width, img.height, mode, fmt, thumb)
            ext = working_copy.extension(mode, img.width, img.height, work_side)
            return CheckedImage(img.width, img.height, mode, fmt, thumb, working_copy.encode(work, ext), ext)
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected("not an image (the content is no image format we know)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"image is over the limit of {max_pixels} pixels (decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"corrupt or truncated image ({exc})") from None
