"""Image normalisation: every PIL mode and size reaches the backbone as the same uint8 layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from ml.images import choose_input, load_image, prepare_array, to_array


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    return np.stack([x, x[::-1] * 0 + 128, 255 - x], axis=2).astype(np.uint8)


def _modes() -> dict[str, Image.Image]:
    rgb = Image.fromarray(_gradient())
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    grey16 = Image.fromarray((np.linspace(0, 4095, 40 * 30).reshape(30, 40)).astype(np.uint16))
    return {"L": rgb.convert("L"), "RGB": rgb, "RGBA": rgba, "P": rgb.convert("P"), "I;16": grey16,
            "CMYK": rgb.convert("CMYK"), "1": rgb.convert("1"), "LA": rgb.convert("LA"),
            "I": rgb.convert("I"), "F": rgb.convert("F"), "YCbCr": rgb.convert("YCbCr")}


@pytest.mark.parametrize("mode", sorted(_modes()))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_normalises(mode, channels):
    img = _modes()[mode]
    assert img.mode == mode
    arr = to_array(img, 28, channels)
    assert arr.shape == (28, 28, channels) and arr.dtype == np.uint8
    assert arr.std() > 5, "image content was lost"


def test_sixteen_bit_is_stretched_not_darkened():
    # A 12-bit image (max 4095) divided by 257 would be nearly black; the stretch uses the full range.
    arr = to_array(_modes()["I;16"], 28, 1)
    assert arr.max() >= 250 and arr.min() <= 5


def test_rgba_transparent_becomes_white():
    img = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert (to_array(img, 28, 3) == 255).all()


def test_palette_with_transparency():
    img = Image.new("P", (12, 12), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.info["transparency"] = 0
    img.putpixel((5, 5), 1)
    arr = to_array(img, 12, 3)
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[5, 5]) == (255, 0, 0)


def test_resize_keeps_aspect_by_centre_crop():
    wide = np.zeros((20, 60), dtype=np.uint8)
    wide[:, 20:40] = 255  # the centre third is white
    arr = to_array(Image.fromarray(wide), 20, 1)
    assert arr.shape == (20, 20, 1) and arr.min() == 255


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((10, 20, 3), dtype=np.uint8))  # 20 wide, 10 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).size == (10, 20)


def test_choose_input():
    digits = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8))] * 3
    assert choose_input(digits) == (28, 1)
    colour = [Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))] * 3
    assert choose_input(colour) == (32, 3)
    photo = [Image.fromarray(np.random.default_rng(2).integers(0, 255, (480, 640, 3), dtype=np.uint8))]
    assert choose_input(photo) == (96, 3)
    grey = np.random.default_rng(3).integers(0, 255, (28, 28, 1), dtype=np.uint8)
    grey_rgb = [Image.fromarray(np.repeat(grey, 3, 2))]
    assert choose_input(grey_rgb) == (28, 1)


def test_prepare_array_passthrough_and_resize(digits_28):
    x = digits_28[0][:5]
    assert prepare_array(x, 28, 1).base is not None or prepare_array(x, 28, 1).shape == (5, 28, 28, 1)
    assert prepare_array(x, 32, 3).shape == (5, 32, 32, 3)
