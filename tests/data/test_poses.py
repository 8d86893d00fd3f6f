"""Known camera poses: pose files, relative poses vs the geometry conventions, and the flip."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry
from md2tf.data import poses
from tests.conftest import tol


def random_pose(rng: np.random.Generator, max_angle: float = 0.3, max_shift: float = 2.0) -> np.ndarray:
    """A float64 ``[4, 4]`` rigid transform (Rodrigues, independently of md2tf.geometry)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    pose = np.eye(4)
    pose[:3, :3] = np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew
    pose[:3, 3] = rng.uniform(-max_shift, max_shift, size=3)
    return pose


def write_poses(path, world_from_camera: np.ndarray) -> str:
    with open(path, "w") as f:
        for pose in world_from_camera:
            f.write(" ".join(f"{v:.12e}" for v in pose[:3].ravel()) + "\n")
    return str(path)


def intrinsics(h: int, w: int) -> np.ndarray:
    """A pinhole K with the principal point at the exact image centre (flips are exact)."""
    return np.array([[0.9 * w, 0, (w - 1) / 2], [0, 0.9 * w, (h - 1) / 2], [0, 0, 1]], np.float32)


class TestPoseFile:
    def test_round_trip(self, tmp_path, rng):
        world = np.stack([random_pose(rng) for _ in range(5)])
        read = poses.read_poses_file(write_poses(tmp_path / "poses.txt", world), expected_frames=5)
        np.testing.assert_allclose(read, world, atol=1e-10)

    @pytest.mark.parametrize("line, message", [
        ("1 0 0 0 0 1 0 0 0 0 1", r"poses\.txt:2: expected 12 numbers .*got 11"),
        ("1 0 0 0 0 1 0 0 0 0 1 x", r"poses\.txt:2: expected 12 numbers"),
        ("1 0 0 0 0 1 0 0 0 0 1 nan", r"poses\.txt:2: pose values must be finite"),
        ("2 0 0 0 0 2 0 0 0 0 2 0", r"poses\.txt:2: the 3x3 block is not a rotation"),
        ("-1 0 0 0 0 1 0 0 0 0 1 0", r"poses\.txt:2: the 3x3 block is not a rotation .*det = -1"),
    ])
    def test_bad_line_names_file_and_line(self, tmp_path, line, message):
        path = tmp_path / "poses.txt"
        path.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n" + line + "\n")
        with pytest.raises(ValueError, match=message):
            poses.read_poses_file(str(path))

    def test_count_must_match_the_frames(self, tmp_path):
        path = write_poses(tmp_path / "poses.txt", np.stack([np.eye(4)] * 3))
        with pytest.raises(ValueError, match=r"poses\.txt: 3 poses for 4 frames"):
            poses.read_poses_file(path, expected_frames=4)

    def test_empty_file(self, tmp_path):
        path = tmp_path / "poses.txt"
        path.write_text("\n")
        with pytest.raises(ValueError, match=r"poses\.txt: no poses"):
            poses.read_poses_file(str(path))


