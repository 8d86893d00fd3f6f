"""Tests for md2tf.losses.automask.min_reprojection."""

from __future__ import annotations

import numpy as np
import pytest
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


def _panorama(directions: np.ndarray) -> np.ndarray:
    """A smooth colour texture on the sphere of viewing directions ``[..., 3]`` (x right, y down,
    z forward): what a camera that only rotates sees, whatever the depth."""
    x, y, z = directions[..., 0], directions[..., 1], directions[..., 2]
    azimuth, elevation = np.arctan2(x, z), np.arctan2(y, np.hypot(x, z))
    channels = [0.5 + 0.25 * np.sin(9.0 * azimuth + 1.3 * c) * np.cos(7.0 * elevation - c)
                + 0.15 * np.sin(23.0 * azimuth - 17.0 * elevation + 2.0 * c) for c in range(3)]
    return np.stack(channels, -1).astype(np.float32)


def _yaw(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_auto_mask_hides_a_rotation_predicted_the_wrong_way():
    """Why ``--automask_warmup_steps`` exists. Paper Eq. 5's mask caps each pixel's error at the
    unwarped source's, so only warps closer to the truth than no motion at all get a gradient. A
    camera that only turns (2 degrees; a pure rotation's warp does not depend on depth): a pose that
    turns 1 degree the right way is pulled on towards 2 with or without the mask; one that turns 1
    degree the wrong way, or 5 degrees the right way, is worse than no motion at every pixel, so the
    masked loss gives it no gradient, while the unmasked one still turns it back."""
    import dataclasses

    from md2tf import geometry
    from md2tf.config import LossConfig

    h, w, f = 24, 64, 50.0
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T  # target camera = world frame
    target = _panorama(rays)
    source = _panorama(rays @ _yaw(2.0))  # source_from_target = yaw(2): its rays in the world, R^T d
    config = dataclasses.replace(LossConfig(), identity_noise_std=0.0, smoothness_weight=0.0)
    disparity = [tf.fill([1, h, w, 1], 0.5)]

    def yaw_gradient(start_degrees: float, automask: bool) -> float:
        yaw = tf.Variable(np.radians(start_degrees), dtype=tf.float32)
        with tf.GradientTape() as tape:
            pose = geometry.pose_to_matrix(tf.stack([0.0, yaw, 0.0])[None], tf.zeros([1, 3]))[:, None]
            total = losses.monodepth2_loss(
                disparity, [tf.constant(target[None])], [tf.constant(source[None, None])], pose,
                tf.constant(K[None], tf.float32), dataclasses.replace(config, automask=automask),
                disp_to_depth=lambda d: (d, 1.0 / d)).total
        return float(tape.gradient(total, yaw))

    right_way = yaw_gradient(1.0, automask=True)
    assert right_way < 0 and right_way == pytest.approx(yaw_gradient(1.0, automask=False), rel=0.1)
    unmasked = yaw_gradient(-1.0, automask=False)
    assert unmasked < 0  # towards +2 degrees
    assert abs(yaw_gradient(-1.0, automask=True)) < 0.01 * abs(unmasked)
    too_far = yaw_gradient(5.0, automask=False)
    assert too_far > 0  # back towards +2 degrees
    assert abs(yaw_gradient(5.0, automask=True)) < 0.01 * too_far
