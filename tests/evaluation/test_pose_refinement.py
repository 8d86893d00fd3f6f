"""Test-time pose refinement (`pose_refinement`, streamed over a sequence by `odometry_task`): the
rotation's exact gradient at the identity, a perturbed pose pulled back to the one that rendered the
image pair, and the pair bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry
from md2tf.evaluation import odometry_task, pose_refinement

H, W = 48, 128
K_NORMALIZED = np.array([[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]], np.float32)


def test_rotation_is_rodrigues_and_its_gradient_at_the_identity_is_the_generator():
    rng = np.random.default_rng(0)
    w = np.concatenate([rng.normal(0, 0.3, (4, 3)), rng.normal(0, 1e-5, (2, 3))]).astype(np.float32)
    np.testing.assert_allclose(pose_refinement._rotation(tf.constant(w)),
                               geometry.axis_angle_to_matrix(tf.constant(w)), atol=1e-6)
    zero = tf.zeros([1, 3])
    jacobian = np.zeros((3, 3, 3), np.float32)  # [i, j, k]: dR_ij / dw_k
    for i in range(3):
        for j in range(3):
            with tf.GradientTape() as tape:
                tape.watch(zero)
                entry = pose_refinement._rotation(zero)[0, i, j]
            jacobian[i, j] = tape.gradient(entry, zero)[0].numpy()
    generators = np.zeros((3, 3, 3), np.float32)  # d/dw_k of [w]x
    generators[2, 1, 0], generators[1, 2, 0] = 1, -1
    generators[0, 2, 1], generators[2, 0, 1] = 1, -1
    generators[1, 0, 2], generators[0, 1, 2] = 1, -1
    np.testing.assert_allclose(jacobian, generators, atol=1e-6)


def _scene(seed: int = 0):
    """A smooth random texture, a depth that grows towards the top (a road-like slant) and the
    target view it renders under a known forward motion with a small yaw."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (1, H // 4, W // 4, 3)).astype(np.float32)
    source = tf.image.resize(coarse, [H, W], method="bicubic").numpy().clip(0, 1)
    rows = np.linspace(25.0, 6.0, H, dtype=np.float32)[None, :, None, None]
    depth = np.broadcast_to(rows, (1, H, W, 1)).copy()
    true = geometry.pose_to_matrix(tf.constant([[0.0, 0.01, 0.0]]), tf.constant([[0.05, 0.0, -0.8]])).numpy()
    K = geometry.scale_intrinsics(K_NORMALIZED[None], H, W)
    target = geometry.warp(source, depth, true, K, tf.linalg.inv(K)).numpy()
    return target[0], source[0], depth, true


def test_a_perturbed_pose_is_pulled_back_to_the_one_that_rendered_the_pair():
    target, source, depth, true = _scene()
    start = geometry.pose_to_matrix(tf.constant([[0.002, 0.02, -0.002]]),
                                    tf.constant([[0.15, 0.02, -1.0]])).numpy().astype(np.float64)

    def depth_fn(images):
        assert images.shape == (1, H, W, 3)
        return depth

    refined = odometry_task.refine_relative_poses(depth_fn, [target, source], start, K_NORMALIZED,
                                                    steps=200, learning_rate=2e-3)
    assert refined.shape == (1, 4, 4)
    t_error = lambda T: np.linalg.norm(T[0, :3, 3] - true[0, :3, 3])  # noqa: E731
    r_error = lambda T: np.linalg.norm(T[0, :3, :3] - true[0, :3, :3])  # noqa: E731
    assert t_error(start) > 0.2 and t_error(refined) < 0.2 * t_error(start), (t_error(start), t_error(refined))
    assert r_error(refined) < 0.2 * r_error(start), (r_error(start), r_error(refined))
    np.testing.assert_allclose(refined[0, 3], [0, 0, 0, 1])


def test_zero_steps_return_the_poses_and_pair_counts_are_checked():
    target, source, depth, true = _scene()
    poses = np.repeat(true.astype(np.float64), 2, axis=0)
    frames = [target, source, target]
    def no_depth(images):
        raise AssertionError("0 steps need no depth")

    same = odometry_task.refine_relative_poses(no_depth, frames, poses, K_NORMALIZED, 0, 1e-3)
    np.testing.assert_array_equal(same, poses)
    with pytest.raises(ValueError, match="poses has 2 pairs but the frames give 1"):
        odometry_task.refine_relative_poses(lambda x: np.repeat(depth, len(x), 0), frames[:2], poses,
                                              K_NORMALIZED, 1, 1e-3)
    with pytest.raises(ValueError, match=r"poses must have shape \[N-1, 4, 4\]"):
        odometry_task.refine_relative_poses(lambda x: depth, frames, poses[:, :3], K_NORMALIZED, 1, 1e-3)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        odometry_task.refine_relative_poses(lambda x: depth, frames, poses, K_NORMALIZED, -1, 1e-3)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        pose_refinement.align_pairs(target[None], source[None], depth, K_NORMALIZED, true, -1, 1e-3)
    with pytest.raises(ValueError, match=r"poses must have shape \[1, 4, 4\]"):
        pose_refinement.align_pairs(target[None], source[None], depth, K_NORMALIZED, poses, 1, 1e-3)


