"""Distillation loss (student follows a teacher's depth) against NumPy, its zero, its gradients."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry
from md2tf.losses import distillation_loss

MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


def _disp_to_depth(disp):
    return geometry.disp_to_depth(disp, MIN_DEPTH, MAX_DEPTH)


def _numpy_depth(disp: np.ndarray) -> np.ndarray:
    """The paper's mapping, written out: depth = 1 / (1/max + (1/min - 1/max) sigmoid)."""
    lo, hi = 1 / MAX_DEPTH, 1 / MIN_DEPTH
    return 1.0 / (lo + (hi - lo) * disp)


def _numpy_bilinear_up2(x: np.ndarray) -> np.ndarray:
    """[B, h, w] -> [B, 2h, 2w], half-pixel centres, edges clamped (tf.image.resize bilinear)."""
    b, h, w = x.shape

    def axis_weights(n):
        pos = (np.arange(2 * n) + 0.5) / 2 - 0.5
        lo = np.clip(np.floor(pos), 0, n - 1).astype(int)
        hi = np.clip(lo + 1, 0, n - 1)
        frac = np.clip(pos - np.floor(pos), 0, 1)
        frac = np.where(pos < 0, 0.0, frac)
        return lo, hi, frac

    r0, r1, fr = axis_weights(h)
    c0, c1, fc = axis_weights(w)
    rows = x[:, r0] * (1 - fr)[None, :, None] + x[:, r1] * fr[None, :, None]
    return rows[:, :, c0] * (1 - fc)[None, None, :] + rows[:, :, c1] * fc[None, None, :]


def test_matches_numpy_over_two_scales():
    rng = np.random.default_rng(0)
    d0 = rng.uniform(0.01, 0.9, size=(2, 8, 12))
    d1 = rng.uniform(0.01, 0.9, size=(2, 4, 6))
    teacher = rng.uniform(0.5, 60.0, size=(2, 8, 12))
    expected = np.mean([np.mean(np.abs(np.log(_numpy_depth(d)) - np.log(teacher)))
                        for d in (d0, _numpy_bilinear_up2(d1))])
    got = distillation_loss([tf.constant(d0[..., None], tf.float32), tf.constant(d1[..., None], tf.float32)],
                            tf.constant(teacher[..., None], tf.float32), _disp_to_depth)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_zero_when_the_student_predicts_the_teachers_depth_and_no_gradient_to_the_teacher():
    disp = tf.Variable(np.random.default_rng(1).uniform(0.05, 0.8, size=(1, 8, 8, 1)).astype(np.float32))
    teacher = tf.Variable(_numpy_depth(disp.numpy()).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        loss = distillation_loss([disp], teacher, _disp_to_depth)
        moved = distillation_loss([disp * 0.9], teacher, _disp_to_depth)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    assert float(moved) > 0.01
    assert tape.gradient(moved, teacher) is None  # the teacher is a constant target
    grad = tape.gradient(moved, disp).numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad < 0)  # more disparity = nearer = towards the teacher


def test_teacher_at_another_size_is_refused():
    with pytest.raises(ValueError, match=r"teacher depth must be \[B, 8, 12, 1\]"):
        distillation_loss([tf.zeros([1, 8, 12, 1])], tf.ones([1, 4, 6, 1]), _disp_to_depth)
