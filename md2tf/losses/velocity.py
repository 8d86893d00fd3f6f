"""The velocity loss: known distances between frames make the pose network, and with it the depth,
metric.

Guizilini et al., "3D Packing for Self-Supervised Monocular Depth Estimation" (PackNet-SfM, CVPR
2020), Sec. 3.3: ``L_v = | ||t_pred|| - ||t_gt|| |`` over the pose pairs, weighted (0.1 in their
code) and added to the photometric objective. Only the translation's length is supervised, not its
direction: a speedometer knows how far, not where. The photometric loss couples the translation's
scale to the depth's, so the depth network learns metres too.
"""

from __future__ import annotations

import tensorflow as tf


def velocity_loss(source_from_target: tf.Tensor, distances: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean absolute difference between predicted and known distances, over the known ones.

    Args:
      source_from_target: float ``[B, T, 4, 4]`` predicted rigid transforms of the T temporal sources
        (metres); ``||t||`` of ``source_from_target`` is the distance between the two camera centres.
      distances: float ``[B, T]`` metres travelled between the target and each source; NaN where
        unknown (such pairs do not count).

    Returns:
      ``(loss, count)``: the scalar mean ``| ||t|| - d |`` over the known pairs (0 when there are
      none) and the number of known pairs.
    """
    translation = tf.cast(source_from_target[..., :3, 3], tf.float32)
    # Not tf.norm: its gradient at a zero translation (a pose network at rest) is NaN.
    predicted = tf.sqrt(tf.reduce_sum(tf.square(translation), axis=-1) + 1e-12)  # [B, T]
    distances = tf.cast(distances, tf.float32)
    known = tf.math.is_finite(distances)
    error = tf.where(known, tf.abs(predicted - tf.where(known, distances, 0.0)), 0.0)
    count = tf.reduce_sum(tf.cast(known, tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(error), count), count
