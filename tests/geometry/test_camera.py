"""Tests for md2tf.geometry.camera and md2tf.geometry.depth."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from md2tf import geometry
from tests import reference_np
from tests.conftest import tol


class IntrinsicsTest(tf.test.TestCase, parameterized.TestCase):
    def test_scale_intrinsics_paper_values(self):
        # The paper's averaged KITTI K (centred principal point) at 640x192: fx=371.2, fy=368.64,
        # cx=320, cy=96.
        k_norm = tf.constant([[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]], tf.float64)
        k = geometry.scale_intrinsics(k_norm, 192, 640)
        self.assertAllClose(k, [[371.2, 0, 320], [0, 368.64, 96], [0, 0, 1]], **tol(np.float64))

    def test_scale_intrinsics_batched_and_4x4(self):
        k4 = tf.constant([[[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]]] * 2)
        k = geometry.scale_intrinsics(k4, 192, 640)
        self.assertEqual(k.shape, [2, 4, 4])
        self.assertAllClose(k[1, :3, :3], [[371.2, 0, 320], [0, 368.64, 96], [0, 0, 1]], **tol())

    def test_intrinsics_matrix_and_level_scaling(self):
        k = geometry.intrinsics_matrix(8.0, 6.0, 4.0, 2.0, batch=2)
        self.assertEqual(k.shape, [2, 3, 3])
        k2 = geometry.scale_intrinsics_to_level(k, 2)
        self.assertAllClose(k2[0], [[2.0, 0, 1.0], [0, 1.5, 0.5], [0, 0, 1]])
        self.assertAllClose(geometry.scale_intrinsics_to_level(k, 0), k)

    def test_intrinsics_matrix_from_per_sample_parameters(self):
        k = geometry.intrinsics_matrix(tf.constant([1.0, 2.0]), 3.0, 4.0, 5.0)
        self.assertAllClose(k, [[[1, 0, 4], [0, 3, 5], [0, 0, 1]], [[2, 0, 4], [0, 3, 5], [0, 0, 1]]])

    def test_invert_intrinsics_matches_numpy_inverse(self):
        k = np.array([[[371.2, 0.7, 320.0], [0, 368.64, 96.0], [0, 0, 1]], [[5, 0, 2.5], [0, 4, 1.5], [0, 0, 1]]])
        got = geometry.invert_intrinsics(tf.constant(k))
        self.assertAllClose(got, np.linalg.inv(k), **tol(np.float64))
        self.assertAllClose(geometry.invert_intrinsics(tf.constant(k[0])), np.linalg.inv(k[0]), **tol(np.float64))

    def test_invert_intrinsics_uses_no_matrix_inverse_op(self):
        graph = tf.function(geometry.invert_intrinsics).get_concrete_function(
            tf.TensorSpec([None, 3, 3], tf.float32)
        ).graph
        self.assertNotIn("MatrixInverse", {op.type for op in graph.get_operations()})

    def test_mirrored_principal_point_projects_mirrored_points_to_mirrored_pixels(self):
        """Mirroring a scene (x -> -x) and the image (u -> W - 1 - u) together: points seen through
        the mirrored K land on the mirrored pixels."""
        width = 37
        K = np.array([[[30.0, 0, 21.3], [0, 25.0, 9.0], [0, 0, 1]]])
        points = np.random.default_rng(0).uniform([-3, -2, 4], [3, 2, 20], [50, 3])
        def project(k, p):
            q = p @ k[0].T
            return q[:, :2] / q[:, 2:]
        mirrored = geometry.mirror_principal_point(tf.constant(K), width).numpy()
        uv, uv_m = project(K, points), project(mirrored, points * [-1, 1, 1])
        np.testing.assert_allclose(uv_m[:, 0], width - 1 - uv[:, 0], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(uv_m[:, 1], uv[:, 1], rtol=1e-12)
        np.testing.assert_array_equal(geometry.mirror_principal_point(mirrored, width).numpy(), K)

    def test_rejects_wrong_shapes(self):
        with self.assertRaisesRegex(ValueError, r"K.*\[B, 3, 3\]"):
            geometry.invert_intrinsics(tf.zeros([2, 4, 4]))
        with self.assertRaisesRegex(ValueError, r"K_normalized.*\[B, 3, 3\]"):
            geometry.scale_intrinsics(tf.zeros([2, 3, 4]), 4, 4)
        with self.assertRaisesRegex(ValueError, "level"):
            geometry.scale_intrinsics_to_level(tf.eye(3), -1)


class DispToDepthTest(tf.test.TestCase):
    def test_end_points_and_numpy_reference(self):
        disp = tf.constant([0.0, 0.25, 1.0], tf.float64)
        scaled, depth = geometry.disp_to_depth(disp, 0.1, 100.0)
        self.assertAllClose(depth, reference_np.disp_to_depth(disp.numpy(), 0.1, 100.0), **tol(np.float64))
        self.assertAllClose(depth[0], 100.0, **tol(np.float64))
        self.assertAllClose(depth[2], 0.1, **tol(np.float64))
        self.assertAllClose(scaled * depth, tf.ones([3], tf.float64), **tol(np.float64))

    def test_rejects_bad_range(self):
        with self.assertRaisesRegex(ValueError, "min_depth"):
            geometry.disp_to_depth(tf.zeros([1]), 10.0, 1.0)
