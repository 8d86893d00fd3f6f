"""Tests for md2tf.geometry.transforms (Rodrigues, pose matrices)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from md2tf import geometry
from tests import reference_np


class AxisAngleToMatrixTest(tf.test.TestCase, parameterized.TestCase):
    def test_matches_power_series_exponential(self):
        v = np.random.default_rng(0).normal(size=(5, 3))
        got = geometry.axis_angle_to_matrix(tf.constant(v))
        want = np.stack([reference_np.rotation_exp(x) for x in v])
        # Reference formula divides by (angle + 1e-7): a relative deviation of ~1e-7 / angle.
        self.assertAllClose(got, want, rtol=1e-6, atol=1e-6)

    @parameterized.parameters((0,), (1,), (2,))
    def test_quarter_turn_about_each_axis(self, axis):
        v = np.zeros((1, 3))
        v[0, axis] = np.pi / 2
        r = geometry.axis_angle_to_matrix(tf.constant(v)).numpy()[0]
        e = np.eye(3)
        # Right-handed: rotating e_{axis+1} by +90 degrees gives e_{axis+2}.
        self.assertAllClose(r @ e[(axis + 1) % 3], e[(axis + 2) % 3], atol=1e-6)

    def test_is_orthonormal_with_unit_determinant(self):
        v = tf.random.stateless_normal([4, 3], seed=(3, 4), dtype=tf.float64)
        r = geometry.axis_angle_to_matrix(v)
        self.assertAllClose(tf.matmul(r, r, transpose_b=True), tf.eye(3, batch_shape=[4], dtype=tf.float64), atol=1e-6)
        self.assertAllClose(tf.linalg.det(r), tf.ones([4], tf.float64), atol=1e-6)

    def test_zero_angle_is_identity_with_finite_gradient(self):
        v = tf.zeros([2, 3])
        with tf.GradientTape() as tape:
            tape.watch(v)
            r = geometry.axis_angle_to_matrix(v)
            loss = tf.reduce_sum(r * tf.random.stateless_normal([2, 3, 3], seed=(1, 1)))
        grad = tape.gradient(loss, v)
        self.assertAllEqual(r, tf.eye(3, batch_shape=[2]))
        self.assertTrue(np.all(np.isfinite(grad.numpy())))

    def test_gradient_matches_finite_differences(self):
        v = tf.constant([[0.3, -0.2, 0.5], [0.01, 0.02, -0.03]], tf.float64)
        theo, num = tf.test.compute_gradient(geometry.axis_angle_to_matrix, [v])
        self.assertAllClose(theo[0], num[0], atol=1e-6)

    def test_rejects_wrong_shape(self):
        with self.assertRaisesRegex(ValueError, r"axis_angle.*\[B, 3\]"):
            geometry.axis_angle_to_matrix(tf.zeros([2, 4]))


class PoseToMatrixTest(tf.test.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(1)
        self.v = rng.normal(scale=0.3, size=(3, 3))
        self.t = rng.normal(size=(3, 3))

    @parameterized.parameters((False,), (True,))
    def test_matches_numpy_reference(self, invert):
        got = geometry.pose_to_matrix(tf.constant(self.v), tf.constant(self.t), invert=invert)
        want = np.stack([reference_np.pose_matrix(a, b, invert) for a, b in zip(self.v, self.t)])
        self.assertAllClose(got, want, rtol=1e-6, atol=1e-6)

    def test_not_inverted_is_rotation_then_translation(self):
        m = geometry.pose_to_matrix(tf.zeros([1, 3]), tf.constant([[1.0, 2.0, 3.0]])).numpy()[0]
        self.assertAllClose(m, [[1, 0, 0, 1], [0, 1, 0, 2], [0, 0, 1, 3], [0, 0, 0, 1]])

    def test_inverse_round_trip(self):
        v, t = tf.constant(self.v), tf.constant(self.t)
        m = geometry.pose_to_matrix(v, t)
        m_inv = geometry.pose_to_matrix(v, t, invert=True)
        # R is orthonormal up to the 1e-7 of the axis normalisation (relative 1e-7 / angle).
        eye = tf.eye(4, batch_shape=[3], dtype=tf.float64)
        self.assertAllClose(tf.matmul(m, m_inv), eye, atol=1e-6)

    def test_gradient_matches_finite_differences(self):
        v, t = tf.constant(self.v), tf.constant(self.t)
        theo, num = tf.test.compute_gradient(
            lambda a, b: geometry.pose_to_matrix(a, b, invert=True), [v, t]
        )
        for a, b in zip(theo, num):
            self.assertAllClose(a, b, atol=1e-6)

    @parameterized.parameters((False,), (True,))
    def test_rigid_transform_from_a_rotation_matrix_matches_numpy(self, invert):
        """``rigid_transform`` composes a given rotation matrix (``--pose_source=rotation``)."""
        rotation = geometry.axis_angle_to_matrix(tf.constant(self.v))
        got = geometry.rigid_transform(rotation, tf.constant(self.t), invert=invert)
        want = np.stack([reference_np.pose_matrix(a, b, invert) for a, b in zip(self.v, self.t)])
        self.assertAllClose(got, want, rtol=1e-6, atol=1e-6)
        with self.assertRaisesRegex(ValueError, r"rotation.*\[B, 3, 3\]"):
            geometry.rigid_transform(tf.zeros([2, 3]), tf.zeros([2, 3]))

    def test_rejects_bad_translation_and_batch(self):
        with self.assertRaisesRegex(ValueError, r"translation.*\[B, 3\]"):
            geometry.pose_to_matrix(tf.zeros([2, 3]), tf.zeros([2, 3, 1]))
        with self.assertRaisesRegex(ValueError, "batch"):
            geometry.pose_to_matrix(tf.zeros([2, 3]), tf.zeros([3, 3]))
