"""Tests for md2tf.losses.multiscale.monodepth2_loss: NumPy reference and scene tests."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from md2tf import geometry, losses
from md2tf.config import LossConfig
from tests import reference_np

H, W = 8, 24
FX, Z, TX = 12.0, 6.0, 1.0  # a lateral translation of TX at depth Z shifts pixels by FX * TX / Z = 2
NO_NOISE = dataclasses.replace(LossConfig(), identity_noise_std=0.0)
MIN_DEPTH, MAX_DEPTH = 0.1, 100.0  # the depth network's range (paper defaults)


def _to_depth(disp):
    return geometry.disp_to_depth(disp, MIN_DEPTH, MAX_DEPTH)


_monodepth2_loss = functools.partial(losses.monodepth2_loss, disp_to_depth=_to_depth)


def _disp_for_depth(depth, shape, cfg=NO_NOISE):
    """Inverse of disp_to_depth: the sigmoid output that gives ``depth``."""
    inv = 1.0 / depth
    value = (inv - 1.0 / MAX_DEPTH) / (1.0 / MIN_DEPTH - 1.0 / MAX_DEPTH)
    return np.full(shape, value)


def _pyramid(image, levels):
    """Box-filter pyramid of a [B, H, W, C] (or [B, S, H, W, C]) array."""
    out = [image]
    for _ in range(levels - 1):
        x = out[-1]
        x = 0.25 * (x[..., ::2, ::2, :] + x[..., 1::2, ::2, :] + x[..., ::2, 1::2, :] + x[..., 1::2, 1::2, :])
        out.append(x)
    return out


def _k(batch=1):
    return geometry.intrinsics_matrix(FX, FX, (W - 1) / 2, (H - 1) / 2, batch=batch, dtype=tf.float64)


def _shift_pose(tx, rotation=(0.0, 0.0, 0.0)):
    return geometry.pose_to_matrix(tf.constant([rotation], tf.float64), tf.constant([[tx, 0.0, 0.0]], tf.float64))


def _scene():
    """A textured fronto-parallel plane at depth Z: target, source at +TX (A) and at -TX (B)."""
    rng = np.random.default_rng(0)
    tex = rng.uniform(size=[1, H, W + 4, 3])
    tex = 0.5 * (tex + np.roll(tex, 1, axis=2))  # mildly smooth texture
    target = tex[:, :, 2 : W + 2]
    source_a = tex[:, :, 0:W]  # source_a[u + 2] == target[u]
    source_b = tex[:, :, 4 : W + 4]  # source_b[u - 2] == target[u]
    return target, source_a, source_b


def _loss(disp_value_depth, target, sources, poses, cfg=NO_NOISE, scales=2, noise_seed=None):
    disps = [_disp_for_depth(disp_value_depth, [1, H >> s, W >> s, 1], cfg) for s in range(scales)]
    srcs = np.stack(sources, axis=1)
    return _monodepth2_loss(
        disps, _pyramid(target, scales), _pyramid(srcs, scales), tf.stack(poses, axis=1), _k(), cfg, noise_seed
    )


class ReferenceTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("paper_default", {}),
        ("v1_multiscale", {"full_res_multiscale": False}),
        ("avg_no_automask", {"min_reprojection": False, "automask": False}),
        ("avg_automask_no_ssim", {"min_reprojection": False, "use_ssim": False}),
        ("min_no_automask_weighted", {"automask": False, "smoothness_weight": 0.5, "ssim_weight": 0.6}),
    )
    def test_matches_numpy_reference(self, options):
        rng = np.random.default_rng(1)
        b, s_count, scales, h, w = 1, 2, 3, 8, 16
        target = [rng.uniform(size=[b, h >> s, w >> s, 3]) for s in range(scales)]
        sources = [rng.uniform(size=[b, s_count, h >> s, w >> s, 3]) for s in range(scales)]
        disps = [rng.uniform(0.01, 0.3, size=[b, h >> s, w >> s, 1]) for s in range(scales)]
        poses = np.stack(
            [[reference_np.pose_matrix(rng.normal(scale=0.05, size=3), rng.normal(scale=0.3, size=3)) for _ in range(s_count)]]
        )
        k = geometry.intrinsics_matrix(8.0, 8.0, 7.5, 3.5, batch=b, dtype=tf.float64).numpy()
        cfg = dataclasses.replace(NO_NOISE, **options)
        got = _monodepth2_loss(disps, target, sources, poses, k, cfg)
        want, want_min = reference_np.monodepth2_loss(disps, target, sources, poses, k, **options)
        # tf.image.resize computes in float32, hence the looser tolerance for the upsampled scales.
        self.assertAllClose(got.total, want, rtol=1e-6, atol=1e-7)
        for s in range(scales):
            self.assertAllClose(got.min_error[s], want_min[s], rtol=1e-5, atol=1e-6)
        full = options.get("full_res_multiscale", True)
        self.assertEqual(got.warped[2].shape, [b, s_count, h if full else h // 4, w if full else w // 4, 3])
        self.assertEqual(set(got.scalars()), {"total"} | {f"{n}/s{s}" for n in ("reprojection", "smoothness") for s in range(3)})

    def test_gradient_matches_finite_differences_v1(self):
        rng = np.random.default_rng(2)
        target = [rng.uniform(size=[1, 4, 6, 3])]
        sources = [rng.uniform(size=[1, 1, 4, 6, 3])]
        poses = _shift_pose(0.3)[:, None]
        k = geometry.intrinsics_matrix(4.0, 4.0, 2.5, 1.5, batch=1, dtype=tf.float64)
        cfg = dataclasses.replace(NO_NOISE, full_res_multiscale=False, automask=False, smoothness_weight=0.1)

        def f(d):
            return _monodepth2_loss([d], target, sources, poses, k, cfg).total

        theo, num = tf.test.compute_gradient(f, [tf.constant(rng.uniform(0.05, 0.3, size=[1, 4, 6, 1]))], delta=1e-6)
        self.assertAllClose(theo[0], num[0], atol=1e-5)


class SceneTest(tf.test.TestCase):
    def test_true_depth_and_pose_beat_perturbed_ones(self):
        target, source_a, source_b = _scene()
        poses = [_shift_pose(TX), _shift_pose(-TX)]
        true = float(_loss(Z, target, [source_a, source_b], poses).total)
        for depth, pose_a in [
            (Z * 1.5, poses[0]),
            (Z / 1.5, poses[0]),
            (Z, _shift_pose(TX * 1.5)),
            (Z, _shift_pose(TX, rotation=(0.0, 0.05, 0.0))),
        ]:
            perturbed = float(_loss(depth, target, [source_a, source_b], [pose_a, poses[1]]).total)
            self.assertLess(true, perturbed - 1e-3)

    def test_static_pair_is_masked_out_entirely(self):
        target, _, _ = _scene()
        cfg = dataclasses.replace(LossConfig(), smoothness_weight=0.0)  # with tie-break noise
        disps = [tf.constant(_disp_for_depth(Z, [1, H >> s, W >> s, 1])) for s in range(2)]
        with tf.GradientTape() as tape:
            tape.watch(disps)
            out = _monodepth2_loss(
                disps, _pyramid(target, 2), _pyramid(target[:, None], 2), _shift_pose(TX)[:, None], _k(), cfg, tf.constant([3, 4])
            )
        for s in range(2):
            self.assertAllEqual(out.automask[s], tf.zeros([1, H, W, 1], tf.float64))
        for grad in tape.gradient(out.total, disps):
            self.assertAllEqual(grad, tf.zeros_like(grad))
        # The identity errors are zero up to the 1e-5 noise, which differs per scale.
        self.assertAllClose(out.min_error[0], tf.zeros([1, H, W, 1]), atol=1e-4)
        self.assertNotAllClose(out.min_error[0], out.min_error[1], atol=1e-9)
        # Control: without auto-masking the same pair does produce a gradient.
        with tf.GradientTape() as tape:
            tape.watch(disps)
            unmasked = _monodepth2_loss(
                disps, _pyramid(target, 2), _pyramid(target[:, None], 2), _shift_pose(TX)[:, None], _k(),
                dataclasses.replace(cfg, automask=False),
            )
        self.assertGreater(float(tf.reduce_max(tf.abs(tape.gradient(unmasked.total, disps)[0]))), 0.0)

    def test_occlusion_is_won_by_unoccluded_source_under_min_not_average(self):
        target, source_a, source_b = _scene()
        occluded_a = source_a.copy()
        occluded_a[:, :, 10:14] = 0.0  # seen by target columns 8..11 through source A
        poses = [_shift_pose(TX), _shift_pose(-TX)]
        cfg = dataclasses.replace(NO_NOISE, automask=False)
        region = (slice(None), slice(None), slice(8, 12))
        with_min = _loss(Z, target, [occluded_a, source_b], poses, cfg, scales=1).min_error[0].numpy()
        with_avg = _loss(Z, target, [occluded_a, source_b], poses, dataclasses.replace(cfg, min_reprojection=False), scales=1)
        self.assertLess(float(np.max(with_min[region])), 1e-4)
        self.assertGreater(float(np.min(with_avg.min_error[0].numpy()[region])), 0.05)

    def test_works_in_tf_function_with_unknown_sizes(self):
        target, source_a, _ = _scene()
        spec_img = tf.TensorSpec([None, None, None, 3], tf.float64)
        spec_src = tf.TensorSpec([None, None, None, None, 3], tf.float64)

        @tf.function(input_signature=[
            tf.TensorSpec([None, None, None, 1], tf.float64), tf.TensorSpec([None, None, None, 1], tf.float64),
            spec_img, spec_img, spec_src, tf.TensorSpec([None, None, 4, 4], tf.float64),
            tf.TensorSpec([None, 3, 3], tf.float64), tf.TensorSpec([2], tf.int32),
        ])
        def fn(d0, d1, t0, t1, s0, poses, k, seed):
            return _monodepth2_loss([d0, d1], [t0, t1], [s0], poses, k, LossConfig(), seed).total

        disps = [_disp_for_depth(Z, [1, H >> s, W >> s, 1]) for s in range(2)]
        targets = _pyramid(target, 2)
        poses = _shift_pose(TX)[:, None]
        seed = tf.constant([5, 6])
        eager = _monodepth2_loss(disps, targets, [source_a[:, None]], poses, _k(), LossConfig(), seed).total
        self.assertAllClose(fn(*disps, *targets, source_a[:, None], poses, _k(), seed), eager)


class BadInputTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.disps = [tf.zeros([1, 8, 8, 1]), tf.zeros([1, 4, 4, 1])]
        self.target = [tf.zeros([1, 8, 8, 3]), tf.zeros([1, 4, 4, 3])]
        self.sources = [tf.zeros([1, 2, 8, 8, 3])]
        self.poses = tf.eye(4, batch_shape=[1, 2])
        self.k = tf.eye(3, batch_shape=[1])

    def _call(self, **kw):
        args = dict(disparities=self.disps, target=self.target, sources=self.sources,
                    source_from_target=self.poses, intrinsics=self.k, config=LossConfig())
        args.update(kw)
        return _monodepth2_loss(**args)

    def test_errors_name_the_argument(self):
        with self.assertRaisesRegex(ValueError, "target must hold 2 scales"):
            self._call(target=self.target[:1])
        with self.assertRaisesRegex(ValueError, r"source_from_target \[B, S, 4, 4\] has S=3"):
            self._call(source_from_target=tf.eye(4, batch_shape=[1, 3]))
        with self.assertRaisesRegex(ValueError, r"intrinsics.*\[B, 3, 3\]"):
            self._call(intrinsics=tf.eye(4, batch_shape=[1]))
        with self.assertRaisesRegex(ValueError, r"disparities\[1\] and target\[1\]"):
            self._call(disparities=[self.disps[0], tf.zeros([1, 8, 8, 1])])
        with self.assertRaisesRegex(ValueError, "sources must hold 2 scale"):
            self._call(config=LossConfig(full_res_multiscale=False))
        with self.assertRaisesRegex(ValueError, r"sources\[0\].*\[B, S, H/2\^s, W/2\^s, 3\]"):
            self._call(sources=[tf.zeros([1, 8, 8, 3])])


def _random_inputs(dtype, scales=2, b=1, s_count=2, h=16, w=32):
    rng = np.random.default_rng(9)
    target = [rng.uniform(size=[b, h >> s, w >> s, 3]).astype(dtype) for s in range(scales)]
    sources = [rng.uniform(size=[b, s_count, h >> s, w >> s, 3]).astype(dtype) for s in range(scales)]
    disps = [tf.constant(rng.uniform(0.01, 0.3, size=[b, h >> s, w >> s, 1]).astype(dtype)) for s in range(scales)]
    poses = np.stack(
        [[reference_np.pose_matrix(rng.normal(scale=0.05, size=3), rng.normal(scale=0.3, size=3)) for _ in range(s_count)]]
    ).astype(dtype)
    k = geometry.intrinsics_matrix(16.0, 16.0, (w - 1) / 2, (h - 1) / 2, batch=b, dtype=dtype)
    return disps, target, sources, poses, k


class PrecisionTest(tf.test.TestCase):
    def test_float32_matches_float64(self):
        seed = tf.constant([7, 8])
        out32 = _monodepth2_loss(*_random_inputs(np.float32), LossConfig(), seed)
        out64 = _monodepth2_loss(*_random_inputs(np.float64), LossConfig(), seed)
        self.assertEqual(out32.total.dtype, tf.float32)
        self.assertAllClose(out32.total, out64.total, rtol=1e-5, atol=1e-6)

    @pytest.mark.slow
    def test_xla_loss_and_gradient_match_graph_mode(self):
        disps, target, sources, poses, k = _random_inputs(np.float32)

        def loss_and_grad(d):
            with tf.GradientTape() as tape:
                tape.watch(d)
                total = _monodepth2_loss(d, target, sources, poses, k, LossConfig(), tf.constant([1, 2])).total
            return total, tape.gradient(total, d)

        want = tf.function(loss_and_grad)(disps)
        got = tf.function(loss_and_grad, jit_compile=True)(disps)
        self.assertAllClose(got[0], want[0], rtol=1e-5, atol=1e-6)
        for a, b in zip(got[1], want[1]):  # a near-tie may flip the per-pixel winner: compare in bulk
            self.assertLess(float(tf.reduce_mean(tf.abs(a - b))), 1e-6)
