"""Flip post-processing of disparities (Monodepth v1 / Monodepth2 paper Sec. 4, ``--post_process``).

The network is run on an image and on its horizontal mirror; the mirrored prediction is flipped back
and the two are blended: the mean in the middle, and near each border only the prediction that does
not suffer from the disocclusion artefact of that border, with a linear ramp between 5 % and 10 % of
the width.
"""

from __future__ import annotations

import numpy as np

from md2tf.deploy.inference import FLIP_RAMP_SLOPE, FLIP_RAMP_START, flip_post_process_weights

#: Left-border ramp: weight 1 up to RAMP_START of the width, 0 from RAMP_START + 1/RAMP_SLOPE on.
RAMP_START = FLIP_RAMP_START
RAMP_SLOPE = FLIP_RAMP_SLOPE


def edge_ramp_weights(width: int) -> tuple[np.ndarray, np.ndarray]:
    """The blend weights of the two predictions along the image width.

    ``x = linspace(0, 1, W)``, ``left = 1 - clip(RAMP_SLOPE * (x - RAMP_START), 0, 1)`` and ``right`` is
    ``left`` mirrored: `md2tf.deploy.inference.flip_post_process_weights` (the graph exported by
    ``deploy`` blends with the same weights), with the width checked.

    Args:
      width: W, image width in pixels (> 1).

    Returns:
      ``(left, right)``, each ``[W]`` float32: ``left`` is 1 over the left 5 % and 0 from 10 % on.

    Raises:
      ValueError: if ``width < 2``.
    """
    if width < 2:
        raise ValueError(f"edge_ramp_weights: width must be >= 2, got {width}")
    return flip_post_process_weights(width)


def blend_flipped(disp: np.ndarray, disp_flipped_back: np.ndarray) -> np.ndarray:
    """Blends a prediction with the (already un-flipped) prediction of the mirrored image.

    ``out = right * disp + left * disp_flipped_back + (1 - left - right) * (disp + disp_flipped_back) / 2``:
    near the left border the mirrored-image prediction is used, near the right border the original.

    Args:
      disp: ``[B, H, W]`` or ``[B, H, W, 1]`` disparity of the original images.
      disp_flipped_back: same shape: disparity of the mirrored images, flipped back to the original
        orientation.

    Returns:
      Blended disparity with the shape of ``disp``.

    Raises:
      ValueError: if the shapes differ or the rank is not 3 or 4.
    """
    disp = np.asarray(disp)
    other = np.asarray(disp_flipped_back)
    if disp.shape != other.shape:
        raise ValueError(f"blend_flipped: shapes differ: {disp.shape} vs {other.shape}")
    if disp.ndim not in (3, 4) or (disp.ndim == 4 and disp.shape[-1] != 1):
        raise ValueError(f"blend_flipped: expected [B, H, W] or [B, H, W, 1], got {disp.shape}")
    left, right = edge_ramp_weights(disp.shape[2])
    shape = (1, 1, -1) if disp.ndim == 3 else (1, 1, -1, 1)
    left, right = left.reshape(shape), right.reshape(shape)
    mean = 0.5 * (disp + other)
    return (right * disp + left * other + (1.0 - left - right) * mean).astype(disp.dtype)


def post_process_batch(predict, images: np.ndarray) -> np.ndarray:
    """Runs ``predict`` on ``images`` and their mirrors in one batch and blends the results.

    Args:
      predict: callable ``[2B, H, W, 3] -> [2B, H, W, 1]`` disparity (any dtype of ``images``).
      images: ``[B, H, W, 3]`` network inputs.

    Returns:
      ``[B, H, W, 1]`` post-processed disparity.
    """
    images = np.asarray(images)
    batch = images.shape[0]
    out = np.asarray(predict(np.concatenate([images, images[:, :, ::-1]], axis=0)))
    return blend_flipped(out[:batch], out[batch:, :, ::-1])
