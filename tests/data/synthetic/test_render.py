"""Ray caster and renderer: analytic depths, brute-force intersections, warping with GT depth + pose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from md2tf.data.synthetic import render
from md2tf.data.synthetic import world as w

H, W = 48, 160


def _drive_with(boxes: w.Boxes, frames: int = 2, yaw: float = 0.0) -> w.Drive:
    pos = np.zeros((frames, 3))
    pos[:, 2] = np.arange(frames) * 1.0
    return w.Drive(0, boxes, (), pos, np.full(frames, yaw), w.KITTI_CAMERA_HEIGHT_M, 0.54)


def _one_box(lo, hi) -> w.Boxes:
    return w.Boxes(np.array([lo], float), np.array([hi], float), np.array([w.MAT_WALL], np.int32),
                   np.array([[0.5, 0.5, 0.5]], np.float32), np.array([1]), np.array([False]))


def _bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """NumPy bilinear sampling at pixel coordinates, border clamp. image [H, W, C], u/v [...]."""
    h, w_ = image.shape[:2]
    u = np.clip(u, 0, w_ - 1)
    v = np.clip(v, 0, h - 1)
    u0, v0 = np.minimum(np.floor(u).astype(int), w_ - 2), np.minimum(np.floor(v).astype(int), h - 2)
    a, b = (u - u0)[..., None], (v - v0)[..., None]
    return ((1 - a) * (1 - b) * image[v0, u0] + a * (1 - b) * image[v0, u0 + 1]
            + (1 - a) * b * image[v0 + 1, u0] + a * b * image[v0 + 1, u0 + 1])


class TestDepth:
    def test_ground_plane_depth_is_analytic(self):
        """Ground pixels: z = h * fy / (v - cy) for a camera at height h with no pitch/roll (any yaw)."""
        k = w.kitti_like_intrinsics(H, W)
        drive = _drive_with(_one_box((50, -5, 400), (51, 1.65, 401)), yaw=0.05)  # ground + sky
        out = render.render_view(drive, 0, 2, k, H, W)
        v = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
        ground = out.box == -1
        assert ground.sum() > 0.3 * H * W
        with np.errstate(divide="ignore"):
            expected = 1.65 * k[1, 1] / (v - k[1, 2])
        np.testing.assert_allclose(out.depth[ground], expected[ground], rtol=1e-5)
        assert np.all(out.depth[out.box == -2] == 0)  # sky has depth 0
        assert np.all(v[out.box == -2] <= k[1, 2])  # and lies on or above the horizon

    def test_ground_depth_in_generated_drive(self):
        cfg = w.WorldConfig(drives=1, frames=4, height=H, width=W, seed=5)
        drive = w.make_drive(cfg, 0)
        k = w.kitti_like_intrinsics(H, W)
        out = render.render_view(drive, 2, 3, k, H, W)
        v = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
        ground = out.box == -1
        assert ground.sum() > 0.1 * H * W
        with np.errstate(divide="ignore"):
            expected = 1.65 * k[1, 1] / (v - k[1, 2])
        np.testing.assert_allclose(out.depth[ground], expected[ground], rtol=1e-5)

    def test_fronto_parallel_wall_depth(self):
        """A wall facing the camera at z = 3 m fills the view: every pixel has depth exactly 3."""
        drive = _drive_with(_one_box((-100, -100, 3.0), (100, 1.6, 4.0)))
        out = render.render_view(drive, 0, 2, w.kitti_like_intrinsics(H, W), H, W)
        assert np.all(out.box == 0)
        np.testing.assert_allclose(out.depth, 3.0, rtol=1e-6)

    def test_rejects_bad_frame(self):
        drive = _drive_with(_one_box((0, 0, 5), (1, 1, 6)))
        with pytest.raises(ValueError, match="frame"):
            render.render_view(drive, 5, 2, w.kitti_like_intrinsics(H, W), H, W)


def _brute_force(origin, dirs, lo, hi, ground_y):
    """Per-ray nearest hit by testing the 6 face planes of every box and the ground (no culling)."""
    t_out = np.full(len(dirs), np.inf)
    b_out = np.full(len(dirs), -2)
    for i, d in enumerate(dirs):
        if d[1] > 1e-9:
            t_out[i], b_out[i] = (ground_y - origin[1]) / d[1], -1
        for j in range(len(lo)):
            for ax in range(3):
                for plane in (lo[j, ax], hi[j, ax]):
                    if abs(d[ax]) < 1e-12:
                        continue
                    t = (plane - origin[ax]) / d[ax]
                    if t <= 0 or t >= t_out[i]:
                        continue
                    p = origin + t * d
                    others = [a for a in range(3) if a != ax]
                    if all(lo[j, a] - 1e-9 <= p[a] <= hi[j, a] + 1e-9 for a in others):
                        t_out[i], b_out[i] = t, j
    return t_out, b_out


def test_cast_rays_matches_brute_force(rng):
    n_box = 25
    centre = rng.uniform([-20, -5, 3], [20, 1, 60], (n_box, 3))
    size = rng.uniform(0.3, 6.0, (n_box, 3))
    lo, hi = centre - size / 2, centre + size / 2
    hi[:, 1] = np.minimum(hi[:, 1], 1.65)
    boxes = w.Boxes(lo, hi, np.full(n_box, w.MAT_WALL, np.int32), np.ones((n_box, 3), np.float32),
                    np.arange(n_box), np.zeros(n_box, bool))
    origin = np.array([0.3, 0.0, -1.0])
    dirs = rng.normal(size=(8, 40, 3)) * [0.5, 0.3, 1.0] + [0, 0, 1.5]
    # A few axis-aligned rays (zero components) too.
    dirs[0, :3] = [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    hits = render.cast_rays(origin, dirs, boxes, 1.65)
    t_ref, b_ref = _brute_force(origin, dirs.reshape(-1, 3), lo, hi, 1.65)
    np.testing.assert_array_equal(hits.box.reshape(-1), b_ref)
    finite = np.isfinite(t_ref)
    np.testing.assert_allclose(hits.t.reshape(-1)[finite], t_ref[finite], rtol=1e-5)
    assert np.all(np.isinf(hits.t.reshape(-1)[~finite]))


def test_cast_rays_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"dirs.*\[G, R, 3\]"):
        render.cast_rays(np.zeros(3), np.zeros((4, 3)), _one_box((0, 0, 5), (1, 1, 6)), 1.65)


def _warp_error(tgt, src, k, source_from_target):
    """Mean |warped source - target| over valid static, unoccluded pixels; also the identity error."""
    h, w_ = tgt.depth.shape
    depth = np.where(tgt.depth > 0, tgt.depth, 1.0)  # sky: any depth, masked out below
    u, v = np.meshgrid(np.arange(w_, dtype=float), np.arange(h, dtype=float))
    pts = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1) * depth[..., None]
    ps = pts @ source_from_target[:3, :3].T + source_from_target[:3, 3]
    z = np.maximum(ps[..., 2], 1e-3)
    us = k[0, 0] * ps[..., 0] / z + k[0, 2]
    vs = k[1, 1] * ps[..., 1] / z + k[1, 2]
    inside = (ps[..., 2] > 1e-3) & (us >= 0) & (us <= w_ - 1) & (vs >= 0) & (vs <= h - 1) & (tgt.depth > 0)
    ui, vi = np.clip(np.round(us), 0, w_ - 1).astype(int), np.clip(np.round(vs), 0, h - 1).astype(int)
    visible = np.abs(src.depth[vi, ui] - ps[..., 2]) < 0.03 * ps[..., 2]  # not occluded in the source
    valid = inside & visible & ~tgt.moving & ~src.moving[vi, ui]
    warped = _bilinear(src.image, us, vs)
    err = np.abs(warped - tgt.image).mean(-1)
    ident = np.abs(src.image - tgt.image).mean(-1)
    return err[valid].mean(), ident[valid].mean(), valid.mean()


class TestWarp:
    def test_temporal_warp_reproduces_target(self):
        cfg = w.WorldConfig(drives=1, frames=12, height=64, width=208, seed=1)
        drive = w.make_drive(cfg, 0)
        step = np.linalg.norm(np.diff(drive.cam_position, axis=0), axis=1)
        f = int(np.argmax(step[:-1] > 0.4))  # a moving frame
        assert step[f] > 0.4
        k = w.kitti_like_intrinsics(64, 208)
        tgt = render.render_view(drive, f, 2, k, 64, 208)
        src = render.render_view(drive, f + 1, 2, k, 64, 208)
        source_from_target = np.linalg.inv(drive.world_from_camera(f + 1)) @ drive.world_from_camera(f)
        err, ident, frac = _warp_error(tgt, src, k, source_from_target)
        assert frac > 0.5
        assert err < 0.02, err
        assert err < 0.3 * ident, (err, ident)
        assert _warp_error(tgt, src, k, np.linalg.inv(source_from_target))[0] > 2 * err  # wrong direction

    def test_stereo_warp_with_baseline(self):
        """Right image warped into the left one with the 0.54 m baseline (x_right = x_left - 0.54)."""
        cfg = w.WorldConfig(drives=1, frames=3, height=64, width=208, seed=2)
        drive = w.make_drive(cfg, 0)
        k = w.kitti_like_intrinsics(64, 208)
        left = render.render_view(drive, 1, 2, k, 64, 208)
        right = render.render_view(drive, 1, 3, k, 64, 208)
        right_from_left = np.eye(4)
        right_from_left[0, 3] = -0.54
        err, ident, frac = _warp_error(left, right, k, right_from_left)
        assert frac > 0.5
        assert err < 0.02, err
        assert err < 0.3 * ident, (err, ident)
        wrong = right_from_left.copy()
        wrong[0, 3] = +0.54  # the opposite sign must not fit
        assert _warp_error(left, right, k, wrong)[0] > 2 * err


def _next_frame_warp(drive: w.Drive, f: int, cfg: w.WorldConfig):
    """Renders frames ``f`` and ``f + 1`` with the world's K and warps the second onto the first with
    GT depth and the drive's poses: ``(target, source, K, *_warp_error)``."""
    k = w.camera_intrinsics(cfg)
    tgt = render.render_view(drive, f, 2, k, cfg.height, cfg.width)
    src = render.render_view(drive, f + 1, 2, k, cfg.height, cfg.width)
    source_from_target = np.linalg.inv(drive.world_from_camera(f + 1)) @ drive.world_from_camera(f)
    return (tgt, src, k, *_warp_error(tgt, src, k, source_from_target))


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


class TestCamera:
    """A non-KITTI camera (`WorldConfig.fov_deg`, ``principal_offset_x/_y``)."""

    CFG = w.WorldConfig(drives=1, frames=12, height=64, width=208, seed=1, fov_deg=70.0,
                        principal_offset_x=0.05, principal_offset_y=-0.05)

    def test_fov_and_offset_give_k(self):
        k = w.camera_intrinsics(self.CFG)
        f = 208 / (2 * np.tan(np.deg2rad(35.0)))
        np.testing.assert_allclose(k, [[f, 0, 103.5 + 0.05 * 208], [0, f, 31.5 - 0.05 * 64], [0, 0, 1]])
        # the horizontal field of view spans the image's W pixel widths
        np.testing.assert_allclose(2 * np.rad2deg(np.arctan(208 / 2 / k[0, 0])), 70.0)

    def test_default_is_kitti_like(self):
        cfg = w.WorldConfig(height=H, width=W)
        np.testing.assert_array_equal(w.camera_intrinsics(cfg), w.kitti_like_intrinsics(H, W))

    def test_rejects_an_open_size(self):
        with pytest.raises(ValueError, match="resolved image size"):
            w.camera_intrinsics(w.WorldConfig())

    def test_ground_depth_follows_the_camera(self):
        """Back-projection with the world's K: ground depth = h * fy / (v - cy) with its fy, cy."""
        k = w.camera_intrinsics(self.CFG)
        drive = _drive_with(_one_box((50, -5, 400), (51, 1.65, 401)))
        out = render.render_view(drive, 0, 2, k, 64, 208)
        v = np.arange(64, dtype=np.float64)[:, None] * np.ones((1, 208))
        ground = out.box == -1
        assert ground.sum() > 0.3 * 64 * 208
        with np.errstate(divide="ignore"):
            expected = 1.65 * k[1, 1] / (v - k[1, 2])
        np.testing.assert_allclose(out.depth[ground], expected[ground], rtol=1e-5)

    def test_temporal_warp_needs_the_worlds_k(self):
        """Rendered depth back-projected with the world's K warps the next frame onto the target;
        the KITTI-like K does not."""
        drive = w.make_drive(self.CFG, 0)
        step = np.linalg.norm(np.diff(drive.cam_position, axis=0), axis=1)
        f = int(np.argmax(step[:-1] > 0.4))
        k = w.camera_intrinsics(self.CFG)
        tgt = render.render_view(drive, f, 2, k, 64, 208)
        src = render.render_view(drive, f + 1, 2, k, 64, 208)
        source_from_target = np.linalg.inv(drive.world_from_camera(f + 1)) @ drive.world_from_camera(f)
        err, ident, frac = _warp_error(tgt, src, k, source_from_target)
        assert frac > 0.5 and err < 0.02 and err < 0.3 * ident, (err, ident, frac)
        wrong = _warp_error(tgt, src, w.kitti_like_intrinsics(64, 208), source_from_target)[0]
        assert wrong > 1.5 * err, (wrong, err)

    def test_pitching_camera_warps_with_its_poses(self):
        """With ``pitch_deg`` the camera pitches (bounded by the amplitude, changing from frame to
        frame) over the same scene, and rendered depth + the written poses still warp the next frame
        onto the target; the poses without the pitch do not."""
        cfg = dataclasses.replace(self.CFG, pitch_deg=2.0)
        drive, flat = w.make_drive(cfg, 0), w.make_drive(self.CFG, 0)
        assert flat.cam_pitch is None
        for field in w.Boxes._fields:
            np.testing.assert_array_equal(getattr(flat.static, field), getattr(drive.static, field))
        assert np.abs(drive.cam_pitch).max() <= np.radians(2.0) + 1e-12
        assert np.abs(np.diff(drive.cam_pitch)).max() > np.radians(0.2)
        step = np.linalg.norm(np.diff(drive.cam_position, axis=0), axis=1)
        candidates = (step > 0.4) & (np.abs(np.diff(drive.cam_pitch)) > np.radians(0.3))
        assert candidates[:-1].any()
        f = int(np.argmax(candidates[:-1]))
        tgt, src, k, err, ident, frac = _next_frame_warp(drive, f, cfg)
        assert frac > 0.5 and err < 0.02 and err < 0.3 * ident, (err, ident, frac)
        no_pitch = np.linalg.inv(flat.world_from_camera(f + 1)) @ flat.world_from_camera(f)
        assert _warp_error(tgt, src, k, no_pitch)[0] > 1.5 * err

    def test_panning_camera_turns_about_the_vertical_and_warps_with_its_poses(self):
        """``pan_deg`` adds a bounded yaw to the heading: the camera centres and the scene stay, the
        poses' rotation changes about y only, and GT depth + poses still warp the next frame."""
        cfg = dataclasses.replace(self.CFG, pan_deg=5.0)
        drive, flat = w.make_drive(cfg, 0), w.make_drive(self.CFG, 0)
        np.testing.assert_array_equal(drive.cam_position, flat.cam_position)
        assert np.abs(drive.cam_pan).max() <= np.radians(5.0) + 1e-12
        assert np.abs(np.diff(drive.cam_pan)).max() > np.radians(0.4)
        f = int(np.argmax(np.abs(np.diff(drive.cam_pan))[:-1]))
        rotation = drive.street_from_camera(f)[:3, :3]
        expected = flat.street_from_camera(f)[:3, :3] @ _rotation_y(drive.cam_pan[f])
        np.testing.assert_allclose(rotation, expected, atol=1e-12)
        tgt, src, k, err, ident, frac = _next_frame_warp(drive, f, cfg)
        assert frac > 0.5 and err < 0.03 and err < 0.3 * ident, (err, ident, frac)

    @pytest.mark.parametrize("kwargs, match", [
        (dict(pan_deg=-1.0), "--pan_deg"), (dict(pan_deg=40.0), "--pan_deg"),
        (dict(pitch_deg=-1.0), "--pitch_deg"), (dict(pitch_deg=12.0), "--pitch_deg"),
        (dict(fov_deg=5.0), "--fov_deg"), (dict(fov_deg=170.0), "--fov_deg"),
        (dict(principal_offset_x=0.3), "--principal_offset_x"),
        (dict(principal_offset_y=-0.3), "--principal_offset_y")])
    def test_config_validation(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            w.WorldConfig(**kwargs)


class TestWorld:
    def test_deterministic_per_seed(self):
        k = w.kitti_like_intrinsics(H, W)
        cfg = w.WorldConfig(drives=1, frames=3, height=H, width=W, seed=7)
        a = render.render_view(w.make_drive(cfg, 0), 1, 2, k, H, W).image
        b = render.render_view(w.make_drive(cfg, 0), 1, 2, k, H, W).image
        c = render.render_view(w.make_drive(w.WorldConfig(frames=3, seed=8), 0), 1, 2, k, H, W).image
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).mean() > 0.01

    def test_textured_everywhere_but_sky(self):
        """Photometric loss needs gradients: most non-sky 3x3 patches have contrast."""
        k = w.kitti_like_intrinsics(96, 320)
        out = render.render_view(w.make_drive(w.WorldConfig(frames=3, seed=4), 0), 1, 2, k, 96, 320)
        g = out.image.mean(-1)
        local_std = np.std(np.stack([np.roll(np.roll(g, dy, 0), dx, 1) for dy in (-1, 0, 1)
                                     for dx in (-1, 0, 1)]), axis=0)[1:-1, 1:-1]
        solid = out.depth[1:-1, 1:-1] > 0
        assert np.mean(local_std[solid] > 0.004) > 0.6

    def test_texture_contrast_scales_the_texture_linearly(self):
        """Green albedo = base * (1 + c * noise): c = 2 is twice c = 1 about the flat colours of c = 0,
        and the same geometry (depth) whatever c."""
        k = w.kitti_like_intrinsics(H, W)
        views = {c: render.render_view(w.make_drive(w.WorldConfig(frames=3, seed=4, texture_contrast=c), 0),
                                       1, 2, k, H, W) for c in (0.0, 1.0, 2.0)}
        green = {c: v.image[..., 1] for c, v in views.items()}
        np.testing.assert_array_equal(views[0.0].depth, views[2.0].depth)
        unclipped = (green[2.0] > 1e-3) & (green[2.0] < 1 - 1e-3)
        assert unclipped.mean() > 0.9
        texture = green[1.0] - green[0.0]
        assert np.abs(texture).mean() > 0.005  # the default world is textured
        np.testing.assert_allclose((green[2.0] - green[0.0])[unclipped], 2 * texture[unclipped], atol=2e-6)

    def test_zero_texture_contrast_leaves_flat_colours(self):
        """With contrast 0 neither the noise nor the red/blue tint is left: a flat wall (one face, one
        light) is one colour in every channel; with the default texture it is not."""
        k = w.kitti_like_intrinsics(H, W)
        wall = _one_box((-20, -8, 12), (20, 1.65, 13))  # fills the view 12 m ahead
        for contrast, flat in ((0.0, True), (1.0, False)):
            drive = _drive_with(wall)._replace(texture_contrast=contrast)
            out = render.render_view(drive, 0, 2, k, H, W)
            on_wall = out.image[out.box == 0]
            assert on_wall.shape[0] > 0.5 * H * W
            assert (np.ptp(on_wall, axis=0).max() < 1e-6) == flat, (contrast, np.ptp(on_wall, axis=0))

    def test_fewer_texture_octaves_leave_less_detail(self):
        """Each noise octave adds finer detail: on a flat wall 0.5 m ahead, where even the finest
        octave (29 cycles/m, ~6 px per cycle here) is resolved, the mean |horizontal difference|
        rises with every octave added; the geometry is the same."""
        k = w.kitti_like_intrinsics(H, W)
        wall = _one_box((-20, -8, 0.5), (20, 1.65, 1.5))
        roughness, depth = [], []
        for octaves in range(1, w.NOISE_OCTAVES + 1):
            out = render.render_view(_drive_with(wall)._replace(texture_octaves=octaves), 0, 2, k, H, W)
            assert np.all(out.box == 0)
            roughness.append(np.mean(np.abs(np.diff(out.image[..., 1], axis=1))))
            depth.append(out.depth)
        np.testing.assert_array_equal(depth[0], depth[-1])
        assert roughness[0] > 1e-6, "one octave leaves the green channel flat"
        assert np.all(np.diff(roughness) > 0.1 * np.array(roughness[:-1])), roughness
        assert roughness[-1] > 2 * roughness[-2], roughness  # the finest octave is not band-limited away

    def test_world_config_reaches_the_drive(self):
        drive = w.make_drive(w.WorldConfig(frames=3, texture_contrast=0.5, texture_octaves=2), 0)
        assert (drive.texture_contrast, drive.texture_octaves) == (0.5, 2)

    def test_trajectory_has_stops_turns_and_moving_cars(self):
        drive = w.make_drive(w.WorldConfig(frames=100, seed=0), 0)
        step = np.linalg.norm(np.diff(drive.cam_position, axis=0), axis=1)
        assert np.any(step < 1e-9), "no full stop"
        assert step.max() > 0.8 and step.max() - step[step > 0].min() > 0.3, "no speed change"
        assert np.ptp(drive.cam_yaw) > np.radians(0.5), "no turn"
        assert np.all(np.abs(drive.cam_yaw) < np.radians(6))
        assert any(c.follow for c in drive.cars) and any(c.speed < 0 for c in drive.cars)
        np.testing.assert_allclose(drive.world_from_camera(0), np.eye(4), atol=1e-12)

    def test_speed_variation_changes_the_speed_smoothly_on_the_same_scene(self):
        """The fluctuation multiplies the default speed profile by ``1 + a f(t)``, ``|f| <= 1`` with
        periods >= 20 frames (so ``|f'| <= 2 pi / 20`` per frame); stops stay stops and the scene is
        the same boxes."""
        a = 0.2
        base, varied = (w.make_drive(w.WorldConfig(frames=100, seed=0, speed_variation=v), 0) for v in (0.0, a))
        for field in w.Boxes._fields:
            np.testing.assert_array_equal(getattr(base.static, field), getattr(varied.static, field))
        assert base.cars == varied.cars
        v0, v1 = np.diff(base.cam_position[:, 2]), np.diff(varied.cam_position[:, 2])
        moving = v0 > 0.3
        assert np.array_equal(v0 == 0.0, v1 == 0.0), "a stop moved or vanished"
        ratio = v1[moving] / v0[moving] - 1.0
        assert np.abs(ratio).max() <= a + 1e-9
        assert ratio.std() > 0.03, "speed barely changes"
        multiplier = v1 / np.where(v0 > 0, v0, 1.0)
        both_moving = (v0[1:] > 0) & (v0[:-1] > 0)
        assert np.abs(np.diff(multiplier)[both_moving]).max() <= a * 2 * np.pi / 20 + 1e-9
        # On the default world's steady stretches the speed is constant; with variation it is not.
        steady = np.flatnonzero((np.abs(np.diff(v0)) < 1e-9) & moving[1:])
        assert np.abs(np.diff(v0)[steady]).max() < 1e-9 < np.abs(np.diff(v1)[steady]).min()

    @pytest.mark.parametrize("kwargs, match", [(dict(frames=2), "frames"), (dict(ext="bmp"), "ext"),
                                               (dict(date="2019-10-27"), "date"),
                                               (dict(texture_contrast=-0.5), "texture_contrast"),
                                               (dict(texture_octaves=0), "texture_octaves"),
                                               (dict(speed_variation=1.0), "speed_variation")])
    def test_config_validation(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            w.WorldConfig(**kwargs)
