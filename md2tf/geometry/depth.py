"""Disparity <-> depth conversion (the network's sigmoid output to bounded depth)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf.config import check_depth_range


def disp_to_depth_coefficients(min_depth: float, max_depth: float) -> tuple[float, float]:
    """``(a, b)`` of ``scaled_disp = a * sigma + b``, ``depth = 1 / scaled_disp`` (paper Sec. 3).

    ``b = 1 / max_depth`` and ``a = 1 / min_depth - 1 / max_depth``, so a sigmoid ``sigma`` in
    [0, 1] gives depth in ``[min_depth, max_depth]``.

    Raises:
      ValueError: if not ``0 < min_depth < max_depth``.
    """
    check_depth_range(min_depth, max_depth)
    return 1.0 / min_depth - 1.0 / max_depth, 1.0 / max_depth


def disp_to_depth(disp, min_depth: float, max_depth: float):
    """Maps a sigmoid output to a bounded inverse depth and depth (paper Sec. 3: D = 1/(a sigma + b)).

    ``scaled_disp = 1/max_depth + (1/min_depth - 1/max_depth) * disp`` and ``depth = 1/scaled_disp``,
    so ``disp`` in [0, 1] gives depth in [min_depth, max_depth]. This is the one implementation:
    ``md2tf.models.DepthNet.disp_to_depth`` binds it to the network's range, and the loss, trainer,
    evaluation and deployment all go through it.

    Args:
      disp: sigmoid output in [0, 1], any shape (usually ``[B, H, W, 1]``): a ``tf.Tensor`` (or
        anything ``tf.convert_to_tensor`` accepts) or a NumPy array, which stays NumPy (float32 in,
        float32 out).
      min_depth: depth at ``disp == 1`` (training units, e.g. metres), > 0.
      max_depth: depth at ``disp == 0``, > min_depth.

    Returns:
      ``(scaled_disp, depth)``, both shaped like ``disp``: inverse depth (1/units) and depth (units).

    Raises:
      ValueError: if not ``0 < min_depth < max_depth``.
    """
    a, b = disp_to_depth_coefficients(min_depth, max_depth)
    if isinstance(disp, np.ndarray):
        scaled_disp = (b + a * disp).astype(disp.dtype if disp.dtype.kind == "f" else np.float32)
    else:
        disp = tf.convert_to_tensor(disp)
        scaled_disp = b + a * disp
    return scaled_disp, 1.0 / scaled_disp
