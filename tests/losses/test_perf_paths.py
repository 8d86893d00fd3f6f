"""The loss's performance shortcuts give the same values and gradients as the plain formulation."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf import geometry
from md2tf.config import LossConfig
from md2tf.losses import compiled, multiscale, photometric


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


def _to_depth(disp):
    return geometry.disp_to_depth(disp, 0.1, 100.0)


class XlaLossTest(tf.test.TestCase):
    """`compiled.xla_loss` (loss forward + backward as one XLA cluster) equals the plain loss."""

    B, S, H, W = 2, 2, 16, 48

    def _inputs(self):
        rng = np.random.default_rng(3)
        coarse = rng.uniform(0.0, 1.0, (self.B * (1 + self.S), self.H // 4, self.W // 4, 3))
        frames = tf.reshape(tf.image.resize(coarse.astype(np.float32), (self.H, self.W)),
                            [self.B, 1 + self.S, self.H, self.W, 3])
        target, sources = [frames[:, 0]], [frames[:, 1:]]
        for _ in range(3):
            target.append(tf.nn.avg_pool2d(target[-1], 2, 2, "VALID"))
            h, w = sources[-1].shape[2] // 2, sources[-1].shape[3] // 2
            pooled = tf.nn.avg_pool2d(tf.reshape(sources[-1], [-1, 2 * h, 2 * w, 3]), 2, 2, "VALID")
            sources.append(tf.reshape(pooled, [self.B, self.S, h, w, 3]))
        disps = [tf.constant(rng.uniform(0.05, 0.5, (self.B, self.H >> s, self.W >> s, 1)), tf.float32)
                 for s in range(4)]
        poses = tf.stack([geometry.pose_to_matrix(tf.constant(rng.normal(0, 0.02, (self.B, 3)), tf.float32),
                                                  tf.constant(rng.normal(0, 0.1, (self.B, 3)), tf.float32))
                          for _ in range(self.S)], axis=1)
        k = tf.constant(np.tile([[[0.58 * self.W, 0, 0.5 * self.W], [0, 1.92 * self.H, 0.5 * self.H],
                                  [0, 0, 1]]], (self.B, 1, 1)), tf.float32)
        return disps, target, sources, poses, k

    def _loss_and_grads(self, loss_fn, config, inputs, seed):
        disps, target, sources, poses, k = inputs

        @tf.function
        def run():
            with tf.GradientTape() as tape:
                tape.watch(disps)
                tape.watch(poses)
                out = loss_fn(disps, target, sources, poses, k, config, noise_seed=seed,
                              disp_to_depth=_to_depth)
            return out, tape.gradient(out.total, disps + [poses])

        return run()

    def test_values_and_gradients_match_the_graph_loss(self):
        # Two scales keep the XLA compile short; the scales are independent repetitions of one graph.
        disps, target, sources, poses, k = self._inputs()
        inputs = disps[:2], target[:2], sources[:2], poses, k
        config, seed = LossConfig(), tf.constant([1, 2])
        xla_loss = compiled.xla_loss()
        plain, plain_grads = self._loss_and_grads(multiscale.monodepth2_loss, config, inputs, seed)
        fast, fast_grads = self._loss_and_grads(xla_loss, config, inputs, seed)
        self.assertAllClose(fast.total, plain.total, rtol=1e-5, atol=0.0)
        self.assertAllClose(fast.reprojection, plain.reprojection, rtol=1e-5, atol=0.0)
        self.assertAllClose(fast.smoothness, plain.smoothness, rtol=1e-5, atol=0.0)
        self.assertAllClose(fast.warped, plain.warped, atol=1e-5)
        # SSIM's variances (E[x^2] - E[x]^2) cancel, so per-pixel errors agree to ~1e-4 only ...
        self.assertAllClose(fast.min_error, plain.min_error, atol=2e-4)
        # ... and a near-tie between identity and warp may flip a pixel's auto-mask.
        for a, b in zip(fast.automask, plain.automask):
            self.assertLess(float(tf.reduce_mean(tf.abs(a - b))), 0.01)
        for a, b in zip(fast_grads, plain_grads):
            self.assertGreater(float(tf.norm(b)), 0.0)
            self.assertLess(float(tf.norm(a - b) / tf.norm(b)), 2e-4)
        # The loss did run as one XLA cluster (one compiled function for this config).
        (fn,) = xla_loss.compiled.values()
        self.assertTrue(fn.get_concrete_function(*([tuple(x) for x in inputs[:3]] + [poses, k, seed]))
                        .function_def.attr["_XlaMustCompile"].b)

if __name__ == "__main__":
    tf.test.main()
