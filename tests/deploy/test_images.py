"""Image loading (EXIF, grey, RGBA, corrupt), resizing and the NumPy magma colour map."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from md2tf.deploy import images


def test_magma_table_is_dark_to_bright_and_purple_in_the_middle():
    t = images.magma_table().astype(np.float64)
    assert t.shape == (256, 3)
    luminance = t @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) >= -1e-9)  # perceptually ordered: never gets darker
    assert t[0].max() < 5 and t[-1].min() > 180  # near black .. pale yellow
    r, g, b = t[128]
    assert r > g and b > g  # magenta/purple mid-point


def test_colorize_maps_min_to_first_and_percentile_to_last_colour():
    values = np.arange(100, dtype=np.float32).reshape(10, 10)
    rgb = images.colorize(values, percentile=95.0)
    table = images.magma_table()
    assert rgb.shape == (10, 10, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], table[0])
    vmax = np.percentile(values, 95.0)
    saturated = np.all(rgb == table[-1], axis=-1)
    np.testing.assert_array_equal(saturated, values / vmax * 256 >= 255)  # last of 256 bins
    np.testing.assert_array_equal(rgb[5, 0], table[int(50 / vmax * 256)])


def test_colorize_rejects_non_2d():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        images.colorize(np.zeros((2, 3, 4)))


def test_load_grayscale_and_rgba(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    out = images.load_image_rgb(str(tmp_path / "g.png"))
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (200, 100, 50, 255)  # opaque: kept
    rgba[1, 1] = (200, 100, 50, 0)  # transparent: black background
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = images.load_image_rgb(str(tmp_path / "a.png"))
    np.testing.assert_array_equal(out[0, 0], (200, 100, 50))
    np.testing.assert_array_equal(out[1, 1], (0, 0, 0))


def test_load_16_bit_grey_scales_to_8_bit(tmp_path):
    grey16 = np.array([[0, 257, 65535], [25700, 514, 1028]], np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    out = images.load_image_rgb(str(tmp_path / "g16.png"))
    np.testing.assert_array_equal(out[..., 1], [[0, 1, 255], [100, 2, 4]])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_load_applies_exif_orientation(tmp_path):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 255, 255)  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    out = images.load_image_rgb(str(tmp_path / "r.jpg"))
    assert out.shape == (40, 20, 3)  # displayed portrait
    assert out[:15].mean() > 200 and out[25:].mean() < 50  # stored-left ends up on top


def test_load_corrupt_file_names_it(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg"):
        images.load_image_rgb(str(bad))


def test_resize_map_keeps_constants_and_size():
    out = images.resize_map(np.full((8, 16, 1), 0.25, np.float32), 13, 7)
    assert out.shape == (13, 7) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_resize_map_is_bilinear_on_a_ramp():
    ramp = np.tile(np.arange(4, dtype=np.float32), (2, 1))  # columns 0..3
    out = images.resize_map(ramp, 2, 8)
    # Half-pixel centres: output column j samples input x = (j + 0.5) / 2 - 0.5, clamped.
    x = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(out[0], x, atol=1e-5)


def test_structured_images_are_valid_frames():
    frames = images.structured_images(3, 16, 32, seed=0)
    assert len(frames) == 3 and all(f.shape == (16, 32, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.std() > 10 for f in frames)
