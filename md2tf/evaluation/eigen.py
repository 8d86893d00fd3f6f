"""Named constants and masks of the KITTI Eigen-split depth evaluation protocol.

Every number used by the evaluator lives here, with where it comes from, instead of inline magic
numbers (``153:371, 44:1197``, ``80``, ``5.4``) scattered through the code.

Sources:
  * Garg crop: R. Garg, V. Kumar BG, G. Carneiro, I. Reid, "Unsupervised CNN for Single View Depth
    Estimation: Geometry to the Rescue", ECCV 2016, as fractions of the image size; used by the
    Monodepth2 protocol (paper Sec. 4.1) and the reference ``evaluate_depth.py``.
  * Depth range 1e-3 .. 80 m: Eigen et al., NIPS 2014 cap of 80 m (Monodepth2 paper Sec. 4.1);
    ``MIN_DEPTH``/``MAX_DEPTH`` of the reference ``evaluate_depth.py``.
  * Stereo scale 5.4: the 0.54 m KITTI stereo baseline divided by the nominal training baseline of
    0.1 (paper Sec. 4.1: stereo-trained models are scaled by 5.4, not median-scaled).
"""

from __future__ import annotations

import numpy as np

#: Garg/Eigen crop as fractions of (H, H, W, W): rows [top, bottom), columns [left, right).
GARG_CROP_TOP = 0.40810811
GARG_CROP_BOTTOM = 0.99189189
GARG_CROP_LEFT = 0.03594771
GARG_CROP_RIGHT = 0.96405229

#: Valid ground-truth / clamp range of predicted depth in metres (paper Sec. 4.1, 80 m cap).
MIN_DEPTH = 1e-3
MAX_DEPTH = 80.0

#: Metres per training unit of a stereo-trained model: 0.54 m baseline / 0.1 nominal baseline.
STEREO_SCALE_FACTOR = 5.4

#: Splits evaluated with the Garg crop and the MIN_DEPTH..MAX_DEPTH range; all others use gt > 0.
CROPPED_SPLITS = ("eigen",)

#: Official KITTI raw image size of most test drives (rows, cols); the crop above gives 153:371, 44:1197.
KITTI_GT_SHAPE = (375, 1242)


def garg_crop(height: int, width: int) -> tuple[int, int, int, int]:
    """Returns the Garg/Eigen crop box for a ground-truth map of the given size.

    The fractions are multiplied by the size and truncated to integers (the reference casts with
    ``astype(np.int32)``), e.g. ``(153, 371, 44, 1197)`` for 375 x 1242.

    Args:
      height: ground-truth rows H (pixels).
      width: ground-truth columns W (pixels).

    Returns:
      ``(top, bottom, left, right)``: the crop is ``gt[top:bottom, left:right]``.

    Raises:
      ValueError: if ``height`` or ``width`` is not positive.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"garg_crop: height and width must be > 0, got {height} x {width}")
    box = np.array(
        [GARG_CROP_TOP * height, GARG_CROP_BOTTOM * height, GARG_CROP_LEFT * width, GARG_CROP_RIGHT * width]
    ).astype(np.int32)
    return int(box[0]), int(box[1]), int(box[2]), int(box[3])


def evaluation_mask(
    gt_depth: np.ndarray, split: str, min_depth: float = MIN_DEPTH, max_depth: float = MAX_DEPTH
) -> np.ndarray:
    """Boolean mask of the ground-truth pixels that are scored.

    ``eigen``: ``min_depth < gt < max_depth`` inside the Garg crop. Any other split (e.g.
    ``eigen_benchmark``, ``synthetic``): ``gt > 0`` only, no crop and no range (as the reference
    implementation scores the improved ground truth).

    Args:
      gt_depth: ``[H, W]`` ground-truth depth in metres, 0 where unknown.
      split: evaluation split name.
      min_depth: lower bound (exclusive) in metres for cropped splits.
      max_depth: upper bound (exclusive) in metres for cropped splits.

    Returns:
      ``[H, W]`` bool mask.

    Raises:
      ValueError: if ``gt_depth`` is not 2-D.
    """
    gt_depth = np.asarray(gt_depth)
    if gt_depth.ndim != 2:
        raise ValueError(f"gt_depth must be a [H, W] map, got shape {gt_depth.shape}")
    if split not in CROPPED_SPLITS:
        return gt_depth > 0
    mask = (gt_depth > min_depth) & (gt_depth < max_depth)
    top, bottom, left, right = garg_crop(*gt_depth.shape)
    crop = np.zeros_like(mask)
    crop[top:bottom, left:right] = True
    return mask & crop
