"""Per-pixel minimum reprojection with auto-masking of stationary pixels (paper Sec. 3.3)."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_shape


def min_reprojection(
    reprojection: tf.Tensor,
    identity: tf.Tensor | None = None,
    use_min: bool = True,
    noise_std: float = 0.0,
    noise_seed: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Combines per-source errors into the per-pixel error that is optimised.

    1. ``use_min=False`` ("avg reprojection") first averages the reprojection channels, and the
       identity channels, to one channel each.
    2. With ``identity`` (auto-masking on), ``noise_std * N(0, 1)`` from
       ``tf.random.stateless_normal(seed=noise_seed)`` is added to the identity errors (tie-break;
       skipped when ``noise_seed`` is None) and they are placed *before* the reprojection channels.
    3. The per-pixel minimum over all channels is taken. The gradient flows only into the winning
       channel (ties go to the first, i.e. identity); identity errors are constants
       (``stop_gradient``), so pixels won by identity carry no gradient.

    Args:
      reprojection: ``[B, H, W, S]`` errors of the S warped sources.
      identity: ``[B, H, W, S]`` errors of the unwarped sources, or None (auto-masking off).
      use_min: per-pixel minimum over sources (True) or their average (False).
      noise_std: std of the identity tie-break noise.
      noise_seed: int32 ``[2]`` seed of that noise, or None for no noise.

    Returns:
      ``(min_error [B, H, W, 1], automask [B, H, W, 1])``; ``automask`` is 1.0 where a warped source
      won the minimum (all ones without ``identity``).

    Raises:
      ValueError: on wrong ranks or mismatched shapes.
    """
    reprojection = tf.convert_to_tensor(reprojection)
    check_shape(reprojection, "reprojection", "[B, H, W, S]", rank=4)
    if not use_min:
        reprojection = tf.reduce_mean(reprojection, axis=-1, keepdims=True)
    if identity is None:
        num_identity = 0
        combined = reprojection
    else:
        identity = tf.stop_gradient(tf.convert_to_tensor(identity, dtype=reprojection.dtype))
        check_shape(identity, "identity", "[B, H, W, S]", rank=4)
        if not use_min:
            identity = tf.reduce_mean(identity, axis=-1, keepdims=True)
        if noise_seed is not None and noise_std > 0:
            noise = tf.random.stateless_normal(
                tf.shape(identity), seed=noise_seed, dtype=identity.dtype
            )
            identity = identity + noise_std * noise
        num_identity = tf.shape(identity)[-1]
        combined = tf.concat([identity, reprojection], axis=-1)  # [B, H, W, S_id + S]
    winner = tf.argmin(combined, axis=-1, output_type=tf.int32)[..., None]  # [B, H, W, 1]
    min_error = tf.gather(combined, winner, batch_dims=3)  # gradient only into the winner
    automask = tf.cast(winner >= num_identity, reprojection.dtype)
    return min_error, automask
