"""md2tf.evaluation.odometry_analysis: speed agreement and the step-length surgery of the ATE split."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.evaluation import odometry_analysis
from tests.evaluation.test_odometry import _forward_steps


def test_speed_agreement_sees_speed_changes_not_scale():
    gt_speeds = np.array([1.0, 1.2, 0.9, 1.4, 0.0, 1.1, 1.3])
    gt = _forward_steps(gt_speeds)
    scaled = _forward_steps(0.2 * gt_speeds)  # any one scale agrees perfectly
    agreement = odometry_analysis.speed_agreement(scaled, gt)
    assert agreement["speed_corr"] == pytest.approx(1.0)
    assert agreement["speed_change_corr"] == pytest.approx(1.0)
    # a constant speed (what a network that ignores the images learns) follows nothing
    constant = odometry_analysis.speed_agreement(_forward_steps(np.full(7, 0.3)), gt)
    assert np.isnan(constant["speed_corr"]) and np.isnan(constant["speed_change_corr"])
    # the standing pair and the changes into and out of it are left out: NumPy on the rest
    pred_speeds = np.array([1.0, 1.0, 1.1, 1.2, 5.0, 1.0, 1.4])
    got = odometry_analysis.speed_agreement(_forward_steps(pred_speeds), gt)
    moving = gt_speeds > 0.05
    assert got["speed_corr"] == pytest.approx(np.corrcoef(pred_speeds[moving], gt_speeds[moving])[0, 1])
    changes = [0, 1, 2, 5]  # pairs (i, i+1) with both moving
    expected = np.corrcoef(np.diff(pred_speeds)[changes], np.diff(gt_speeds)[changes])[0, 1]
    assert got["speed_change_corr"] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"got \(6, 4, 4\) predicted and \(7, 4, 4\) GT"):
        odometry_analysis.speed_agreement(gt[:6], gt)
    # moving_above decides which pairs count: above 1.15 only 1.2, 1.4 and 1.3 are left
    fast = odometry_analysis.speed_agreement(_forward_steps(pred_speeds), gt, moving_above=1.15)
    kept = gt_speeds > 1.15
    assert fast["speed_corr"] == pytest.approx(np.corrcoef(pred_speeds[kept], gt_speeds[kept])[0, 1])
    assert np.isnan(fast["speed_change_corr"])  # no two consecutive pairs are both that fast


def _poses(rng, n=6):
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        axis = rng.normal(size=3) * 0.05
        angle = np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / angle
        poses[i, :3, :3] = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k  # Rodrigues
        poses[i, :3, 3] = rng.normal(size=3)
    return poses


def test_with_lengths_keeps_rotation_and_direction():
    rng = np.random.default_rng(0)
    poses = _poses(rng)
    lengths = np.linalg.norm(poses[:, :3, 3], axis=1)
    np.testing.assert_allclose(odometry_analysis.with_lengths(poses, lengths), poses, atol=1e-12)  # round trip
    wanted = rng.uniform(0.5, 2.0, len(poses))
    out = odometry_analysis.with_lengths(poses, wanted)
    np.testing.assert_allclose(np.linalg.norm(out[:, :3, 3], axis=1), wanted)
    np.testing.assert_allclose(out[:, :3, 3] / wanted[:, None], poses[:, :3, 3] / lengths[:, None])
    np.testing.assert_array_equal(out[:, :3, :3], poses[:, :3, :3])
    np.testing.assert_array_equal(out[:, 3], poses[:, 3])
    poses[2, :3, 3] = 0.0  # a standing pair has no direction: it stays where it is
    before = poses.copy()
    assert np.all(odometry_analysis.with_lengths(poses, wanted)[2, :3, 3] == 0.0)
    np.testing.assert_array_equal(poses, before)  # the input is left as it was
