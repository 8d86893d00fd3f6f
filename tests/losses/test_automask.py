"""Tests for md2tf.losses.automask.min_reprojection."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf import losses


def _errors(seed, channels=2, shape=(2, 3, 4)):
    return tf.constant(np.random.default_rng(seed).uniform(size=[*shape, channels]))


class MinReprojectionTest(tf.test.TestCase):
    def test_minimum_and_mask_match_numpy(self):
        reproj, ident = _errors(0), _errors(1)
        min_error, mask = losses.min_reprojection(reproj, ident)
        combined = np.concatenate([ident.numpy(), reproj.numpy()], -1)
        self.assertAllClose(min_error, combined.min(-1, keepdims=True))
        self.assertAllEqual(mask, (combined.argmin(-1) >= 2)[..., None].astype(np.float64))

    def test_average_reprojection_averages_before_minimum(self):
        reproj, ident = _errors(2), _errors(3)
        min_error, _ = losses.min_reprojection(reproj, ident, use_min=False)
        want = np.minimum(reproj.numpy().mean(-1), ident.numpy().mean(-1))[..., None]
        self.assertAllClose(min_error, want)
        no_mask, mask = losses.min_reprojection(reproj, None, use_min=False)
        self.assertAllClose(no_mask, reproj.numpy().mean(-1, keepdims=True))
        self.assertAllEqual(mask, tf.ones_like(mask))

    def test_ties_go_to_identity_and_identity_wins_carry_no_gradient(self):
        reproj = tf.constant([[[[0.5, 0.2], [0.1, 0.9]]]], tf.float64)  # [1, 1, 2, 2]
        ident = tf.constant([[[[0.2, 0.3], [0.4, 0.8]]]], tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(reproj)
            min_error, mask = losses.min_reprojection(reproj, ident)
            total = tf.reduce_sum(min_error)
        # Pixel 0: tie 0.2 (identity) vs 0.2 (source 1) -> identity. Pixel 1: source 0 wins with 0.1.
        self.assertAllEqual(mask[..., 0], [[[0.0, 1.0]]])
        self.assertAllEqual(tape.gradient(total, reproj), [[[[0, 0], [1, 0]]]])

    def test_noise_is_seeded_and_small(self):
        reproj, ident = _errors(4) + 10.0, _errors(5)  # identity always wins: min_error = ident + noise
        a, _ = losses.min_reprojection(reproj, ident, noise_std=1e-5, noise_seed=tf.constant([1, 2]))
        b, _ = losses.min_reprojection(reproj, ident, noise_std=1e-5, noise_seed=tf.constant([1, 2]))
        c, _ = losses.min_reprojection(reproj, ident, noise_std=1e-5, noise_seed=tf.constant([1, 3]))
        clean, _ = losses.min_reprojection(reproj, ident, noise_std=1e-5, noise_seed=None)
        self.assertAllEqual(a, b)
        self.assertNotAllClose(a, c, atol=1e-9)
        self.assertAllClose(a, clean, atol=1e-4)
        self.assertNotAllClose(a, clean, atol=1e-9)
        self.assertAllClose(clean, np.min(ident.numpy(), -1, keepdims=True))

    def test_rejects_bad_rank(self):
        with self.assertRaisesRegex(ValueError, r"reprojection.*\[B, H, W, S\]"):
            losses.min_reprojection(tf.zeros([3, 4, 2]))
