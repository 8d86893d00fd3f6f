"""Tests for md2tf.geometry.projection (pixel_grid, backproject, project, warp)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from md2tf import geometry
from tests import reference_np
from tests.conftest import tol

B, H, W = 2, 4, 6


def _k(dtype=tf.float32):
    return geometry.intrinsics_matrix(5.0, 4.0, 2.5, 1.5, batch=B, dtype=dtype)


def _translation(tx, ty=0.0, tz=0.0, dtype=tf.float32):
    return geometry.pose_to_matrix(tf.zeros([B, 3], dtype), tf.constant([[tx, ty, tz]] * B, dtype))


class PixelGridTest(tf.test.TestCase):
    def test_values(self):
        grid = geometry.pixel_grid(1, 2, 3).numpy()[0]
        self.assertAllEqual(grid[..., 0], [[0, 1, 2], [0, 1, 2]])
        self.assertAllEqual(grid[..., 1], [[0, 0, 0], [1, 1, 1]])


class ProjectionTest(tf.test.TestCase, parameterized.TestCase):
    def test_backproject_then_project_is_identity(self):
        depth = tf.random.stateless_uniform([B, H, W, 1], seed=(1, 2), minval=1.0, maxval=10.0)
        k = _k()
        pix = geometry.project(geometry.backproject(depth, geometry.invert_intrinsics(k)), k, tf.eye(4, batch_shape=[B]))
        self.assertAllClose(pix, geometry.pixel_grid(B, H, W), atol=1e-5)

    def test_backproject_matches_numpy(self):
        depth = np.random.default_rng(0).uniform(1, 5, size=[B, H, W, 1])
        k = _k(tf.float64)
        got = geometry.backproject(tf.constant(depth), geometry.invert_intrinsics(k))
        self.assertAllClose(got, reference_np.backproject(depth, k.numpy()), **tol(np.float64))
        # z of every point is the depth itself.
        self.assertAllClose(got[..., 2:], depth, **tol(np.float64))

    def test_project_matches_numpy_with_rotation(self):
        rng = np.random.default_rng(1)
        points = rng.uniform(-1, 1, size=[B, H, W, 3]) + [0.0, 0.0, 4.0]
        pose = geometry.pose_to_matrix(tf.constant(rng.normal(scale=0.1, size=[B, 3])), tf.constant(rng.normal(size=[B, 3]) * 0.2))
        k = _k(tf.float64)
        got = geometry.project(tf.constant(points), k, pose)
        self.assertAllClose(got, reference_np.project(points, k.numpy(), pose.numpy()), **tol(np.float64))

    @parameterized.parameters((1.0, 2.0), (0.5, 10.0), (-0.3, 1.5))
    def test_x_translation_shifts_by_fx_t_over_z(self, tx, z):
        depth = tf.fill([B, H, W, 1], z)
        k = _k()
        pix = geometry.project(geometry.backproject(depth, geometry.invert_intrinsics(k)), k, _translation(tx))
        grid = geometry.pixel_grid(B, H, W)
        self.assertAllClose(pix[..., 0] - grid[..., 0], tf.fill([B, H, W], 5.0 * tx / z), atol=1e-5)
        self.assertAllClose(pix[..., 1], grid[..., 1], atol=1e-5)

    def test_forward_translation_scales_about_principal_point(self):
        z, tz = 4.0, -1.0  # camera moves 1 unit forward: points come closer, the image magnifies.
        depth = tf.fill([B, H, W, 1], z)
        k = _k()
        pix = geometry.project(geometry.backproject(depth, geometry.invert_intrinsics(k)), k, _translation(0.0, tz=tz))
        centre = tf.constant([2.5, 1.5])
        want = centre + (geometry.pixel_grid(B, H, W) - centre) * z / (z + tz)
        self.assertAllClose(pix, want, atol=1e-5)

    def test_gradients_match_finite_differences(self):
        depth = tf.constant(np.random.default_rng(2).uniform(1, 5, size=[1, 2, 3, 1]))
        k = geometry.intrinsics_matrix(5.0, 4.0, 1.0, 0.5, batch=1, dtype=tf.float64)
        pose = geometry.pose_to_matrix(tf.constant([[0.1, -0.05, 0.02]], tf.float64), tf.constant([[0.2, 0.1, -0.3]], tf.float64))

        def f(d, t):
            return geometry.project(geometry.backproject(d, geometry.invert_intrinsics(k)), k, t)

        theo, num = tf.test.compute_gradient(f, [depth, pose])
        for a, b in zip(theo, num):
            self.assertAllClose(a, b, rtol=1e-6, atol=1e-6)

    def test_works_in_tf_function_with_unknown_sizes(self):
        fn = tf.function(
            lambda d, ik, k, t: geometry.project(geometry.backproject(d, ik), k, t),
            input_signature=[
                tf.TensorSpec([None, None, None, 1]),
                tf.TensorSpec([None, 3, 3]),
                tf.TensorSpec([None, 3, 3]),
                tf.TensorSpec([None, 4, 4]),
            ],
        )
        k = _k()
        out = fn(tf.ones([B, H, W, 1]), geometry.invert_intrinsics(k), k, tf.eye(4, batch_shape=[B]))
        self.assertAllClose(out, geometry.pixel_grid(B, H, W), atol=1e-5)

    def test_rejects_bad_shapes(self):
        k = _k()
        with self.assertRaisesRegex(ValueError, r"depth.*\[B, H, W, 1\]"):
            geometry.backproject(tf.ones([B, H, W]), k)
        with self.assertRaisesRegex(ValueError, r"inv_K.*\[B, 3, 3\]"):
            geometry.backproject(tf.ones([B, H, W, 1]), tf.eye(4, batch_shape=[B]))
        with self.assertRaisesRegex(ValueError, r"source_from_target.*\[B, 4, 4\]"):
            geometry.project(tf.ones([B, H, W, 3]), k, tf.eye(3, batch_shape=[B]))
        with self.assertRaisesRegex(ValueError, "batch"):
            geometry.project(tf.ones([B, H, W, 3]), k, tf.eye(4, batch_shape=[B + 1]))


class WarpTest(tf.test.TestCase):
    def test_identity_pose_returns_source_exactly(self):
        source = tf.random.stateless_uniform([B, H, W, 3], seed=(5, 6))
        depth = tf.random.stateless_uniform([B, H, W, 1], seed=(7, 8), minval=1.0, maxval=3.0)
        k = _k()
        out = geometry.warp(source, depth, tf.eye(4, batch_shape=[B]), k, geometry.invert_intrinsics(k))
        # Projection round-trips to within float32 rounding of the integer grid.
        self.assertAllClose(out, source, atol=1e-5)

    def test_integer_shift_reproduces_shifted_image(self):
        # fx * t / z = 5 * 0.8 / 2 = 2 pixels: target pixel u samples source pixel u + 2.
        source = tf.random.stateless_uniform([B, H, W, 3], seed=(1, 9))
        k = _k()
        out = geometry.warp(source, tf.fill([B, H, W, 1], 2.0), _translation(0.8), k, geometry.invert_intrinsics(k))
        self.assertAllClose(out[:, :, : W - 2], source[:, :, 2:], atol=1e-5)
        # Beyond the border the last column is repeated (border padding).
        self.assertAllClose(out[:, :, W - 1], source[:, :, W - 1], atol=1e-5)

    def test_matches_numpy_reference(self):
        rng = np.random.default_rng(4)
        source = rng.uniform(size=[B, H, W, 3])
        depth = rng.uniform(1, 3, size=[B, H, W, 1])
        pose = geometry.pose_to_matrix(tf.constant(rng.normal(scale=0.05, size=[B, 3])), tf.constant(rng.normal(scale=0.3, size=[B, 3])))
        k = _k(tf.float64)
        got = geometry.warp(tf.constant(source), tf.constant(depth), pose, k, geometry.invert_intrinsics(k))
        want = reference_np.warp(source, depth, pose.numpy(), k.numpy())
        self.assertAllClose(got, want, **tol(np.float64))

    def test_rejects_mismatched_sizes(self):
        k = _k()
        with self.assertRaisesRegex(ValueError, "source_image and target_depth"):
            geometry.warp(tf.ones([B, H, W, 3]), tf.ones([B, H, W + 1, 1]), tf.eye(4, batch_shape=[B]), k, k)
