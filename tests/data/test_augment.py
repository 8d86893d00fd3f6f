"""Augmentation: torchvision ColorJitter semantics (NumPy reference), one draw shared by all frames."""

from __future__ import annotations

import colorsys
import itertools

import numpy as np
import pytest
import tensorflow as tf

from md2tf.data import augment
from tests.conftest import tol

LUMA = np.array([0.299, 0.587, 0.114])


def np_gray(x):
    return (x * LUMA).sum(-1, keepdims=True)


def np_brightness(x, f):
    return np.clip(x * f, 0, 1)


def np_contrast(x, f):
    return np.clip(f * x + (1 - f) * np_gray(x).mean(), 0, 1)


def np_saturation(x, f):
    return np.clip(f * x + (1 - f) * np_gray(x), 0, 1)


def np_hue(x, delta):
    out = np.empty_like(x)
    for idx in np.ndindex(x.shape[:-1]):
        h, s, v = colorsys.rgb_to_hsv(*x[idx])
        out[idx] = colorsys.hsv_to_rgb((h + delta) % 1.0, s, v)
    return out


def np_jitter(x, b, c, s, h, order):
    ops = [lambda y: np_brightness(y, b), lambda y: np_contrast(y, c),
           lambda y: np_saturation(y, s), lambda y: np_hue(y, h)]
    for i in order:
        x = ops[i](x)
    return x


@pytest.fixture
def image(rng):
    return rng.uniform(0.05, 0.95, size=(4, 5, 3))


@pytest.mark.parametrize("factor", [0.8, 1.2])
def test_single_ops_match_numpy(image, factor):
    x = tf.constant(image, tf.float32)
    np.testing.assert_allclose(augment.adjust_brightness(x, factor), np_brightness(image, factor), **tol())
    np.testing.assert_allclose(augment.adjust_contrast(x, factor), np_contrast(image, factor), **tol())
    np.testing.assert_allclose(augment.adjust_saturation(x, factor), np_saturation(image, factor),
                               **tol())


@pytest.mark.parametrize("delta", [-0.1, 0.07])
def test_hue_matches_colorsys(image, delta):
    out = augment.adjust_hue(tf.constant(image, tf.float32), delta)
    np.testing.assert_allclose(out, np_hue(image, delta), atol=1e-4)


def test_brightness_is_multiplicative_not_additive():
    black = tf.zeros([2, 2, 3])
    assert float(tf.reduce_max(augment.adjust_brightness(black, 1.2))) == 0.0


def _params(flip, color, b, c, s, h, order):
    return augment.AugmentParams(tf.constant(flip), tf.constant(color), tf.constant(b),
                                 tf.constant(c), tf.constant(s), tf.constant(h),
                                 tf.constant(order, tf.int32))


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_jitter_applies_ops_in_order_to_every_frame(rng, order):
    frames = rng.uniform(0.0, 1.0, size=(3, 4, 5, 3))
    params = _params(False, True, 1.15, 0.85, 1.2, -0.08, order)
    out = augment.color_jitter(tf.constant(frames, tf.float32), params).numpy()
    for k in range(3):  # one draw, identical for all frames (contrast mean per frame)
        np.testing.assert_allclose(out[k], np_jitter(frames[k], 1.15, 0.85, 1.2, -0.08, order),
                                   atol=2e-4)


def test_op_order_matters(rng):
    frames = tf.constant(rng.uniform(0.0, 1.0, size=(1, 4, 5, 3)), tf.float32)
    a = augment.color_jitter(frames, _params(False, True, 1.2, 0.8, 1.2, 0.1, (0, 1, 2, 3)))
    b = augment.color_jitter(frames, _params(False, True, 1.2, 0.8, 1.2, 0.1, (3, 2, 1, 0)))
    assert float(tf.reduce_max(tf.abs(a - b))) > 1e-3


def test_no_color_and_identity_params_leave_images_unchanged(rng):
    frames = tf.constant(rng.uniform(0.0, 1.0, size=(2, 4, 5, 3)), tf.float32)
    off = _params(False, False, 1.2, 0.8, 1.2, 0.1, (0, 1, 2, 3))
    np.testing.assert_array_equal(augment.color_jitter(frames, off), frames)
    ident = augment.identity_params()
    np.testing.assert_array_equal(augment.color_jitter(frames, ident), frames)
    np.testing.assert_array_equal(augment.flip_horizontal(frames, ident.flip), frames)


def test_flip_mirrors_width():
    x = tf.reshape(tf.range(2 * 3 * 4 * 1, dtype=tf.float32), [2, 3, 4, 1])
    np.testing.assert_array_equal(augment.flip_horizontal(x, tf.constant(True)), x.numpy()[:, :, ::-1])


def test_draw_params_ranges_frequencies_and_determinism():
    draws = [augment.draw_params(tf.constant([7, i]), 0.5, 0.5) for i in range(400)]
    flips = np.mean([bool(d.flip) for d in draws])
    colors = np.mean([bool(d.color) for d in draws])
    assert 0.4 < flips < 0.6 and 0.4 < colors < 0.6
    for name, (lo, hi) in [("brightness", augment.BRIGHTNESS_RANGE), ("contrast", augment.CONTRAST_RANGE),
                           ("saturation", augment.SATURATION_RANGE), ("hue", augment.HUE_RANGE)]:
        values = np.array([float(getattr(d, name)) for d in draws])
        assert values.min() >= lo and values.max() <= hi
        assert values.max() - values.min() > 0.8 * (hi - lo)  # spans the range
    orders = {tuple(d.order.numpy()) for d in draws}
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert len(orders) > 12  # many of the 24 permutations occur
    again = augment.draw_params(tf.constant([7, 3]))
    for a, b in zip(again, draws[3]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("flip_prob, color_prob", itertools.product([0.0, 1.0], [0.0, 1.0]))
def test_probability_extremes(flip_prob, color_prob):
    for i in range(20):
        d = augment.draw_params(tf.constant([1, i]), flip_prob, color_prob)
        assert bool(d.flip) == (flip_prob == 1.0) and bool(d.color) == (color_prob == 1.0)


def test_jitter_in_tf_function_and_graph(rng):
    frames = tf.constant(rng.uniform(0.0, 1.0, size=(2, 4, 5, 3)), tf.float32)

    @tf.function
    def run(seed):
        return augment.color_jitter(frames, augment.draw_params(seed, 0.5, 1.0))

    out = run(tf.constant([3, 4]))
    assert out.shape == frames.shape
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
