"""LearnedIntrinsics: analytic K, the flip, checkpoints, gradients, and recovering a camera's K
from the photometric loss alone (Gordon et al., ICCV 2019, Sec. 3)."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry
from md2tf.config import DEFAULT_FOV_DEG, DataConfig, ExperimentConfig
from md2tf.data.datasets.folder import default_normalized_intrinsics
from md2tf.data.synthetic import render
from md2tf.data.synthetic import world as w
from md2tf.losses import photometric
from md2tf.models.intrinsics import LearnedIntrinsics
from tests.conftest import tol

# Two cameras: normalised (fx, fy, cx, cy).
K0 = np.array([[0.6, 0.0, 0.55], [0.0, 1.9, 0.45], [0.0, 0.0, 1.0]])
K1 = np.array([[0.9, 0.0, 0.5], [0.0, 1.2, 0.5], [0.0, 0.0, 1.0]])


def _layer() -> LearnedIntrinsics:
    return LearnedIntrinsics(2, np.stack([K0, K1]))


class TestLearnedIntrinsics:
    def test_k_in_pixels_is_analytic(self):
        h, w_ = 48, 160
        k = _layer()(tf.constant([0, 1, 0]), height=h, width=w_).numpy()
        assert k.shape == (3, 3, 3)
        # Every K's convention (geometry.scale_intrinsics): fx = fx_n W, cx = cx_n W, ...
        expected0 = [[0.6 * 160, 0, 0.55 * 160], [0, 1.9 * 48, 0.45 * 48], [0, 0, 1]]
        expected1 = [[0.9 * 160, 0, 80.0], [0, 1.2 * 48, 24.0], [0, 0, 1]]
        np.testing.assert_allclose(expected0, geometry.scale_intrinsics(K0, h, w_).numpy(), **tol())
        np.testing.assert_allclose(k[0], expected0, **tol())
        np.testing.assert_allclose(k[1], expected1, **tol())
        np.testing.assert_allclose(k[2], expected0, **tol())
        np.testing.assert_allclose(_layer().normalized().numpy(), [[0.6, 1.9, 0.55, 0.45],
                                                                   [0.9, 1.2, 0.5, 0.5]], **tol())

    def test_learning_rate_scale_moves_k_faster_under_adam(self):
        """Same K at the start; one Adam step moves it ``learning_rate_scale`` times as far."""
        moves = []
        for scale in (1.0, 10.0):
            layer = LearnedIntrinsics(2, np.stack([K0, K1]), learning_rate_scale=scale)
            np.testing.assert_allclose(layer.normalized().numpy(), _layer().normalized().numpy(), **tol())
            before = layer.normalized().numpy()
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(layer(tf.constant([0, 1]), height=8, width=8))
            keras.optimizers.Adam(1e-4).apply(tape.gradient(loss, layer.trainable_variables),
                                              layer.trainable_variables)
            moves.append(np.abs(layer.normalized().numpy() - before))
        np.testing.assert_allclose(moves[1], 10.0 * moves[0], rtol=0.02)
        assert LearnedIntrinsics(1, K0, learning_rate_scale=3.0).get_config()["learning_rate_scale"] == 3.0
        with pytest.raises(ValueError, match="learning_rate_scale must be > 0"):
            LearnedIntrinsics(1, K0, learning_rate_scale=0.0)

    def test_flip_mirrors_the_principal_point(self):
        h, w_ = 48, 160
        layer = _layer()
        plain = layer(tf.constant([0, 0]), height=h, width=w_).numpy()
        flipped = layer(tf.constant([0, 0]), height=h, width=w_, flipped=tf.constant([True, False])).numpy()
        assert flipped[0, 0, 2] == pytest.approx(w_ - 1 - plain[0, 0, 2], abs=1e-4)
        np.testing.assert_array_equal(flipped[1], plain[1])
        np.testing.assert_array_equal(np.delete(flipped[0].ravel(), 2), np.delete(plain[0].ravel(), 2))

    def test_flipped_warp_is_the_warp_flipped(self):
        """Warping mirrored images with the mirrored K and pose equals mirroring the warp of the
        originals: the flipped K is the camera of the flipped image."""
        h, w_ = 16, 24
        layer = _layer()
        image = tf.random.stateless_uniform([1, h, w_, 3], seed=(1, 2))
        depth = tf.random.stateless_uniform([1, h, w_, 1], seed=(3, 4), minval=4.0, maxval=8.0)
        pose = geometry.pose_to_matrix(tf.constant([[0.0, 0.02, 0.01]]), tf.constant([[0.1, 0.05, 0.3]]))
        k = layer(tf.constant([0]), height=h, width=w_)
        k_flip = layer(tf.constant([0]), height=h, width=w_, flipped=tf.constant([True]))
        warped = geometry.warp(image, depth, pose, k, geometry.invert_intrinsics(k))
        flip = lambda x: tf.reverse(x, axis=[2])  # noqa: E731
        warped_flip = geometry.warp(flip(image), flip(depth), geometry.mirror_x(pose), k_flip,
                                    geometry.invert_intrinsics(k_flip))
        np.testing.assert_allclose(warped_flip.numpy(), flip(warped).numpy(), atol=1e-4)

    def test_default_start_is_a_60_degree_camera(self):
        k = default_normalized_intrinsics(96, 320)
        assert DEFAULT_FOV_DEG == 60.0
        assert 2 * np.degrees(np.arctan(0.5 / k[0, 0])) == pytest.approx(60.0)
        assert k[1, 1] * 96 == pytest.approx(k[0, 0] * 320)  # square pixels
        assert (k[0, 2], k[1, 2]) == (0.5, 0.5)

    def test_rejects_bad_start(self):
        with pytest.raises(ValueError, match=r"\[C, 3, 3\] with C = 3"):
            LearnedIntrinsics(3, np.stack([K0, K1]))
        with pytest.raises(ValueError, match="positive focal"):
            LearnedIntrinsics(1, np.diag([0.0, 1.0, 1.0]))

    def test_config_round_trip(self):
        layer = _layer()
        clone = LearnedIntrinsics.from_config(layer.get_config())
        np.testing.assert_allclose(clone.normalized().numpy(), layer.normalized().numpy(), **tol())

    def test_a_stereo_pair_alone_does_not_determine_k(self):
        """Why ``--intrinsics=learned`` needs temporal frames: a rectified pair's warp (the baseline
        along x, no rotation) moves each pixel by ``fx * b / depth`` along its row, so fy, cx and cy
        drop out of it and an fx error is absorbed exactly by the depth."""
        depth = tf.constant(np.random.default_rng(0).uniform(2.0, 50.0, (1, 6, 8, 1)), tf.float32)
        stereo = np.eye(4, dtype=np.float32)[None]
        stereo[0, 0, 3] = 0.54

        def coords(fx, fy, cx, cy, d):
            k = np.array([[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]], np.float32)
            return geometry.project(geometry.backproject(d, np.linalg.inv(k)), k, stereo).numpy()

        base = coords(7.0, 5.0, 3.5, 2.5, depth)
        u, v = np.meshgrid(np.arange(8.0), np.arange(6.0))
        np.testing.assert_allclose(base[0, ..., 0], u + 7.0 * 0.54 / depth.numpy()[0, ..., 0], **tol())
        np.testing.assert_allclose(base[0, ..., 1], v, **tol())
        np.testing.assert_allclose(coords(7.0, 9.0, 4.5, 1.0, depth), base, **tol())
        np.testing.assert_allclose(coords(7.0 * 1.25, 5.0, 3.5, 2.5, depth * 1.25), base, **tol())
        assert np.abs(coords(7.0 * 1.25, 5.0, 3.5, 2.5, depth) - base).max() > 0.05  # fx alone shows
        with pytest.raises(ValueError, match="--intrinsics=learned needs temporal source frames"):
            ExperimentConfig(data=DataConfig(intrinsics="learned", frame_offsets=(0,), use_stereo=True))

    def test_variables_round_trip_through_a_checkpoint(self, tmp_path):
        layer = _layer()
        layer.focal.assign(layer.focal + 0.1)
        layer.principal_offset.assign(layer.principal_offset - 0.02)
        path = tf.train.Checkpoint(intrinsics=layer).save(str(tmp_path / "ckpt"))
        names = [n for n, _ in tf.train.list_variables(path)]
        assert sum("intrinsics/" in n and ".ATTRIBUTES" in n for n in names) == 2, names
        other = _layer()
        tf.train.Checkpoint(intrinsics=other).restore(path).assert_consumed()
        np.testing.assert_array_equal(other.normalized().numpy(), layer.normalized().numpy())

    def test_gradient_reaches_every_parameter(self):
        layer = _layer()
        with tf.GradientTape() as tape:
            k = layer(tf.constant([0, 1]), height=8, width=8, flipped=tf.constant([True, False]))
            loss = tf.reduce_sum(k * tf.random.stateless_normal([2, 3, 3], seed=(5, 6)))
        grads = tape.gradient(loss, layer.trainable_variables)
        assert len(grads) == 2 and all(np.all(np.abs(g.numpy()) > 0) for g in grads)


# --- recovering K from the photometric loss ------------------------------------------------------

def _rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _motion(pitch: float, yaw: float, roll: float, t) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = _rotation(0, pitch) @ _rotation(1, yaw) @ _rotation(2, roll)
    m[:3, 3] = t
    return m


class _PosedDrive:
    """A drive whose camera poses are given (the world's cameras only yaw, and with yaw and motion
    in the ground plane alone fy cancels from every warp: it needs pitch or vertical motion)."""

    def __init__(self, drive: w.Drive, street_from_camera: dict[int, np.ndarray]) -> None:
        self._drive, self._poses = drive, street_from_camera

    def __getattr__(self, name: str):
        return getattr(self._drive, name)

    def street_from_camera(self, frame: int, camera: int = 2) -> np.ndarray:
        del camera
        return self._poses[frame]


def test_photometric_loss_alone_recovers_k():
    """True depth and poses of a non-KITTI camera (70 degree field of view, principal point 5 %
    off centre) and a start 25 % off in both focal lengths: minimising the reprojection error
    (paper Eq. 1, SSIM + L1) over K alone recovers fx, fy within 3 % and cx, cy within 2 % of the
    image size."""
    started = time.perf_counter()
    h, w_ = 96, 320
    world = w.WorldConfig(drives=1, frames=20, height=h, width=w_, seed=1, fov_deg=70.0,
                          principal_offset_x=0.05, principal_offset_y=0.05)
    drive = w.make_drive(world, 0)
    true_k = w.camera_intrinsics(world)
    motions = (_motion(2.0, 3.0, 1.0, [0.3, -0.15, 0.8]), _motion(-1.5, -2.5, -1.0, [-0.25, 0.1, -0.6]))
    targets, sources, depths, transforms = [], [], [], []
    for frame in (5, 12):
        boxes = drive.boxes_at(frame)
        base = drive.street_from_camera(frame)
        poses = {0: base, 1: base @ motions[0], 2: base @ motions[1]}
        posed = _PosedDrive(drive, poses)
        target = render.render_view(posed, 0, 2, true_k, h, w_, boxes=boxes)
        for i in (1, 2):
            targets.append(target.image)
            depths.append(target.depth)
            sources.append(render.render_view(posed, i, 2, true_k, h, w_, boxes=boxes).image)
            transforms.append(np.linalg.inv(poses[i]) @ poses[0])  # source_from_target
    target = tf.constant(np.stack(targets), tf.float32)
    source = tf.constant(np.stack(sources), tf.float32)
    depth = np.stack(depths)[..., None]
    valid = tf.constant(depth > 0, tf.float32)  # the sky (depth 0) is left out
    depth = tf.constant(np.where(depth > 0, depth, 1e3), tf.float32)
    source_from_target = tf.constant(np.stack(transforms), tf.float32)
    truth = np.diag(true_k)[:2] / [w_, h]
    truth = np.array([*truth, true_k[0, 2] / w_, true_k[1, 2] / h])  # normalised (fx, fy, cx, cy)

    layer = LearnedIntrinsics(1, np.diag([1.25 * truth[0], 1.25 * truth[1], 1.0]))  # centred start
    optimizer = keras.optimizers.Adam(0.02)
    camera = tf.zeros([target.shape[0]], tf.int32)

    @tf.function
    def fit_step(blur: int):
        # A blurred first half widens the basin of the 25 % wrong start (several pixels of flow).
        def smooth(x):
            return tf.nn.avg_pool2d(x, 2 * blur + 1, 1, "SAME") if blur else x

        with tf.GradientTape() as tape:
            k = layer(camera, height=h, width=w_)
            coords = geometry.project(geometry.backproject(depth, geometry.invert_intrinsics(k)), k,
                                      source_from_target)
            warped = geometry.bilinear_sample(smooth(source), coords)
            u, v = coords[..., :1], coords[..., 1:]
            inside = tf.cast((u >= 0) & (u <= w_ - 1) & (v >= 0) & (v <= h - 1), tf.float32)
            mask = valid * inside  # pixels that leave the source image have no photometric evidence
            error = photometric.photometric_error(warped, smooth(target))
            loss = tf.reduce_sum(error * mask) / tf.reduce_sum(mask)
        optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)

    steps = 160
    for i in range(steps):
        if i == 3 * steps // 4:
            optimizer.learning_rate.assign(0.004)
        fit_step(2 if i < steps // 2 else 0)
    learned = layer.normalized().numpy()[0]
    np.testing.assert_array_less(np.abs(learned[:2] / truth[:2] - 1.0), 0.03)
    np.testing.assert_array_less(np.abs(learned[2:] - truth[2:]), 0.02)
    print(f"learned {learned}, truth {truth}, {time.perf_counter() - started:.1f} s")