def test_refinement_flags_are_checked():
    from md2tf.config import ConfigError, EvalConfig

    assert EvalConfig(models=("m",), task="odometry", pose_refine_steps=100).pose_refine_lr == 5e-4
    with pytest.raises(ConfigError, match="--pose_refine_steps refines odometry poses"):
        EvalConfig(models=("m",), pose_refine_steps=100)
    with pytest.raises(ConfigError, match="--pose_refine_steps must be >= 0"):
        EvalConfig(models=("m",), task="odometry", pose_refine_steps=-1)
    with pytest.raises(ConfigError, match="--pose_refine_length_only needs --pose_refine_steps > 0"):
        EvalConfig(models=("m",), task="odometry", pose_refine_length_only=True)
    assert EvalConfig(models=("m",), task="odometry", pose_refine_steps=100, pose_refine_length_only=True)


def test_pairs_are_refined_in_batches_each_from_its_own_start_and_depth():
    """Three pairs in batches of two give what each pair gives alone: a per-pair loss, Adam state and
    translation unit (the second target's depth is 3x the first's, so a batch-wide median would show)."""
    target, source, depth, true = _scene()
    frames = [target, source, target, source]
    poses = np.stack([true[0], np.linalg.inv(true[0]), true[0]]).astype(np.float64)
    poses[:, :3, 3] *= 1.1

    def depth_fn(images):  # the source frame's depth is 3x the target's
        return np.concatenate([depth * (3.0 if np.allclose(x, source) else 1.0) for x in images])

    together = odometry_task.refine_relative_poses(depth_fn, frames, poses, K_NORMALIZED, 5, 2e-3, batch_size=2)
    for i in range(3):
        alone = odometry_task.refine_relative_poses(depth_fn, frames[i:i + 2], poses[i:i + 1], K_NORMALIZED, 5, 2e-3)
        np.testing.assert_allclose(together[i], alone[0], atol=1e-5)
    assert not np.allclose(together, poses)


def test_length_only_keeps_the_rotation_and_direction_and_finds_the_length():
    """A pose with the true rotation and direction but a step 30 % too long: the length-only
    refinement brings the length back and leaves the rest exactly as it was; a wrong rotation
    stays wrong (it is the pose network's to keep)."""
    target, source, depth, true = _scene()
    long = true.astype(np.float64).copy()
    long[0, :3, 3] *= 1.3
    turned = geometry.pose_to_matrix(tf.constant([[0.0, 0.03, 0.0]]),
                                     tf.constant([true[0, :3, 3] * 1.3])).numpy().astype(np.float64)
    start = np.concatenate([long, turned])
    refined = pose_refinement.align_pairs(np.stack([target, target]), np.stack([source, source]),
                                          np.repeat(depth, 2, 0), K_NORMALIZED, start, 200, 2e-3,
                                          length_only=True)
    true_length = np.linalg.norm(true[0, :3, 3])
    length = np.linalg.norm(refined[0, :3, 3])
    assert abs(length / true_length - 1) < 0.05, length / true_length  # from 1.3
    np.testing.assert_allclose(refined[:, :3, :3], start[:, :3, :3], atol=1e-6)
    directions = refined[:, :3, 3] / np.linalg.norm(refined[:, :3, 3], axis=1, keepdims=True)
    np.testing.assert_allclose(directions, start[:, :3, 3] / np.linalg.norm(start[:, :3, 3], axis=1,
                                                                            keepdims=True), atol=1e-5)
    # A standing camera stays standing: no direction to move along, or only a noisy one (a step of a
    # ten-thousandth of the median depth).
    still = np.repeat(np.eye(4)[None], 2, 0)
    still[1, :3, 3] = [1e-4 * np.median(depth), 0.0, 0.0]
    np.testing.assert_array_equal(pose_refinement.align_pairs(np.stack([target, target]), np.stack([source, source]),
                                                              np.repeat(depth, 2, 0), K_NORMALIZED, still, 20, 2e-3,
                                                              length_only=True), still.astype(np.float32))
