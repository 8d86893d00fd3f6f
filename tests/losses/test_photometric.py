"""Tests for md2tf.losses.photometric (SSIM, photometric error) and md2tf.losses.smoothness."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from md2tf import losses
from tests import reference_np
from tests.conftest import tol


def _pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=shape)
    y = np.clip(x + rng.normal(scale=0.2, size=shape), 0, 1)
    return x, y


class SsimTest(tf.test.TestCase):
    def test_matches_loop_reference(self):
        x, y = _pair([2, 5, 6, 3])
        self.assertAllClose(losses.ssim(x, y), reference_np.ssim_loss(x, y), **tol(np.float64))

    def test_identical_images_give_zero_and_values_in_unit_range(self):
        x, y = _pair([1, 6, 7, 3], seed=1)
        self.assertAllClose(losses.ssim(x, x), np.zeros_like(x), atol=1e-12)
        out = losses.ssim(x, 1.0 - y).numpy()
        self.assertTrue(np.all(out >= 0) and np.all(out <= 1))

    def test_gradient_matches_finite_differences(self):
        x, y = _pair([1, 3, 4, 2], seed=2)
        theo, num = tf.test.compute_gradient(lambda a: losses.ssim(a, tf.constant(y)), [tf.constant(x)], delta=1e-6)
        self.assertAllClose(theo[0], num[0], atol=1e-6)

    def test_rejects_mismatched_shapes(self):
        with self.assertRaisesRegex(ValueError, r"x and y.*\[B, H, W, C\]"):
            losses.ssim(tf.zeros([1, 4, 4, 3]), tf.zeros([1, 4, 5, 3]))


class PhotometricErrorTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.parameters((0.85, True), (0.5, True), (0.85, False))
    def test_matches_reference(self, alpha, use_ssim):
        x, y = _pair([2, 4, 5, 3], seed=3)
        got = losses.photometric_error(x, y, ssim_weight=alpha, use_ssim=use_ssim)
        self.assertEqual(got.shape, [2, 4, 5, 1])
        self.assertAllClose(got, reference_np.photometric_error(x, y, alpha, use_ssim), **tol(np.float64))

    def test_no_ssim_is_channel_mean_l1(self):
        x = np.zeros([1, 2, 2, 3])
        y = np.ones([1, 2, 2, 3]) * [0.3, 0.6, 0.9]
        self.assertAllClose(losses.photometric_error(x, y, use_ssim=False), np.full([1, 2, 2, 1], 0.6))

    def test_gradient_matches_finite_differences(self):
        x, y = _pair([1, 3, 4, 3], seed=4)
        theo, num = tf.test.compute_gradient(
            lambda a: losses.photometric_error(a, tf.constant(y)), [tf.constant(x)], delta=1e-6
        )
        self.assertAllClose(theo[0], num[0], atol=1e-6)

    def test_rejects_bad_rank(self):
        with self.assertRaisesRegex(ValueError, r"pred.*\[B, H, W, C\]"):
            losses.photometric_error(tf.zeros([4, 4, 3]), tf.zeros([1, 4, 4, 3]))


class SmoothnessTest(tf.test.TestCase):
    def test_matches_reference(self):
        rng = np.random.default_rng(5)
        disp = rng.uniform(0.01, 1.0, size=[2, 5, 6, 1])
        image = rng.uniform(size=[2, 5, 6, 3])
        got = losses.edge_aware_smoothness(disp, image)
        self.assertAllClose(got, reference_np.edge_aware_smoothness(disp, image), **tol(np.float64))

    def test_constant_disparity_is_zero_and_scale_invariant(self):
        rng = np.random.default_rng(6)
        image = rng.uniform(size=[1, 4, 5, 3])
        self.assertAllClose(losses.edge_aware_smoothness(np.full([1, 4, 5, 1], 0.3), image), 0.0)
        disp = rng.uniform(0.1, 1.0, size=[1, 4, 5, 1])
        self.assertAllClose(
            losses.edge_aware_smoothness(disp, image), losses.edge_aware_smoothness(7.0 * disp, image), rtol=1e-6
        )

    def test_image_edge_discounts_disparity_edge(self):
        disp = np.ones([1, 4, 6, 1])
        disp[:, :, 3:] = 2.0  # a vertical disparity edge between columns 2 and 3
        flat = np.full([1, 4, 6, 3], 0.5)
        edged = flat.copy()
        edged[:, :, 3:] = 1.0  # an image edge at the same place
        self.assertLess(
            float(losses.edge_aware_smoothness(disp, edged)), float(losses.edge_aware_smoothness(disp, flat))
        )

    def test_gradient_matches_finite_differences(self):
        rng = np.random.default_rng(7)
        disp = tf.constant(rng.uniform(0.1, 1.0, size=[1, 3, 4, 1]))
        image = tf.constant(rng.uniform(size=[1, 3, 4, 3]))
        theo, num = tf.test.compute_gradient(lambda d: losses.edge_aware_smoothness(d, image), [disp])
        self.assertAllClose(theo[0], num[0], atol=1e-6)

    def test_rejects_bad_shapes(self):
        with self.assertRaisesRegex(ValueError, r"disp.*\[B, H, W, 1\]"):
            losses.edge_aware_smoothness(tf.zeros([1, 4, 4, 3]), tf.zeros([1, 4, 4, 3]))
        with self.assertRaisesRegex(ValueError, "disp and image"):
            losses.edge_aware_smoothness(tf.zeros([1, 4, 4, 1]), tf.zeros([1, 8, 8, 3]))
