"""How a pose network's motion compares with the GT's beyond the snippet ATE (experiment analysis).

`speed_agreement` asks whether the predicted speed follows the GT's beyond one scale; `with_lengths`
splits the ATE into its speed and direction parts by rescaling one trajectory's steps to another's
lengths (``scripts/train_synthetic.py --mode=mono`` reports both). Relative poses follow
`md2tf.evaluation.odometry`'s ``next_from_previous`` convention.
"""

from __future__ import annotations

import numpy as np

from md2tf.evaluation.odometry import STOPPED_BELOW


def speed_agreement(pred_relative: np.ndarray, gt_relative: np.ndarray,
                    moving_above: float = STOPPED_BELOW) -> dict[str, float]:
    """How well a pose network's per-frame speed follows the GT's, beyond one scale.

    A snippet's ATE removes one scale per snippet, so what it measures of the speed is how the
    predicted step lengths vary *within* a snippet. These two numbers measure that over the whole
    sequence.

    Args:
      pred_relative, gt_relative: ``[N, 4, 4]`` ``next_from_previous`` poses of the same pairs.
      moving_above: pairs whose GT step is at most this long (GT units per frame) are left out.

    Returns:
      ``speed_corr``: the correlation of predicted and GT step lengths over the moving pairs;
      ``speed_change_corr``: the same for the change of the step length from one pair to the next
      (both pairs moving), i.e. whether the network sees accelerations. NaN where a side is constant
      or fewer than two values are left.

    Raises:
      ValueError: if the two are not ``[N, 4, 4]`` arrays of the same ``N``.
    """
    pred_relative, gt_relative = np.asarray(pred_relative, np.float64), np.asarray(gt_relative, np.float64)
    if pred_relative.ndim != 3 or pred_relative.shape[1:] != (4, 4) or pred_relative.shape != gt_relative.shape:
        raise ValueError(f"expected two [N, 4, 4] pose arrays of the same N, got {pred_relative.shape} "
                         f"predicted and {gt_relative.shape} GT")
    pred = np.linalg.norm(pred_relative[:, :3, 3], axis=1)
    gt = np.linalg.norm(gt_relative[:, :3, 3], axis=1)
    moving = gt > moving_above
    both = moving[1:] & moving[:-1]

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])

    return {"speed_corr": corr(pred[moving], gt[moving]),
            "speed_change_corr": corr(np.diff(pred)[both], np.diff(gt)[both])}


def with_lengths(relative: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``relative`` with each translation rescaled to another length, rotations and directions kept.

    Args:
      relative: ``[N, 4, 4]`` poses.
      lengths: ``[N]`` translation lengths (the poses' units).

    Returns:
      A new ``[N, 4, 4]`` array; a zero translation stays zero (it has no direction).
    """
    out = np.array(relative, np.float64)
    norm = np.linalg.norm(out[:, :3, 3], axis=1, keepdims=True)
    out[:, :3, 3] *= np.where(norm > 0, lengths[:, None] / np.maximum(norm, 1e-12), 0.0)
    return out
