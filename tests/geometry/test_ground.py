"""Ground-plane fit and camera-height scale: analytic planes, outliers, noise, no ground, the renderer."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.geometry import ground

H, W = 96, 320
HEIGHT_M = 1.65


def kitti_like_K(height: int = H, width: int = W) -> np.ndarray:
    """KITTI's focal length at this size (fy = 1.92 H), principal point at the centre."""
    return np.array([[0.58 * width, 0.0, (width - 1) / 2], [0.0, 1.92 * height, (height - 1) / 2],
                     [0.0, 0.0, 1.0]])


def rotation(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """camera_from_level: pitch about x, then roll about z."""
    p, r = np.deg2rad(pitch_deg), np.deg2rad(roll_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx


def rays(K: np.ndarray, height: int = H, width: int = W) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)


def ground_scene(K: np.ndarray, camera_height: float = HEIGHT_M, pitch_deg: float = 0.0,
                 roll_deg: float = 0.0, obstacles: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``[H, W]`` of a flat ground ``camera_height`` below the camera (tilted by pitch and roll)
    with, if ``obstacles``, a far background above the horizon, a wall on the left, a box in front
    and a car-sized box on the right; and the ground's unit normal in the camera frame.

    Below a level horizon the ground depth is ``z = h fy / (v - cy)``; pitch and roll turn it.
    """
    normal = rotation(pitch_deg, roll_deg) @ np.array([0.0, 1.0, 0.0])
    along = rays(K) @ normal
    with np.errstate(divide="ignore"):
        depth = np.where(along > 1e-6, camera_height / along, 0.0)
    if obstacles:
        depth[depth == 0] = 60.0 * camera_height  # background beyond the horizon
        depth[depth > 60.0 * camera_height] = 60.0 * camera_height
        h, w = depth.shape
        box = depth[:, : w // 6]
        box[...] = np.minimum(box, 3.0 * camera_height)  # a wall on the left
        box = depth[h // 3:, w // 2 - w // 10: w // 2 + w // 10]
        box[...] = np.minimum(box, 6.0 * camera_height)  # a box ahead
        box = depth[h // 2 - h // 8:, 3 * w // 4:]
        box[...] = np.minimum(box, 4.5 * camera_height)  # a car on the right
    return depth, normal


class TestFitGroundPlane:
    def test_level_ground_is_exact(self):
        K = kitti_like_K()
        depth, _ = ground_scene(K, obstacles=False)
        fit = ground.fit_ground_plane(depth, K)
        assert fit.reliable and fit.inlier_fraction == pytest.approx(1.0)
        assert fit.height == pytest.approx(HEIGHT_M, rel=1e-9)
        np.testing.assert_allclose(fit.normal, [0, 1, 0], atol=1e-9)

    @pytest.mark.parametrize("depth_scale", [0.01, 1.0, 37.0])
    @pytest.mark.parametrize("pitch_deg, roll_deg", [(0.0, 0.0), (2.0, -3.0), (-1.5, 4.0)])
    def test_recovers_height_with_outliers_at_any_scale(self, depth_scale, pitch_deg, roll_deg):
        K = kitti_like_K()
        depth, normal = ground_scene(K, pitch_deg=pitch_deg, roll_deg=roll_deg)
        fit = ground.fit_ground_plane(depth * depth_scale, K)
        assert fit.reliable
        assert fit.height == pytest.approx(HEIGHT_M * depth_scale, rel=0.01)
        np.testing.assert_allclose(fit.normal, normal, atol=1e-3)
        assert 0.3 < fit.inlier_fraction < 0.9  # the obstacles are outliers, not ground
        scale, _ = ground.camera_height_scale(depth * depth_scale, K, HEIGHT_M)
        assert scale == pytest.approx(1.0 / depth_scale, rel=0.01)

    @pytest.mark.parametrize("sigma, obstacles, rel", [(0.03, True, 0.01), (0.1, False, 0.02)])
    def test_robust_to_depth_noise(self, rng, sigma, obstacles, rel):
        K = kitti_like_K()
        depth, _ = ground_scene(K, pitch_deg=1.0, roll_deg=2.0, obstacles=obstacles)
        for seed in range(3):  # multiplicative per-pixel noise, several RANSAC seeds
            noisy = depth * np.exp(rng.normal(0.0, sigma, depth.shape))
            fit = ground.fit_ground_plane(noisy, K, seed=seed)
            assert fit.reliable and fit.height == pytest.approx(HEIGHT_M, rel=rel)

    def test_deterministic_for_a_seed(self, rng):
        K = kitti_like_K()
        depth, _ = ground_scene(K, pitch_deg=1.0)
        noisy = depth * np.exp(rng.normal(0.0, 0.05, depth.shape))
        a, b = ground.fit_ground_plane(noisy, K, seed=3), ground.fit_ground_plane(noisy, K, seed=3)
        assert a.height == b.height and a.num_inliers == b.num_inliers

    def test_wall_filling_the_image_is_unreliable(self):
        K = kitti_like_K()
        fit = ground.fit_ground_plane(np.full((H, W), 3.0), K)
        assert not fit.reliable and np.isnan(fit.height) and fit.num_inliers == 0
        scale, _ = ground.camera_height_scale(np.full((H, W), 3.0), K, HEIGHT_M)
        assert np.isnan(scale)

    def test_little_ground_in_view_is_unreliable(self):
        """A truck 4 m ahead hides all but the bottom rows: too little ground to trust."""
        K = kitti_like_K()
        depth, _ = ground_scene(K, obstacles=False)
        depth[: H - 3] = np.minimum(depth[: H - 3], 4.0)
        fit = ground.fit_ground_plane(depth, K)
        assert not fit.reliable and fit.inlier_fraction < ground.MIN_INLIER_FRACTION

    def test_planes_tilted_beyond_the_cone_are_not_ground(self):
        """A camera pitched 12 degrees down sees the road as a plane outside `MAX_TILT_DEG`."""
        K = kitti_like_K()
        depth, _ = ground_scene(K, pitch_deg=-12.0, obstacles=False)
        assert not ground.fit_ground_plane(depth, K).reliable

    def test_no_candidates_without_valid_depth(self):
        K = kitti_like_K()
        fit = ground.fit_ground_plane(np.zeros((H, W)), K)
        assert not fit.reliable and fit.num_candidates == 0

    def test_rejects_bad_shapes(self):
        K = kitti_like_K()
        with pytest.raises(ValueError, match=r"^depth must have shape \[H, W\], got \[1, 96, 320\]$"):
            ground.fit_ground_plane(np.ones((1, H, W)), K)
        with pytest.raises(ValueError, match=r"^K must have shape \[3, 3\], got \[1, 3, 3\]$"):
            ground.fit_ground_plane(np.ones((H, W)), K[None])
        with pytest.raises(ValueError, match=r"^camera_height must be a finite number > 0"):
            ground.camera_height_scale(np.ones((H, W)), K, 0.0)
        with pytest.raises(ValueError, match=r"^K_normalized must have shape \[3, 3\]"):
            ground.intrinsics_in_pixels(np.eye(4), H, W)


def test_intrinsics_in_pixels_matches_scale_intrinsics():
    from md2tf.geometry.camera import scale_intrinsics

    K_normalized = np.array([[0.58, 0.0, 0.49], [0.0, 1.92, 0.51], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(ground.intrinsics_in_pixels(K_normalized, 192, 640),
                               scale_intrinsics(K_normalized, 192, 640).numpy(), rtol=1e-12)


@pytest.mark.parametrize("pitch_deg", [0.0, 3.0])
def test_rendered_synthetic_world_gives_its_camera_height(pitch_deg):
    """GT depth of the built-in world (road, sidewalks, buildings, cars) recovers its camera height."""
    from md2tf.data.synthetic import render
    from md2tf.data.synthetic import world as w

    config = w.WorldConfig(drives=1, frames=6, height=H, width=W, seed=5, pitch_deg=pitch_deg)
    K = w.camera_intrinsics(config)
    drive = w.make_drive(config, 0)
    heights = []
    for frame in (1, 4):
        fit = ground.fit_ground_plane(render.render_view(drive, frame, 2, K, H, W).depth, K)
        assert fit.reliable
        heights.append(fit.height)
    np.testing.assert_allclose(heights, config.camera_height, rtol=0.02)
