"""Pinhole intrinsics: construction, per-level scaling and the closed-form inverse."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_shape


def intrinsics_matrix(
    fx: float | tf.Tensor,
    fy: float | tf.Tensor,
    cx: float | tf.Tensor,
    cy: float | tf.Tensor,
    batch: int | None = None,
    dtype: tf.DType = tf.float32,
) -> tf.Tensor:
    """Builds ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``.

    Args:
      fx, fy: focal lengths (pixels), scalars or ``[B]`` tensors.
      cx, cy: principal point (pixels, pixel-centre convention), scalars or ``[B]``.
      batch: if given (and the parameters are scalars), tile to ``[batch, 3, 3]``.
      dtype: float dtype of the result.

    Returns:
      ``[3, 3]`` for scalar parameters and ``batch=None``; ``[B, 3, 3]`` otherwise.
    """
    fx, fy, cx, cy = (tf.cast(tf.convert_to_tensor(p), dtype) for p in (fx, fy, cx, cy))
    zero = tf.zeros_like(fx + fy + cx + cy)
    one = tf.ones_like(zero)
    k = tf.stack([fx + zero, zero, cx + zero, zero, fy + zero, cy + zero, zero, zero, one], axis=-1)
    k = tf.reshape(k, tf.concat([tf.shape(zero), [3, 3]], axis=0))
    if batch is not None:
        if k.shape.rank != 2:
            raise ValueError("intrinsics_matrix: give scalar fx, fy, cx, cy when batch is set")
        k = tf.tile(k[None], [batch, 1, 1])
    return k


def _scale_rows(K: tf.Tensor, row0: tf.Tensor | float, row1: tf.Tensor | float) -> tf.Tensor:
    n = K.shape[-1] if K.shape[-1] is not None else tf.shape(K)[-1]
    scale = tf.concat(
        [
            tf.reshape(tf.cast(row0, K.dtype), [1]),
            tf.reshape(tf.cast(row1, K.dtype), [1]),
            tf.ones([n - 2], K.dtype),
        ],
        axis=0,
    )
    return K * scale[:, None]


def scale_intrinsics(K_normalized: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """Normalised intrinsics to pixels: row 0 times ``width``, row 1 times ``height``.

    Normalised K has ``fx, cx`` as fractions of the image width and ``fy, cy`` of its height (the
    reference's KITTI K is ``[[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]]``).

    Args:
      K_normalized: ``[B, 3, 3]`` or ``[3, 3]`` (4x4 also accepted; only rows 0 and 1 are scaled).
      height, width: image size in pixels.

    Returns:
      Intrinsics in pixels, same shape as ``K_normalized``.

    Raises:
      ValueError: if ``K_normalized`` is not ``[B, 3, 3]``/``[3, 3]`` (or 4x4).
    """
    K_normalized = tf.convert_to_tensor(K_normalized)
    check_shape(K_normalized, "K_normalized", "[B, 3, 3] or [3, 3]", rank=(2, 3))
    if K_normalized.shape[-1] not in (None, 3, 4) or K_normalized.shape[-1] != K_normalized.shape[-2]:
        raise ValueError(
            f"K_normalized must have shape [B, 3, 3] or [3, 3], got {K_normalized.shape.as_list()}"
        )
    return _scale_rows(K_normalized, width, height)


def mirror_principal_point(K: tf.Tensor, width: int | float | tf.Tensor) -> tf.Tensor:
    """Intrinsics of the horizontally mirrored image: ``cx -> W - 1 - cx``, the rest unchanged.

    A mirror maps pixel column ``u`` to ``W - 1 - u`` (integer pixel centres), so the principal point
    moves there too; the focal lengths stay. A principal point off the centre that is not mirrored
    puts every warp of a flipped sample off by twice its offset.

    Args:
      K: ``[..., 3, 3]`` intrinsics in pixels of an image ``width`` pixels wide.
      width: W in pixels.

    Returns:
      Same shape and dtype as ``K``.
    """
    K = tf.convert_to_tensor(K)
    check_shape(K, "K", "[..., 3, 3]", rank=tuple(range(2, 9)), dims={-1: 3, -2: 3})
    width = tf.cast(width, K.dtype)
    # cx' = (W - 1) - cx: negate entry (0, 2), then add W - 1 there.
    sign = tf.constant([[1, 1, -1], [1, 1, 1], [1, 1, 1]], K.dtype)
    shift = tf.constant([[0, 0, 1], [0, 0, 0], [0, 0, 0]], K.dtype)
    return K * sign + (width - 1) * shift


def scale_intrinsics_to_level(K: tf.Tensor, level: int) -> tf.Tensor:
    """Intrinsics for pyramid level ``level`` (1/2^level resolution): rows 0 and 1 divided by 2^level.

    Args:
      K: ``[B, 3, 3]`` or ``[3, 3]`` intrinsics in pixels of the level-0 image.
      level: pyramid level s >= 0.

    Returns:
      Same shape as ``K``.

    Raises:
      ValueError: for a negative level or a K that is not ``[B, 3, 3]``/``[3, 3]``.
    """
    K = tf.convert_to_tensor(K)
    check_shape(K, "K", "[B, 3, 3] or [3, 3]", rank=(2, 3), dims={-1: 3, -2: 3})
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    factor = 1.0 / (2**level)
    return _scale_rows(K, factor, factor)


def invert_intrinsics(K: tf.Tensor) -> tf.Tensor:
    """Closed-form inverse of pinhole intrinsics (no ``tf.linalg.inv``; TFLite/XLA friendly).

    For ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]``:
    ``K^-1 = [[1/fx, -s/(fx fy), (s cy - cx fy)/(fx fy)], [0, 1/fy, -cy/fy], [0, 0, 1]]``.
    Only those entries of ``K`` are read (the last row is assumed to be ``[0, 0, 1]``).

    Args:
      K: ``[B, 3, 3]`` (or ``[3, 3]``) intrinsics in pixels.

    Returns:
      ``[B, 3, 3]`` (or ``[3, 3]``) inverse, in 1/pixels.

    Raises:
      ValueError: if ``K`` is not ``[B, 3, 3]``/``[3, 3]``.
    """
    K = tf.convert_to_tensor(K)
    check_shape(K, "K", "[B, 3, 3] or [3, 3]", rank=(2, 3), dims={-1: 3, -2: 3})
    fx, s, cx = K[..., 0, 0], K[..., 0, 1], K[..., 0, 2]
    fy, cy = K[..., 1, 1], K[..., 1, 2]
    zero = tf.zeros_like(fx)
    one = tf.ones_like(fx)
    inv = tf.stack(
        [
            1.0 / fx, -s / (fx * fy), (s * cy - cx * fy) / (fx * fy),
            zero, 1.0 / fy, -cy / fy,
            zero, zero, one,
        ],
        axis=-1,
    )  # fmt: skip
    return tf.reshape(inv, tf.shape(K))
