"""Odometry ATE: analytic trajectories, LSQ scale against lstsq, conventions, errors."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.evaluation import odometry, odometry_task


def yaw_pose(yaw, t):
    c, s = np.cos(yaw), np.sin(yaw)
    pose = np.eye(4)
    pose[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    pose[:3, 3] = t
    return pose


def trajectory(n=12):
    """world_from_camera of a car driving forward (z) while turning slowly."""
    poses, yaw, pos = [], 0.0, np.zeros(3)
    for _ in range(n):
        poses.append(yaw_pose(yaw, pos.copy()))
        pos = pos + np.array([np.sin(yaw), 0.0, np.cos(yaw)]) * 1.2
        yaw += 0.05
    return np.stack(poses)


def test_relative_convention_maps_points_into_next_camera():
    poses = trajectory(4)
    rel = odometry.relative_from_global(poses)
    point_world = np.array([1.0, 2.0, 30.0, 1.0])
    in_cam0 = np.linalg.inv(poses[0]) @ point_world
    in_cam1 = np.linalg.inv(poses[1]) @ point_world
    np.testing.assert_allclose(rel[0] @ in_cam0, in_cam1, atol=1e-12)


def test_snippet_positions_chain():
    rel = np.stack([yaw_pose(0.0, [0, 0, 1.0]), yaw_pose(0.0, [1.0, 0, 0])])
    np.testing.assert_allclose(odometry.snippet_positions(rel), [[0, 0, 0], [0, 0, 1], [1, 0, 1]])


def test_perfect_prediction_has_zero_ate():
    poses = trajectory()
    scores = odometry.score_odometry(poses, odometry.relative_from_global(poses))
    assert scores.ate_mean == pytest.approx(0.0, abs=1e-12)
    assert scores.num_snippets == len(poses) - 1


def test_scale_is_recovered_for_straight_motion():
    poses = np.stack([yaw_pose(0.0, [0, 0, 1.5 * i]) for i in range(8)])
    rel = odometry.relative_from_global(poses)
    pred = rel.copy()
    pred[:, :3, 3] *= 0.01  # a monocular network's arbitrary scale
    scores = odometry.score_odometry(poses, pred, full_snippets_only=True)
    assert scores.ate_mean == pytest.approx(0.0, abs=1e-12)
    assert scores.num_snippets == 8 - 4


def test_aligned_ate_against_lstsq(rng):
    gt = rng.normal(size=(5, 3))
    pred = rng.normal(size=(5, 3))
    shifted = pred - pred[0] + gt[0]
    scale = np.linalg.lstsq(shifted.reshape(-1, 1), gt.reshape(-1), rcond=None)[0][0]
    err = scale * shifted - gt
    want = np.sqrt((err**2).sum()) / 5
    assert odometry.aligned_ate(gt, pred) == pytest.approx(want, rel=1e-12)


def test_known_error_value():
    # gt: 0, 1, 2 along z. pred: 0, 1, 3 -> p = pred; s = (1 + 6) / (1 + 9) = 0.7
    gt = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 2.0]])
    pred = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 3.0]])
    err = np.array([0.0, 0.7 - 1, 2.1 - 2])
    assert odometry.aligned_ate(gt, pred) == pytest.approx(np.sqrt((err**2).sum()) / 3)


def test_snippet_counts():
    rel = odometry.relative_from_global(trajectory(10))
    assert odometry.snippet_ates(rel, rel).shape == (9,)
    assert odometry.snippet_ates(rel, rel, full_snippets_only=True).shape == (6,)


def test_predict_relative_poses_uses_pairs_in_order():
    frames = [np.full((4, 6, 3), i / 10, np.float32) for i in range(5)]
    seen = []

    def pose_fn(pairs):
        seen.append(pairs.shape)
        # encode the pair's first-frame brightness as x translation, second as y
        t = np.stack([pairs[:, 0, 0, 0], pairs[:, 0, 0, 3], np.zeros(len(pairs))], axis=1).astype(np.float32)
        return np.zeros_like(t), t

    rel = odometry_task.predict_relative_poses(pose_fn, frames, batch_size=3)
    assert seen == [(3, 4, 6, 6), (1, 4, 6, 6)]
    assert rel.shape == (4, 4, 4)
    np.testing.assert_allclose(rel[:, 0, 3], [0.0, 0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(rel[:, 1, 3], [0.1, 0.2, 0.3, 0.4], atol=1e-6)
    np.testing.assert_allclose(rel[:, :3, :3], np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-6)




def test_count_mismatch():
    poses = trajectory(6)
    with pytest.raises(ValueError, match="4 predicted poses"):
        odometry.score_odometry(poses, odometry.relative_from_global(poses)[:4])


def _forward_steps(speeds):
    """``next_from_previous`` poses of straight forward motion (camera z) at the given speeds."""
    relative = np.tile(np.eye(4), (len(speeds), 1, 1))
    relative[:, 2, 3] = -np.asarray(speeds, np.float64)
    return relative


def _global(relative):
    poses = [np.eye(4)]
    for step in relative:
        poses.append(poses[-1] @ np.linalg.inv(step))  # world_from_camera_{i+1}
    return np.stack(poses)


def test_snippet_motions_stopped_steady_changing():
    speeds = [1.0] * 6 + [0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
    kinds = odometry.snippet_motions(_forward_steps(speeds), snippet_length=5, full_snippets_only=True)
    # snippet i covers steps i..i+3: 0-2 at 1 m/frame, 3-6 through the stop, 7-8 standing
    assert list(kinds) == ["steady"] * 3 + ["changing"] * 4 + ["stopped"] * 2


def test_constant_velocity_is_exact_on_steady_snippets_only():
    speeds = [1.0] * 6 + [1.0, 1.5, 2.0, 2.5, 3.0, 3.0]
    gt_relative = _forward_steps(speeds)
    guess = odometry.constant_velocity_poses(gt_relative)
    np.testing.assert_allclose(guess[:, 2, 3], -np.mean(speeds))
    np.testing.assert_allclose(guess[:, :3, :3], np.tile(np.eye(3), (len(speeds), 1, 1)))
    scores = odometry.score_odometry(_global(gt_relative), guess, full_snippets_only=True)
    steady_ate, steady_count = scores.by_motion["steady"]
    changing_ate, changing_count = scores.by_motion["changing"]
    assert (steady_count, changing_count) == (4, 5)
    assert steady_ate == pytest.approx(0.0, abs=1e-12)  # one scale per snippet fixes a constant speed
    # an accelerating snippet [1, 1.5, 2, 2.5]: positions 0, 1, 2.5, 4.5, 7 against a uniform 0..4s
    gt = np.array([0.0, 1.0, 2.5, 4.5, 7.0])
    uniform = np.arange(5.0)
    s = gt @ uniform / (uniform @ uniform)
    expected = np.sqrt(np.sum((s * uniform - gt) ** 2)) / 5
    ates = odometry.snippet_ates(gt_relative, guess, full_snippets_only=True)
    assert ates[6] == pytest.approx(expected, rel=1e-9)
    assert changing_ate == pytest.approx(ates[4:].mean(), rel=1e-12)


