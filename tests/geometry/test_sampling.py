"""Tests for md2tf.geometry.sampling.bilinear_sample."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from md2tf import geometry
from tests import reference_np
from tests.conftest import tol


def _image(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(size=shape).astype(dtype)


class BilinearSampleTest(tf.test.TestCase, parameterized.TestCase):
    def test_identity_coordinates_return_image_exactly(self):
        image = _image([2, 5, 7, 3])
        out = geometry.bilinear_sample(image, geometry.pixel_grid(2, 5, 7))
        self.assertAllEqual(out, image)

    def test_matches_loop_reference_inside_and_outside(self):
        image = _image([2, 4, 6, 2], dtype=np.float64)
        # Coordinates spanning beyond the borders on both sides, different output size (3 x 5).
        coords = np.random.default_rng(1).uniform(-2.0, 8.0, size=[2, 3, 5, 2])
        got = geometry.bilinear_sample(tf.constant(image), tf.constant(coords))
        self.assertAllClose(got, reference_np.bilinear_sample(image, coords), **tol(np.float64))

    def test_half_pixel_shift_averages_neighbours(self):
        image = np.arange(12, dtype=np.float32).reshape([1, 3, 4, 1])
        coords = geometry.pixel_grid(1, 3, 4) + tf.constant([0.5, 0.0])
        out = geometry.bilinear_sample(image, coords).numpy()[0, :, :, 0]
        # Columns 0..2 average with the right neighbour; column 3 clamps to the border (value kept).
        self.assertAllClose(out[:, :3], (image[0, :, :3, 0] + image[0, :, 1:, 0]) / 2)
        self.assertAllClose(out[:, 3], image[0, :, 3, 0])

    def test_border_clamping(self):
        image = _image([1, 3, 4, 1])
        coords = tf.constant([[[[-5.0, -5.0], [10.0, 1.0], [2.0, 99.0]]]])
        out = geometry.bilinear_sample(image, coords).numpy()[0, 0, :, 0]
        self.assertAllClose(out, [image[0, 0, 0, 0], image[0, 1, 3, 0], image[0, 2, 2, 0]])

    def test_gradients_match_finite_differences(self):
        image = tf.constant(_image([1, 3, 4, 2], dtype=np.float64))
        # Away from integer coordinates (where the sampler has kinks) and inside the image.
        coords = tf.constant(np.random.default_rng(2).uniform(0.1, 2.0, size=[1, 2, 3, 2]) + [[0.3, 0.0]])
        theo, num = tf.test.compute_gradient(geometry.bilinear_sample, [image, coords])
        for a, b in zip(theo, num):
            self.assertAllClose(a, b, atol=1e-6)

    def test_clamped_coordinates_get_zero_gradient(self):
        image = tf.constant(_image([1, 3, 4, 1]))
        coords = tf.constant([[[[-3.0, 1.5], [7.0, 1.5]]]])
        with tf.GradientTape() as tape:
            tape.watch(coords)
            out = tf.reduce_sum(geometry.bilinear_sample(image, coords))
        self.assertAllEqual(tape.gradient(out, coords)[..., 0], tf.zeros([1, 1, 2]))

    def test_nonfinite_coordinates_never_raise(self):
        # A NaN cast to int is INT_MIN: as a gather index it raises InvalidArgumentError on CPU.
        image = _image([1, 3, 4, 2])
        nan, inf = float("nan"), float("inf")
        coords = tf.constant([[[[nan, 1.0], [1.0, nan], [inf, 1.0], [-inf, -inf], [1.0, 2.0]]]])
        with tf.GradientTape() as tape:
            tape.watch(coords)
            out = geometry.bilinear_sample(image, coords)
            total = tf.reduce_sum(tf.where(tf.math.is_nan(out), 0.0, out))
        out = out.numpy()[0, 0]
        self.assertTrue(np.all(np.isnan(out[:2])))
        self.assertAllEqual(out[2], image[0, 1, 3])  # +inf clamps to the right border
        self.assertAllEqual(out[3], image[0, 0, 0])
        self.assertAllEqual(out[4], image[0, 2, 1])
        grad = tape.gradient(total, coords).numpy()
        self.assertTrue(np.all(np.isfinite(grad)))
        self.assertAllEqual(grad[0, 0, :2], np.zeros([2, 2]))
        xla = tf.function(geometry.bilinear_sample, jit_compile=True)
        self.assertAllEqual(np.isnan(xla(image, coords).numpy()[0, 0]), np.isnan(out))

    def test_warp_with_nonfinite_depth_or_pose_never_raises(self):
        image = _image([1, 4, 6, 3])
        K = tf.constant([[[3.0, 0.0, 2.5], [0.0, 3.0, 1.5], [0.0, 0.0, 1.0]]])
        inv_K = tf.linalg.inv(K)
        depth = np.full([1, 4, 6, 1], 5.0, np.float32)
        depth[0, 1, 2, 0] = np.nan
        depth[0, 2, 3, 0] = np.inf
        pose = tf.eye(4, batch_shape=[1])
        out = geometry.warp(image, depth, pose, K, inv_K).numpy()
        self.assertTrue(np.all(np.isnan(out[0, 1, 2])))
        self.assertAllClose(out[0, 0, 0], image[0, 0, 0], **tol())
        nan_pose = tf.fill([1, 4, 4], float("nan"))
        self.assertTrue(np.all(np.isnan(geometry.warp(image, depth, nan_pose, K, inv_K).numpy())))

    def test_compiles_with_xla_and_unknown_sizes(self):
        image = _image([2, 4, 6, 3])
        coords = np.random.default_rng(3).uniform(-1.0, 7.0, size=[2, 4, 6, 2]).astype(np.float32)
        want = geometry.bilinear_sample(image, coords)
        xla = tf.function(geometry.bilinear_sample, jit_compile=True)
        self.assertAllClose(xla(image, coords), want, **tol())
        dynamic = tf.function(
            geometry.bilinear_sample,
            input_signature=[tf.TensorSpec([None, None, None, 3]), tf.TensorSpec([None, None, None, 2])],
        )
        self.assertAllClose(dynamic(image, coords), want, **tol())

    def test_rejects_bad_shapes(self):
        with self.assertRaisesRegex(ValueError, r"coords.*\[B, H, W, 2\]"):
            geometry.bilinear_sample(tf.zeros([1, 4, 4, 3]), tf.zeros([1, 4, 4, 3]))
        with self.assertRaisesRegex(ValueError, r"image.*\[B, h, w, C\]"):
            geometry.bilinear_sample(tf.zeros([4, 4, 3]), tf.zeros([1, 4, 4, 2]))
        with self.assertRaisesRegex(ValueError, "batch"):
            geometry.bilinear_sample(tf.zeros([2, 4, 4, 3]), tf.zeros([1, 4, 4, 2]))