class TestRelativePoses:
    def test_offset_zero_is_identity(self, rng):
        world = np.stack([random_pose(rng) for _ in range(3)])
        np.testing.assert_allclose(poses.relative_poses(world, 1, [0])[0], np.eye(4), atol=1e-6)

    def test_maps_target_points_into_the_source_camera(self, rng):
        """X_world = W_t X_t = W_s X_s, so source_from_target @ X_t must equal X_s."""
        world = np.stack([random_pose(rng) for _ in range(4)])
        points_world = np.concatenate([rng.uniform(-10, 10, (20, 3)), np.ones((20, 1))], axis=1)
        target = 2
        relative = poses.relative_poses(world, target, [-2, -1, 1])
        for k, offset in enumerate((-2, -1, 1)):
            in_target = points_world @ np.linalg.inv(world[target]).T
            in_source = points_world @ np.linalg.inv(world[target + offset]).T
            np.testing.assert_allclose(in_target @ relative[k].astype(np.float64).T, in_source,
                                       rtol=1e-5, atol=1e-4)

    def test_composition_and_inverse(self, rng):
        world = np.stack([random_pose(rng) for _ in range(3)])
        b_from_a = poses.relative_poses(world, 0, [1])[0].astype(np.float64)
        c_from_b = poses.relative_poses(world, 1, [1])[0].astype(np.float64)
        c_from_a = poses.relative_poses(world, 0, [2])[0]
        a_from_b = poses.relative_poses(world, 1, [-1])[0]
        np.testing.assert_allclose(c_from_b @ b_from_a, c_from_a, atol=1e-5)
        np.testing.assert_allclose(a_from_b, np.linalg.inv(b_from_a), atol=1e-5)
        np.testing.assert_allclose(poses.invert_rigid(world[0]), np.linalg.inv(world[0]), atol=1e-12)

    def test_other_camera_of_the_rig(self, rng):
        """Poses of camera 0, images of a camera 0.5 m to its right: conjugated by the rig offset."""
        world_cam0 = np.stack([random_pose(rng) for _ in range(2)])
        cam_from_cam0 = poses.translation([-0.5, 0.0, 0.0])  # x_cam = x_cam0 - 0.5
        world_cam = world_cam0 @ np.linalg.inv(cam_from_cam0)
        np.testing.assert_allclose(poses.relative_poses(world_cam0, 0, [1], cam_from_cam0),
                                   poses.relative_poses(world_cam, 0, [1]), atol=1e-5)
        assert not np.allclose(poses.relative_poses(world_cam0, 0, [1]),
                               poses.relative_poses(world_cam, 0, [1]), atol=1e-3)

    def test_projection_convention(self, rng):
        """The relative pose projects target pixels where the world points land in the source image,
        computed here without md2tf.geometry."""
        h, w = 6, 8
        K = intrinsics(h, w)
        world = np.stack([np.eye(4), random_pose(rng, 0.1, 0.5)])
        depth = rng.uniform(4.0, 9.0, size=(1, h, w, 1)).astype(np.float32)
        relative = poses.relative_poses(world, 0, [1])  # [1, 4, 4]
        pixels = geometry.project(geometry.backproject(depth, np.linalg.inv(K)[None]), K[None],
                                  relative).numpy()[0]
        v, u = np.mgrid[0:h, 0:w]
        points = depth[0, ..., 0, None] * np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T
        in_source = (np.concatenate([points, np.ones((h, w, 1))], -1) @ np.linalg.inv(world[1]).T)[..., :3]
        expected = in_source @ K.astype(np.float64).T
        np.testing.assert_allclose(pixels, expected[..., :2] / expected[..., 2:], rtol=1e-4, atol=1e-3)


class TestMirror:
    def test_is_f_t_f_and_an_involution(self, rng):
        pose = random_pose(rng).astype(np.float32)
        flip = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)
        mirrored = geometry.mirror_x(tf.constant(pose[None, None])).numpy()[0, 0]
        np.testing.assert_allclose(mirrored, flip @ pose @ flip, **tol())
        np.testing.assert_allclose(geometry.mirror_x(mirrored).numpy(), pose, **tol())

    def test_reverses_yaw_and_x_translation(self):
        yaw = geometry.pose_to_matrix(tf.constant([[0.0, 0.2, 0.0]]), tf.constant([[0.3, 0.1, 1.0]]))
        expected = geometry.pose_to_matrix(tf.constant([[0.0, -0.2, 0.0]]),
                                           tf.constant([[-0.3, 0.1, 1.0]]))
        np.testing.assert_allclose(geometry.mirror_x(yaw), expected, **tol())

    def test_rejects_non_4x4(self):
        with pytest.raises(ValueError, match=r"transform must have shape \[\.\.\., 4, 4\]"):
            geometry.mirror_x(tf.eye(3))

    def test_warp_of_flipped_pair_is_flipped_warp(self, rng):
        """Flipping target depth and source image, and mirroring the pose, flips the warped image."""
        b, h, w = 2, 12, 16
        K = np.repeat(intrinsics(h, w)[None], b, 0)
        inv_K = np.linalg.inv(K).astype(np.float32)
        source = tf.constant(rng.uniform(0, 1, size=(b, h, w, 3)).astype(np.float32))
        depth = tf.constant(rng.uniform(3.0, 8.0, size=(b, h, w, 1)).astype(np.float32))
        pose = tf.constant(np.stack([random_pose(rng, 0.05, 0.4) for _ in range(b)]).astype(np.float32))
        warped = geometry.warp(source, depth, pose, K, inv_K)
        flipped = geometry.warp(source[:, :, ::-1], depth[:, :, ::-1], geometry.mirror_x(pose), K, inv_K)
        np.testing.assert_allclose(flipped, warped[:, :, ::-1], atol=1e-4)
        # Without mirroring the pose the flipped warp is wrong: the test can fail.
        unmirrored = geometry.warp(source[:, :, ::-1], depth[:, :, ::-1], pose, K, inv_K)
        assert np.abs(unmirrored - warped[:, :, ::-1]).mean() > 0.05
