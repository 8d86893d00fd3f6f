"""Depth metrics and the per-image scoring protocol of the KITTI Eigen evaluation (paper Sec. 4.1).

The protocol, per image: resize the network-resolution ``scaled_disp`` bilinearly to the GT size
(cv2 ``INTER_LINEAR`` convention: half-pixel centres, no antialiasing), invert to depth, mask (Garg
crop and 1e-3..80 m for ``eigen``, ``gt > 0`` otherwise), multiply by ``pred_depth_scale_factor``,
scale by the ratio of medians (per image, or one global ratio), clamp to [1e-3, 80] m, and compute
`compute_errors`. The per-image metrics are then averaged over images.

``scaling="camera_height"`` replaces the ratio of medians by a scale that uses no ground truth: the
ground plane fitted to the network-resolution prediction with that image's intrinsics
(`md2tf.geometry.ground`) and the camera's known height above it (Xue et al., IROS 2020). Images
without enough visible ground take the median scale of the others.

Scoring runs in NumPy float64 (ground-truth maps differ in size); only the resize uses TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from md2tf.config import KITTI_CAMERA_HEIGHT_M, check_depth_range
from md2tf.evaluation import eigen
from md2tf.geometry import ground

#: Metric names in the paper's column order (Monodepth2 Table 1).
METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
#: Column headers for printing, same order as `METRIC_NAMES`.
METRIC_HEADERS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "d<1.25", "d<1.25^2", "d<1.25^3")

SCALING_MODES = ("median", "global", "none", "camera_height")
#: Largest relative difference between the aspect ratio (width / height) of precomputed predictions
#: and of their GT maps that scoring resizes over. The paper's 1024x320 model on KITTI's 1242x375
#: frames differs by 3.5 %; maps with H and W swapped differ by a factor (W / H)^2 (11 on KITTI).
ASPECT_TOLERANCE = 0.10


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The seven standard depth metrics between matched valid depths.

    Args:
      gt: ``[N]`` (or any shape) ground-truth depths in metres, all > 0.
      pred: predicted depths in metres, same shape as ``gt``, all > 0.

    Returns:
      ``{name: value}`` for `METRIC_NAMES`: abs_rel = mean(|gt-pred|/gt), sq_rel = mean((gt-pred)^2/gt),
      rmse (m), rmse_log (natural log), a1..a3 = fraction with max(gt/pred, pred/gt) < 1.25^k.

    Raises:
      ValueError: if the shapes differ or there are no values.
    """
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"compute_errors: gt shape {gt.shape} != pred shape {pred.shape}")
    if gt.size == 0:
        raise ValueError("compute_errors: no valid ground-truth pixels to score")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def resize_disparity(disp: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of one disparity map, matching ``cv2.resize(..., INTER_LINEAR)``.

    Half-pixel centres (``src = (dst + 0.5) * in/out - 0.5``), border clamp, no antialiasing; this is
    ``tf.image.resize(method="bilinear", antialias=False)``.

    Args:
      disp: ``[h, w]`` or ``[h, w, 1]`` disparity.
      height: output rows (the GT height).
      width: output columns (the GT width).

    Returns:
      ``[height, width]`` float32.

    Raises:
      ValueError: for a map that is not ``[h, w]`` or ``[h, w, 1]``.
    """
    disp = np.asarray(disp)
    if disp.ndim == 3 and disp.shape[-1] == 1:
        disp = disp[..., 0]
    if disp.ndim != 2:
        raise ValueError(f"disparity must be [h, w] or [h, w, 1], got shape {disp.shape}")
    if disp.shape == (height, width):
        return disp.astype(np.float32)
    out = tf.image.resize(
        tf.convert_to_tensor(disp[None, :, :, None], tf.float32), (height, width), method="bilinear",
        antialias=False,
    )
    return out.numpy()[0, :, :, 0]


@dataclass(frozen=True)
class ScoringOptions:
    """How predictions are scaled and masked (paper Sec. 4.1: Garg crop, 80 m cap, median scaling).

    Attributes:
      split: evaluation split; ``eigen`` uses the Garg crop and the depth range, others ``gt > 0``.
      scaling: ``median`` (per-image ratio of medians, mono), ``global`` (one ratio for the whole set:
        the median of the per-image ratios, supplementary D.2), ``none`` (stereo / metric) or
        ``camera_height`` (per image, from the fitted ground plane and ``camera_height``; no GT).
      pred_depth_scale_factor: multiplies the predicted depth before any scaling
        (`eigen.STEREO_SCALE_FACTOR` for stereo-trained models).
      min_depth, max_depth: GT range (cropped splits) and clamp of the prediction, metres.
      camera_height: ``camera_height`` scaling: the camera centre's height above the road, metres.
    """

    split: str = "eigen"
    scaling: str = "median"
    pred_depth_scale_factor: float = 1.0
    min_depth: float = eigen.MIN_DEPTH
    max_depth: float = eigen.MAX_DEPTH
    camera_height: float = KITTI_CAMERA_HEIGHT_M

    def __post_init__(self) -> None:
        if self.scaling not in SCALING_MODES:
            raise ValueError(f"scaling must be one of {SCALING_MODES}, got {self.scaling!r}")
        if not self.pred_depth_scale_factor > 0:
            raise ValueError(f"--pred_depth_scale_factor must be > 0, got {self.pred_depth_scale_factor}")
        if not (np.isfinite(self.camera_height) and self.camera_height > 0):
            raise ValueError(f"--camera_height must be a finite number > 0 metres, got {self.camera_height}")
        check_depth_range(self.min_depth, self.max_depth)

    @classmethod
    def stereo(cls, split: str = "eigen") -> ScoringOptions:
        """``--eval_stereo``: no median scaling, depth x `eigen.STEREO_SCALE_FACTOR`."""
        return cls(split=split, scaling="none", pred_depth_scale_factor=eigen.STEREO_SCALE_FACTOR)


@dataclass
class DepthScores:
    """Result of scoring a set of predictions.

    Attributes:
      metrics: mean over scored images of each metric in `METRIC_NAMES`.
      per_image: ``[N_scored, 7]`` per-image metrics (rows in input order, skipped images omitted).
      num_images: images given.
      num_scored: images that entered the averages.
      nonfinite_images: indices of images whose disparity had NaN/inf values (not scored).
      nonfinite_pixels: total NaN/inf disparity values at network resolution.
      empty_images: indices of images without any valid GT pixel (not scored).
      ratio_median, ratio_std: median of the per-image median-scaling ratios and the std of
        ``ratios / ratio_median`` (sigma_scale); NaN when no scaling ratio is computed.
      global_scale: the single scale used with ``scaling="global"`` (else NaN).
      height_scale_median: ``scaling="camera_height"``: median of the per-image camera-height scales
        of the images with enough ground; the scale the others get (else NaN).
      height_scale_error: ``scaling="camera_height"``: median over those images of
        ``|scale / ratio - 1|``, the camera-height scale's relative error against the GT ratio of
        medians (what median scaling would use); NaN otherwise.
      no_ground_images: ``scaling="camera_height"``: indices of the scored images whose ground fit
        was not reliable (`ground.GroundFit.reliable`); they were scaled by ``height_scale_median``.
    """

    metrics: dict[str, float]
    per_image: np.ndarray
    num_images: int
    num_scored: int
    nonfinite_images: list[int] = field(default_factory=list)
    nonfinite_pixels: int = 0
    empty_images: list[int] = field(default_factory=list)
    ratio_median: float = float("nan")
    ratio_std: float = float("nan")
    global_scale: float = float("nan")
    height_scale_median: float = float("nan")
    height_scale_error: float = float("nan")
    no_ground_images: list[int] = field(default_factory=list)

    @property
    def num_failed(self) -> int:
        """Images the model failed on (non-finite predictions): a failure, not a smaller sample."""
        return len(self.nonfinite_images)

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-image rows), with ``num_failed``."""
        d = dataclasses.asdict(self)
        d.pop("per_image")
        d["num_failed"] = self.num_failed
        return d


def _median_ratio(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(np.median(gt) / np.median(pred))


def check_aspect_ratio(index: int, pred_shape: Sequence[int], gt_shape: Sequence[int]) -> None:
    """Refuses a prediction whose width / height is not the GT map's, within `ASPECT_TOLERANCE`.

    Scoring resizes every prediction to its GT map; across a different aspect ratio that resize
    silently distorts precomputed maps (e.g. ``[N, W, H]`` arrays with height and width swapped).
    A model's own output needs no check: the test image was resized to the model's input size, and
    resizing back undoes that.

    Args:
      index: the image's position in the split (for the message).
      pred_shape: ``(h, w)`` of the prediction.
      gt_shape: ``(H, W)`` of the ground-truth map.

    Raises:
      ValueError: naming both shapes.
    """
    (h, w), (gt_h, gt_w) = pred_shape[:2], gt_shape[:2]
    if min(h, w, gt_h, gt_w) <= 0:
        raise ValueError(f"prediction {index} is {h}x{w} and its ground truth {gt_h}x{gt_w}: empty map")
    if abs(np.log((w / h) / (gt_w / gt_h))) > np.log1p(ASPECT_TOLERANCE):
        raise ValueError(f"prediction {index} has shape {h}x{w} (height x width) but its ground truth "
                         f"{gt_h}x{gt_w}: aspect ratios {w / h:.3g} and {gt_w / gt_h:.3g} differ by more "
                         f"than {ASPECT_TOLERANCE:.0%} (height and width swapped?)")


def score_predictions(
    gt_depths: Sequence[np.ndarray],
    disparities: Iterable[np.ndarray],
    options: ScoringOptions = ScoringOptions(),
    progress=None,
    intrinsics: Sequence[np.ndarray] | None = None,
) -> DepthScores:
    """Scores network-resolution disparities against ground-truth depth maps (paper Sec. 4.1).

    Args:
      gt_depths: N ground-truth maps ``[H_i, W_i]`` in metres (0 = no measurement).
      disparities: N ``scaled_disp`` maps ``[h, w]`` (or ``[h, w, 1]``) at network resolution, in the
        same order; depth = 1 / disparity (x ``pred_depth_scale_factor``).
      options: scaling and masking.
      progress: optional callable ``progress(i)`` after each image (e.g. a progress bar update).
      intrinsics: ``scaling="camera_height"`` only: N normalised ``[3, 3]`` K of the test images (fx,
        cx as fractions of the width, fy, cy of the height); the ground is fitted to each prediction
        at network resolution with K in its pixels (`ground.intrinsics_in_pixels`).

    Returns:
      `DepthScores`. Images with NaN/inf disparities and images without valid GT are not scored but
      listed (``nonfinite_images``, ``empty_images``; ``num_failed`` counts the non-finite ones, which
      callers must report as failures, never hide in the mean).

    Raises:
      ValueError: if the number of predictions differs from the number of GT maps, a prediction is
        degenerate (no positive disparity, e.g. all zeros: depth is infinite everywhere), no image
        can be scored, or (``camera_height``) the intrinsics are missing or no image shows enough
        ground.
    """
    num_gt = len(gt_depths)
    by_height = options.scaling == "camera_height"
    if by_height and (intrinsics is None or len(intrinsics) != num_gt):
        got = "none" if intrinsics is None else len(intrinsics)
        raise ValueError(f"--scaling=camera_height needs the intrinsics of each of the {num_gt} test "
                         f"images, got {got}")
    scored, ratios = [], []
    buffered = []  # (index, gt, pred) scaled at the end: global scale, or no ground in view
    height_scales, height_errors, no_ground = [], [], []
    rows = {}  # image index -> metrics, so that per_image keeps the input order
    nonfinite_images, empty_images, nonfinite_pixels = [], [], 0
    count = 0

    def finish(index: int, gt: np.ndarray, pred: np.ndarray, scale: float) -> None:
        pred = np.clip(pred * scale, options.min_depth, options.max_depth)
        errors = compute_errors(gt, pred)
        rows[index] = [errors[name] for name in METRIC_NAMES]

    for i, disp in enumerate(disparities):
        if i >= num_gt:
            raise ValueError(f"more predictions than ground-truth maps ({num_gt}); check the split / GT file")
        count += 1
        disp = np.asarray(disp, np.float32)
        bad = int(np.size(disp) - np.count_nonzero(np.isfinite(disp)))
        if progress is not None:
            progress(i)
        if bad:
            nonfinite_pixels += bad
            nonfinite_images.append(i)
            continue
        if not np.any(disp > 0):
            raise ValueError(f"prediction {i} is degenerate: no positive disparity (min {np.min(disp):g}, "
                             f"max {np.max(disp):g}), so its depth is infinite everywhere")
        gt = np.asarray(gt_depths[i], np.float32)
        height_scale = _camera_height_scale(disp, intrinsics[i], options) if by_height else None
        disp = resize_disparity(disp, *gt.shape)
        with np.errstate(divide="ignore"):
            pred_depth = 1.0 / disp.astype(np.float64)
        mask = eigen.evaluation_mask(gt, options.split, options.min_depth, options.max_depth)
        if not mask.any():
            empty_images.append(i)
            continue
        gt_valid = gt[mask].astype(np.float64)
        pred_valid = pred_depth[mask] * options.pred_depth_scale_factor
        scored.append(i)
        if options.scaling == "none":
            finish(i, gt_valid, pred_valid, 1.0)
            continue
        ratio = _median_ratio(gt_valid, pred_valid)
        if not np.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"prediction {i} is degenerate: median scaling ratio {ratio:g} (at least "
                             "half of its valid pixels have zero or negative disparity)")
        ratios.append(ratio)
        if options.scaling == "median":
            finish(i, gt_valid, pred_valid, ratio)
        elif by_height and np.isfinite(height_scale):
            height_scales.append(height_scale)
            height_errors.append(abs(height_scale / ratio - 1.0))
            finish(i, gt_valid, pred_valid, height_scale)
        else:  # global, or too little ground for a camera-height scale
            no_ground += [i] if by_height else []
            buffered.append((i, gt_valid, pred_valid.astype(np.float32)))
    if count != num_gt:
        raise ValueError(
            f"got {count} predictions but {num_gt} ground-truth maps: the prediction count must match the split"
        )
    if not scored:
        raise ValueError(
            f"no image could be scored ({len(nonfinite_images)} with NaN/inf predictions, "
            f"{len(empty_images)} without valid ground truth)"
        )

    ratio_median = ratio_std = global_scale = height_scale_median = height_scale_error = float("nan")
    if ratios:
        ratios = np.asarray(ratios, np.float64)
        ratio_median = float(np.median(ratios))
        ratio_std = float(np.std(ratios / ratio_median))
    if options.scaling == "global":
        global_scale = ratio_median
    if by_height:
        if not height_scales:
            raise ValueError(f"--scaling=camera_height: none of the {len(scored)} scored images shows "
                             "enough ground for a plane fit (use --scaling=median)")
        height_scale_median = float(np.median(height_scales))
        height_scale_error = float(np.median(height_errors))
    fallback = global_scale if options.scaling == "global" else height_scale_median
    for index, gt_valid, pred_valid in buffered:
        finish(index, gt_valid, pred_valid.astype(np.float64), fallback)
    per_image = np.asarray([rows[i] for i in sorted(rows)], np.float64)
    means = per_image.mean(axis=0)
    return DepthScores(
        metrics={name: float(v) for name, v in zip(METRIC_NAMES, means)},
        per_image=per_image,
        num_images=num_gt,
        num_scored=len(scored),
        nonfinite_images=nonfinite_images,
        nonfinite_pixels=nonfinite_pixels,
        empty_images=empty_images,
        ratio_median=ratio_median,
        ratio_std=ratio_std,
        global_scale=global_scale,
        height_scale_median=height_scale_median,
        height_scale_error=height_scale_error,
        no_ground_images=no_ground,
    )


def _camera_height_scale(disp: np.ndarray, K_normalized: np.ndarray, options: ScoringOptions) -> float:
    """The camera-height scale of one network-resolution ``[h, w]`` disparity (NaN: too little
    ground in view); applies to its depth ``pred_depth_scale_factor / disp``."""
    if disp.ndim == 3:
        disp = disp[..., 0]
    with np.errstate(divide="ignore"):
        depth = options.pred_depth_scale_factor / disp.astype(np.float64)
    K = ground.intrinsics_in_pixels(K_normalized, *disp.shape)
    scale, _ = ground.camera_height_scale(depth, K, options.camera_height)
    return scale
