"""Disparity <-> depth conversion (the network's sigmoid output to metric-range depth)."""

from __future__ import annotations

import tensorflow as tf


def disp_to_depth(
    disp: tf.Tensor, min_depth: float, max_depth: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """Maps a sigmoid output to a bounded inverse depth and depth (facts 1.3 ``disp_to_depth``).

    ``scaled_disp = 1/max_depth + (1/min_depth - 1/max_depth) * disp`` and ``depth = 1/scaled_disp``,
    so ``disp`` in [0, 1] gives depth in [min_depth, max_depth].

    Args:
      disp: sigmoid output in [0, 1], any shape (usually ``[B, H, W, 1]``).
      min_depth: depth at ``disp == 1`` (training units, e.g. metres), > 0.
      max_depth: depth at ``disp == 0``, > min_depth.

    Returns:
      ``(scaled_disp, depth)``, both shaped like ``disp``: inverse depth (1/units) and depth (units).

    Raises:
      ValueError: if not ``0 < min_depth < max_depth``.
    """
    if not 0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    disp = tf.convert_to_tensor(disp)
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp
