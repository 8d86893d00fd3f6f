"""TensorBoard summaries and the console progress bar.

Scalars are written by the Python loop from the step's returned dict every ``log_every`` steps; image
summaries come from a separate, rarer ``tf.function`` so the hot training step stays lean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from md2tf.visualization import MAGMA_ANCHORS

# Magma anchor colours (RGB in [0, 1]) at t = k / (N - 1): the same map as prediction PNGs.
_MAGMA = MAGMA_ANCHORS.astype(np.float32)


def colormap(values: tf.Tensor, table: np.ndarray = _MAGMA) -> tf.Tensor:
    """Maps values in [0, 1] (clipped) to RGB by linear interpolation in ``table``; NaN and
    infinities become black.

    Args:
      values: ``[...]`` floats.
      table: ``[N, 3]`` colours at ``t = k / (N - 1)``.

    Returns:
      ``[..., 3]`` float32 RGB in [0, 1].
    """
    n = table.shape[0]
    values = tf.cast(values, tf.float32)
    # A NaN cast to int32 is an out-of-range index: non-finite values never reach the gather.
    finite = tf.math.is_finite(values)
    t = tf.clip_by_value(tf.where(finite, values, 0.0), 0.0, 1.0) * (n - 1)
    lo = tf.minimum(tf.floor(t), n - 2)
    frac = (t - lo)[..., None]
    lo = tf.cast(lo, tf.int32)
    colours = tf.constant(table)
    rgb = tf.gather(colours, lo) * (1.0 - frac) + tf.gather(colours, lo + 1) * frac
    return tf.where(finite[..., None], rgb, 0.0)


def colorize_disparity(disparity: tf.Tensor, percentile: float = 95.0) -> tf.Tensor:
    """Colour-mapped disparity for display (magma, per-image ``vmax`` = 95th percentile).

    Non-finite pixels (a diverged network) are black and count as 0 in the percentile.

    Args:
      disparity: ``[B, H, W, 1]`` disparity (any positive scale).
      percentile: per-image percentile mapped to the top of the colormap.

    Returns:
      ``[B, H, W, 3]`` float32 RGB in [0, 1].
    """
    disparity = tf.cast(disparity, tf.float32)
    finite = tf.where(tf.math.is_finite(disparity), disparity, 0.0)
    flat = tf.sort(tf.reshape(finite, [tf.shape(disparity)[0], -1]), axis=1)
    n = tf.shape(flat)[1]
    index = tf.cast(tf.round(tf.cast(n - 1, tf.float32) * percentile / 100.0), tf.int32)
    vmax = tf.gather(flat, index, axis=1)[:, None, None, None]
    return colormap((disparity / tf.maximum(vmax, 1e-12))[..., 0])


def write_scalars(writer: tf.summary.SummaryWriter, scalars: Mapping[str, float], step: int,
                  prefix: str = "") -> None:
    """Writes every entry of ``scalars`` (numbers or scalar tensors) at ``step``."""
    with writer.as_default(step=step):
        for name, value in scalars.items():
            tf.summary.scalar(prefix + name, float(value))
    writer.flush()


def write_images(writer: tf.summary.SummaryWriter, images: Mapping[str, tf.Tensor], step: int,
                 max_outputs: int = 2) -> None:
    """Writes ``[B, H, W, 3|1]`` float images in [0, 1] at ``step``."""
    with writer.as_default(step=step):
        for name, value in images.items():
            tf.summary.image(name, tf.clip_by_value(tf.cast(value, tf.float32), 0.0, 1.0),
                             max_outputs=max_outputs)
    writer.flush()


def visualisation_images(batch, disparities, losses) -> dict[str, tf.Tensor]:
    """Images to log: input target, colour-mapped disparity, auto-mask and warped sources.

    Args:
      batch: the `Batch`; disparities: per-scale ``[B, h, w, 1]``; losses: ``LossOutputs``.

    Returns:
      ``{name: [B, H, W, 3|1]}`` in [0, 1].
    """
    images = {"input/target": batch.target[0]}
    for s, disp in enumerate(disparities):
        images[f"disparity/s{s}"] = colorize_disparity(disp)
    if losses.automask:
        images["automask/s0"] = tf.cast(losses.automask[0], tf.float32)
    if losses.warped:
        warped = losses.warped[0]
        for k in range(warped.shape[1]):
            images[f"warped/source{k}"] = warped[:, k]
    return images
