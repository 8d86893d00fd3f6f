"""The loss's performance shortcuts give the same values and gradients as the plain formulation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf.config import LossConfig
from md2tf.losses import multiscale, photometric


class Mean3x3Test(tf.test.TestCase):
    def test_custom_gradient_equals_avg_pool_autodiff(self):
        x = tf.random.stateless_uniform([2, 6, 7, 3], seed=(3, 4), dtype=tf.float64)
        upstream = tf.random.stateless_normal([2, 4, 5, 3], seed=(5, 6), dtype=tf.float64)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            fast = photometric._mean3x3(x)
            plain = tf.nn.avg_pool2d(x, ksize=3, strides=1, padding="VALID")
            fast_loss = tf.reduce_sum(fast * upstream)
            plain_loss = tf.reduce_sum(plain * upstream)
        self.assertAllClose(fast, plain, atol=1e-12)
        self.assertAllClose(tape.gradient(fast_loss, x), tape.gradient(plain_loss, x), atol=1e-12)

    def test_custom_gradient_matches_numpy_adjoint(self):
        # d/dx sum(mean3(x) * g) at (p, q) = (1/9) * sum of g over the 3x3 windows covering (p, q).
        g = np.random.default_rng(0).normal(size=(1, 3, 4, 1))
        x = tf.zeros([1, 5, 6, 1], tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(photometric._mean3x3(x) * g)
        expected = np.zeros((1, 5, 6, 1))
        for i in range(3):
            for j in range(4):
                expected[0, i:i + 3, j:j + 3, 0] += g[0, i, j, 0] / 9.0
        self.assertAllClose(tape.gradient(loss, x), expected, atol=1e-12)


class IdentityErrorsTest(tf.test.TestCase):
    def test_equals_per_source_photometric_error_and_has_no_gradient(self):
        target = tf.random.stateless_uniform([2, 8, 10, 3], seed=(1, 1))
        sources = tf.random.stateless_uniform([2, 3, 8, 10, 3], seed=(2, 2))
        config = LossConfig()
        with tf.GradientTape() as tape:
            tape.watch(sources)
            errors = multiscale.identity_errors(target, sources, config)
        self.assertEqual(errors.shape, (2, 8, 10, 3))
        for k in range(3):
            expected = photometric.photometric_error(sources[:, k], target, config.ssim_weight)
            self.assertAllClose(errors[..., k:k + 1], expected, atol=1e-6)
        self.assertIsNone(tape.gradient(errors, sources))

    def test_shared_identity_gives_the_same_scale_result(self):
        b, s, h, w = 1, 2, 8, 12
        target = tf.random.stateless_uniform([b, h, w, 3], seed=(7, 1))
        sources = tf.random.stateless_uniform([b, s, h, w, 3], seed=(7, 2))
        disp = tf.random.stateless_uniform([b, h, w, 1], seed=(7, 3), minval=0.1, maxval=0.9)
        pose = np.eye(4, dtype=np.float32)
        pose[0, 3] = 0.05  # a small sideways translation
        poses = tf.constant(np.tile(pose, (b, s, 1, 1)))
        k = tf.constant([[[6.0, 0.0, 5.5], [0.0, 6.0, 3.5], [0.0, 0.0, 1.0]]])
        config = LossConfig()
        seed = tf.constant([3, 4])
        shared = multiscale.identity_errors(target, sources, config)
        depth = 1.0 / disp
        a = multiscale.scale_reprojection(depth, target, sources, poses, k, config, seed)
        c = multiscale.scale_reprojection(depth, target, sources, poses, k, config, seed, identity=shared)
        for x, y in zip(a, c):
            self.assertAllClose(x, y, atol=0.0)


if __name__ == "__main__":
    tf.test.main()
