"""Colour maps, image/scalar summaries and the progress bar."""

from __future__ import annotations

import glob

import numpy as np
import tensorflow as tf

from md2tf.training import summaries


def test_colormap_hits_table_entries_and_interpolates():
    table = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 1]], np.float32)
    out = summaries.colormap(tf.constant([0.0, 0.5, 1.0, 0.25, 2.0, -1.0]), table).numpy()
    np.testing.assert_allclose(out[:3], table, atol=1e-6)
    np.testing.assert_allclose(out[3], [0.5, 0, 0], atol=1e-6)  # halfway between entries 0 and 1
    np.testing.assert_allclose(out[4], table[-1], atol=1e-6)  # clipped above
    np.testing.assert_allclose(out[5], table[0], atol=1e-6)  # clipped below


def test_colorize_disparity_uses_per_image_percentile():
    # A ramp 1..100: the 95th percentile maps to the top colour, the smallest value near the bottom.
    ramp = np.arange(1, 101, dtype=np.float32).reshape(1, 10, 10, 1)
    rgb = summaries.colorize_disparity(tf.constant(np.concatenate([ramp, 10 * ramp]))).numpy()
    assert rgb.shape == (2, 10, 10, 3) and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_allclose(rgb[0], rgb[1], atol=1e-6)  # scale-invariant per image
    top = summaries._MAGMA[-1]
    np.testing.assert_allclose(rgb[0, 9, 9], top, atol=1e-6)  # 100 > vmax (= 95 or 96): clipped


def test_colormap_paints_nan_and_infinities_black():
    values = tf.constant([[0.5, np.nan], [np.inf, -np.inf]])
    out = summaries.colormap(values).numpy()  # a NaN cast to an index used to fail the gather
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(out[0, 0], summaries.colormap(tf.constant(0.5)).numpy(), atol=1e-6)
    assert out[0, 0].max() > 0.1


def test_colorize_disparity_with_non_finite_pixels():
    ramp = np.arange(1, 101, dtype=np.float32).reshape(1, 10, 10, 1)
    broken = ramp.copy()
    broken[0, 0, :3, 0] = [np.nan, np.inf, -np.inf]
    both = np.concatenate([broken, np.full_like(ramp, np.nan)])
    rgb = summaries.colorize_disparity(tf.constant(both)).numpy()
    assert np.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1
    np.testing.assert_array_equal(rgb[0, 0, :3], 0.0)  # black
    np.testing.assert_array_equal(rgb[1], 0.0)  # a wholly diverged image: all black
    np.testing.assert_allclose(rgb[0, 9, 9], summaries._MAGMA[-1], atol=1e-6)  # the rest as before
    # Infinities do not set the scale: with the top 10 % infinite, vmax is still a finite value.
    ramp[0, 9, :, 0] = np.inf
    rgb = summaries.colorize_disparity(tf.constant(ramp)).numpy()
    np.testing.assert_array_equal(rgb[0, 9], 0.0)
    np.testing.assert_allclose(rgb[0, 8, 9], summaries._MAGMA[-1], atol=1e-6)


def test_scalars_and_images_land_in_event_file(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    summaries.write_scalars(writer, {"loss/total": 0.5}, step=3, prefix="val/")
    summaries.write_images(writer, {"disparity/s0": tf.zeros([1, 4, 6, 3])}, step=3)
    tags = {}
    for path in glob.glob(str(tmp_path / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags[value.tag] = (event.step, value)
    assert tags["val/loss/total"][0] == 3
    assert float(tf.make_ndarray(tags["val/loss/total"][1].tensor)) == 0.5
    assert "disparity/s0" in tags
