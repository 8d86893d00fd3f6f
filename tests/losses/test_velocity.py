"""Velocity loss (PackNet-SfM Sec. 3.3) against NumPy, unknown distances, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf.losses import velocity_loss


def _poses(translations: np.ndarray) -> np.ndarray:
    """[B, T, 4, 4] with random rotations (they must not matter) and the given translations."""
    b, t = translations.shape[:2]
    rng = np.random.default_rng(0)
    out = np.tile(np.eye(4), (b, t, 1, 1))
    for i in range(b):
        for j in range(t):
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            out[i, j, :3, :3] = q * np.sign(np.linalg.det(q))
    out[..., :3, 3] = translations
    return out


def test_matches_numpy_and_skips_unknown_distances():
    rng = np.random.default_rng(1)
    translations = rng.normal(size=(3, 2, 3))
    distances = rng.uniform(0.0, 2.0, size=(3, 2))
    distances[1, 0] = np.nan
    expected = np.abs(np.linalg.norm(translations, axis=-1) - distances)
    loss, count = velocity_loss(tf.constant(_poses(translations), tf.float32),
                                tf.constant(distances, tf.float32))
    assert float(count) == 5
    assert float(loss) == pytest.approx(np.nanmean(expected), rel=1e-5)


def test_no_known_distance_is_zero_and_finite_gradients_at_rest():
    poses = tf.Variable(np.tile(np.eye(4, dtype=np.float32), (2, 2, 1, 1)))  # zero translation
    with tf.GradientTape() as tape:
        unknown, count = velocity_loss(poses, tf.fill([2, 2], float("nan")))
        known, _ = velocity_loss(poses, tf.fill([2, 2], 0.5))
        total = unknown + known
    assert float(count) == 0 and float(unknown) == 0.0
    assert float(known) == pytest.approx(0.5, abs=1e-5)
    assert np.all(np.isfinite(tape.gradient(total, poses).numpy()))


def test_gradient_pulls_the_translation_length_to_the_distance():
    t = tf.Variable([[[0.6, 0.0, 0.8]]])  # length 1
    pose = tf.concat([tf.concat([tf.eye(3)[None, None], t[..., None]], -1),
                      tf.constant([[[[0.0, 0.0, 0.0, 1.0]]]])], -2)
    with tf.GradientTape() as tape:
        tape.watch(t)
        pose = tf.concat([tf.concat([tf.eye(3)[None, None], t[..., None]], -1),
                          tf.constant([[[[0.0, 0.0, 0.0, 1.0]]]])], -2)
        loss, _ = velocity_loss(pose, tf.constant([[2.0]]))
    grad = tape.gradient(loss, t).numpy()[0, 0]
    np.testing.assert_allclose(grad, [-0.6, 0.0, -0.8], atol=1e-5)  # -d|t|/dt: lengthen along t
