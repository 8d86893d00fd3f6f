"""Metrics, masks, resize and scaling against independent NumPy references and hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.evaluation import eigen, metrics


def reference_errors(gt, pred):
    """Loop-free but independent formulation, written from the definitions (Eigen et al. 2014)."""
    gt = np.asarray(gt, np.float64).ravel()
    pred = np.asarray(pred, np.float64).ravel()
    n = gt.size
    ratio = np.where(gt > pred, gt / pred, pred / gt)
    return {
        "abs_rel": sum(abs(g - p) / g for g, p in zip(gt, pred)) / n,
        "sq_rel": sum((g - p) ** 2 / g for g, p in zip(gt, pred)) / n,
        "rmse": np.sqrt(sum((g - p) ** 2 for g, p in zip(gt, pred)) / n),
        "rmse_log": np.sqrt(sum((np.log(g) - np.log(p)) ** 2 for g, p in zip(gt, pred)) / n),
        "a1": np.count_nonzero(ratio < 1.25) / n,
        "a2": np.count_nonzero(ratio < 1.5625) / n,
        "a3": np.count_nonzero(ratio < 1.953125) / n,
    }


def test_metric_order_is_the_papers():
    assert metrics.METRIC_NAMES == ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def test_perfect_prediction():
    gt = np.linspace(1.0, 70.0, 50)
    errors = metrics.compute_errors(gt, gt.copy())
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert errors[name] == 0.0
    assert errors["a1"] == errors["a2"] == errors["a3"] == 1.0


@pytest.mark.parametrize("factor", [1.1, 1.3, 0.7, 2.0])
def test_constant_factor_closed_form(factor):
    gt = np.array([2.0, 5.0, 10.0, 40.0])
    errors = metrics.compute_errors(gt, factor * gt)
    assert errors["abs_rel"] == pytest.approx(abs(1 - factor))
    assert errors["sq_rel"] == pytest.approx((1 - factor) ** 2 * gt.mean())
    assert errors["rmse"] == pytest.approx(abs(1 - factor) * np.sqrt(np.mean(gt**2)))
    assert errors["rmse_log"] == pytest.approx(abs(np.log(factor)))
    t = max(factor, 1 / factor)
    assert errors["a1"] == float(t < 1.25)
    assert errors["a2"] == float(t < 1.25**2)
    assert errors["a3"] == float(t < 1.25**3)


def test_matches_reference_on_random_values(rng):
    gt = rng.uniform(1.0, 80.0, 300)
    pred = gt * rng.lognormal(0.0, 0.3, 300)
    got = metrics.compute_errors(gt, pred)
    want = reference_errors(gt, pred)
    for name in metrics.METRIC_NAMES:
        assert got[name] == pytest.approx(want[name], rel=1e-12)


def test_compute_errors_rejects_mismatch():
    with pytest.raises(ValueError, match="shape"):
        metrics.compute_errors(np.ones(3), np.ones(4))


@pytest.mark.parametrize(
    "shape, box",
    [((375, 1242), (153, 371, 44, 1197)), ((370, 1224), (151, 366, 43, 1180)),
     ((374, 1238), (152, 370, 44, 1193)), ((376, 1241), (153, 372, 44, 1196))],
)
def test_garg_crop(shape, box):
    assert eigen.garg_crop(*shape) == box


def test_eigen_mask_crop_and_range():
    gt = np.full((375, 1242), 10.0)
    gt[200, 100] = 0.0005  # below 1e-3
    gt[200, 101] = 80.0  # not < 80
    gt[200, 102] = 79.9
    mask = eigen.evaluation_mask(gt, "eigen")
    assert mask.sum() == (371 - 153) * (1197 - 44) - 2
    assert not mask[152, 500] and mask[153, 500] and mask[370, 500] and not mask[371, 500]
    assert not mask[200, 43] and mask[200, 44] and mask[200, 1196] and not mask[200, 1197]
    assert mask[200, 102] and not mask[200, 101] and not mask[200, 100]


def test_other_split_mask_is_gt_positive():
    gt = np.zeros((375, 1242))
    gt[0, 0] = 200.0
    gt[374, 1241] = 0.0001
    mask = eigen.evaluation_mask(gt, "eigen_benchmark")
    assert mask.sum() == 2 and mask[0, 0] and mask[374, 1241]


def test_mask_rejects_bad_rank():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        eigen.evaluation_mask(np.ones((2, 3, 1)), "eigen")


def cv2_linear_reference(src, out_h, out_w):
    """cv2.INTER_LINEAR written from its definition: half-pixel centres, clamped at the border."""
    in_h, in_w = src.shape
    out = np.zeros((out_h, out_w))
    for y in range(out_h):
        fy = max((y + 0.5) * in_h / out_h - 0.5, 0.0)
        y0 = min(int(np.floor(fy)), in_h - 1)
        y1 = min(y0 + 1, in_h - 1)
        wy = fy - y0 if y0 < in_h - 1 else 0.0
        for x in range(out_w):
            fx = max((x + 0.5) * in_w / out_w - 0.5, 0.0)
            x0 = min(int(np.floor(fx)), in_w - 1)
            x1 = min(x0 + 1, in_w - 1)
            wx = fx - x0 if x0 < in_w - 1 else 0.0
            top = (1 - wx) * src[y0, x0] + wx * src[y0, x1]
            bottom = (1 - wx) * src[y1, x0] + wx * src[y1, x1]
            out[y, x] = (1 - wy) * top + wy * bottom
    return out


@pytest.mark.parametrize("in_shape, out_shape", [((4, 6), (9, 15)), ((6, 8), (6, 20)), ((5, 7), (15, 21))])
def test_resize_matches_cv2_linear_upsampling(rng, in_shape, out_shape):
    src = rng.uniform(0.01, 1.0, in_shape).astype(np.float32)
    got = metrics.resize_disparity(src, *out_shape)
    np.testing.assert_allclose(got, cv2_linear_reference(src.astype(np.float64), *out_shape), rtol=1e-5, atol=1e-6)


def test_resize_rejects_multichannel():
    with pytest.raises(ValueError, match=r"\[h, w\]"):
        metrics.resize_disparity(np.ones((4, 4, 3)), 8, 8)


def _gt_and_disp(rng, n=3, shape=(12, 20)):
    gts, disps = [], []
    for _ in range(n):
        gt = rng.uniform(2.0, 60.0, shape).astype(np.float32)
        gt[rng.uniform(size=shape) < 0.3] = 0.0
        gts.append(gt)
        disps.append(np.where(gt > 0, 1.0 / np.maximum(gt, 1e-3), 0.5).astype(np.float32))
    return gts, disps


def test_median_scaling_removes_per_image_scale(rng):
    gts, disps = _gt_and_disp(rng)
    factors = [3.0, 0.2, 7.0]
    scaled = [d * f for d, f in zip(disps, factors)]  # depth / f
    scores = metrics.score_predictions(gts, scaled, metrics.ScoringOptions(split="synthetic"))
    assert scores.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert scores.metrics["a1"] == 1.0
    assert scores.num_scored == 3
    ratios = np.array(factors)
    assert scores.ratio_median == pytest.approx(np.median(ratios), rel=1e-5)
    assert scores.ratio_std == pytest.approx(np.std(ratios / np.median(ratios)), rel=1e-5)


def test_global_scaling_uses_one_median_ratio(rng):
    gts, disps = _gt_and_disp(rng)
    factors = [2.0, 2.5, 4.0]  # per-image ratios; global = 2.5
    scaled = [d * f for d, f in zip(disps, factors)]
    opts = metrics.ScoringOptions(split="synthetic", scaling="global")
    scores = metrics.score_predictions(gts, scaled, opts)
    assert scores.global_scale == pytest.approx(2.5, rel=1e-5)
    # image k predicts gt * 2.5 / f_k after global scaling
    expected = np.mean([abs(1 - 2.5 / f) for f in factors])
    assert scores.metrics["abs_rel"] == pytest.approx(expected, rel=1e-5)
    assert scores.per_image[1, 0] == pytest.approx(0.0, abs=1e-6)


def test_stereo_scaling_and_clamp():
    gt = np.full((4, 6), 5.4, np.float32)
    gt[0, 0] = 0.0
    disp = np.full((4, 6), 1.0, np.float32)  # depth 1 training unit -> 5.4 m
    scores = metrics.score_predictions([gt], [disp], metrics.ScoringOptions.stereo(split="synthetic"))
    assert scores.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(scores.ratio_median)
    # a tiny disparity -> huge depth is clamped to 80 m
    far = np.full((4, 6), 1e-6, np.float32)
    gt_far = np.full((4, 6), 40.0, np.float32)
    scores = metrics.score_predictions([gt_far], [far], metrics.ScoringOptions(split="synthetic", scaling="none"))
    assert scores.metrics["abs_rel"] == pytest.approx(1.0, rel=1e-6)  # |40 - 80| / 40


def test_pred_depth_scale_factor_before_median():
    gt = np.full((4, 6), 10.0, np.float32)
    disp = np.full((4, 6), 0.1, np.float32)  # 10 m
    opts = metrics.ScoringOptions(split="synthetic", scaling="median", pred_depth_scale_factor=2.0)
    scores = metrics.score_predictions([gt], [disp], opts)
    assert scores.ratio_median == pytest.approx(0.5)


def test_eigen_protocol_end_to_end_against_numpy(rng):
    """Full path at 375 x 1242 vs a NumPy re-implementation (crop, range, median, clamp)."""
    h, w = 375, 1242
    gt = np.zeros((h, w), np.float32)
    idx = rng.choice(h * w, 5000, replace=False)
    gt.flat[idx] = rng.uniform(0.5, 90.0, idx.size)
    disp = rng.uniform(0.02, 0.5, (h, w)).astype(np.float32)  # already at GT size: no resize
    scores = metrics.score_predictions([gt], [disp])
    mask = (gt > 1e-3) & (gt < 80)
    crop = np.zeros_like(mask)
    crop[153:371, 44:1197] = True
    mask &= crop
    g, p = gt[mask].astype(np.float64), 1.0 / disp[mask].astype(np.float64)
    p = np.clip(p * np.median(g) / np.median(p), 1e-3, 80)
    want = reference_errors(g, p)
    for name in metrics.METRIC_NAMES:
        assert scores.metrics[name] == pytest.approx(want[name], rel=1e-9)


def test_nonfinite_predictions_are_counted_not_averaged(rng):
    gts, disps = _gt_and_disp(rng)
    disps[1] = disps[1].copy()
    disps[1][0, :3] = np.nan
    disps[1][1, 0] = np.inf
    scores = metrics.score_predictions(gts, disps, metrics.ScoringOptions(split="synthetic"))
    assert scores.nonfinite_images == [1]
    assert scores.nonfinite_pixels == 4
    assert scores.num_scored == 2 and scores.per_image.shape == (2, 7)
    assert all(np.isfinite(v) for v in scores.metrics.values())


def test_count_mismatch_is_an_error(rng):
    gts, disps = _gt_and_disp(rng)
    with pytest.raises(ValueError, match="2 predictions but 3 ground-truth"):
        metrics.score_predictions(gts, disps[:2])
    with pytest.raises(ValueError, match="more predictions"):
        metrics.score_predictions(gts[:2], disps)


def test_bad_options():
    with pytest.raises(ValueError, match="scaling"):
        metrics.ScoringOptions(scaling="mean")
    with pytest.raises(ValueError, match="pred_depth_scale_factor"):
        metrics.ScoringOptions(pred_depth_scale_factor=0.0)


# --- camera-height scaling -------------------------------------------------------------------------

K_NORMALIZED = np.array([[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]])


def flat_ground_gt(height=48, width=160, camera_height=1.65):
    """Metres: a flat road ``camera_height`` below a level camera (``z = h fy / (v - cy)``) out to
    79 m, a box 6 m ahead on the right, no GT (0) above."""
    fy, cy = K_NORMALIZED[1, 1] * height, K_NORMALIZED[1, 2] * height
    v = np.arange(height, dtype=np.float64)[:, None] * np.ones((1, width))
    with np.errstate(divide="ignore"):
        gt = np.where(v > cy + 0.5, camera_height * fy / (v - cy), 0.0)
    gt[gt > 79.0] = 0.0
    box = gt[height // 3:, 3 * width // 4:]  # a view: hides what lies behind it
    box[(box == 0) | (box > 6.0)] = 6.0
    return gt.astype(np.float32)


def disparity_of(depth, far=200.0):
    return np.where(depth > 0, 1.0 / np.maximum(depth, 1e-3), 1.0 / far).astype(np.float32)


def test_camera_height_scaling_recovers_each_images_scale():
    """Predictions GT / f: the fitted ground gives scale f per image, without looking at the GT."""
    gts = [flat_ground_gt()] * 3
    factors = [3.0, 2.0, 5.0]
    disps = [disparity_of(g / f) for g, f in zip(gts, factors)]
    opts = metrics.ScoringOptions(split="synthetic", scaling="camera_height")
    scores = metrics.score_predictions(gts, disps, opts, intrinsics=[K_NORMALIZED] * 3)
    assert scores.metrics["abs_rel"] == pytest.approx(0.0, abs=1e-3)
    assert scores.metrics["a1"] == 1.0
    assert scores.height_scale_median == pytest.approx(3.0, rel=1e-3)
    assert scores.height_scale_error == pytest.approx(0.0, abs=1e-3)
    assert scores.ratio_median == pytest.approx(3.0, rel=1e-5)  # the GT ratios, for comparison
    assert scores.no_ground_images == []


def test_camera_height_scaling_at_network_resolution_and_other_heights():
    """The fit runs on the low-resolution prediction with K scaled to it; a 2 m camera too."""
    gt = flat_ground_gt(96, 320, camera_height=2.0)
    low = flat_ground_gt(48, 160, camera_height=2.0) / 4.0
    opts = metrics.ScoringOptions(split="synthetic", scaling="camera_height", camera_height=2.0)
    scores = metrics.score_predictions([gt], [disparity_of(low)], opts, intrinsics=[K_NORMALIZED])
    assert scores.height_scale_median == pytest.approx(4.0, rel=1e-3)
    assert scores.metrics["a1"] > 0.95  # the resize blurs the box's edges and the horizon


def test_images_without_ground_take_the_median_scale():
    gts = [flat_ground_gt()] * 3 + [np.full((48, 160), 5.0, np.float32)]  # the last: a wall
    factors = [3.0, 2.0, 5.0, 4.0]
    disps = [disparity_of(g / f) for g, f in zip(gts, factors)]
    opts = metrics.ScoringOptions(split="synthetic", scaling="camera_height")
    scores = metrics.score_predictions(gts, disps, opts, intrinsics=[K_NORMALIZED] * 4)
    assert scores.no_ground_images == [3] and scores.num_scored == 4
    assert scores.per_image[3, 0] == pytest.approx(abs(1 - 3.0 / 4.0), rel=1e-4)  # scaled by 3
    np.testing.assert_allclose(scores.per_image[:3, 0], 0.0, atol=1e-3)  # rows in input order
    with pytest.raises(ValueError, match="none of the 1 scored images shows enough ground"):
        metrics.score_predictions(gts[3:], disps[3:], opts, intrinsics=[K_NORMALIZED])


def test_camera_height_scaling_needs_intrinsics_and_a_height():
    gt = flat_ground_gt()
    opts = metrics.ScoringOptions(split="synthetic", scaling="camera_height")
    with pytest.raises(ValueError, match="--scaling=camera_height needs the intrinsics of each of the 1"):
        metrics.score_predictions([gt], [disparity_of(gt)], opts)
    with pytest.raises(ValueError, match="--camera_height must be a finite number > 0"):
        metrics.ScoringOptions(scaling="camera_height", camera_height=0.0)
