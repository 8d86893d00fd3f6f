"""Differentiable bilinear sampling in pixel coordinates with border clamping (plain TF, XLA-ready)."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_same_batch, check_shape


def bilinear_sample(image: tf.Tensor, coords: tf.Tensor) -> tf.Tensor:
    """Samples ``image`` at pixel coordinates with bilinear interpolation and border padding.

    ``coords[..., 0]`` is u (column) and ``coords[..., 1]`` is v (row), with integer values at pixel
    centres. Coordinates are first clamped to ``[0, w-1] x [0, h-1]``, so points outside the image take
    the nearest border value. This is ``grid_sample(align_corners=True, padding_mode="border")`` on
    coordinates normalised by ``(w-1)``, the convention the reference implementation trained with.
    Identity coordinates (``pixel_grid``) return ``image`` exactly.

    Gradients flow to ``image`` and to ``coords`` (zero for clamped coordinates). Implementation:
    flatten to ``[B*h*w, C]`` and gather the four neighbours; compiles with ``jit_compile=True``.

    Non-finite coordinates never raise: ``+-inf`` is clamped to the border like any far point, and a
    point with a NaN coordinate samples NaN (zero gradient), so a diverged network shows up as a
    non-finite loss instead of an out-of-range gather index.

    Args:
      image: ``[B, h, w, C]`` float image (any float dtype).
      coords: ``[B, H, W, 2]`` pixel coordinates (u, v); H, W may differ from h, w.

    Returns:
      ``[B, H, W, C]`` samples, dtype of ``image``; NaN where ``coords`` has a NaN.

    Raises:
      ValueError: if the ranks/last dimension are wrong or the batch sizes differ.
    """
    image = tf.convert_to_tensor(image)
    coords = tf.convert_to_tensor(coords)
    check_shape(image, "image", "[B, h, w, C]", rank=4)
    check_shape(coords, "coords", "[B, H, W, 2]", rank=4, dims={-1: 2})
    check_same_batch(("image", image), ("coords", coords))
    coords = tf.cast(coords, image.dtype)

    img_shape = tf.shape(image)
    batch, h, w = img_shape[0], img_shape[1], img_shape[2]
    channels = image.shape[-1] if image.shape[-1] is not None else img_shape[3]
    w_max = tf.cast(w - 1, image.dtype)
    h_max = tf.cast(h - 1, image.dtype)

    u, v = tf.unstack(coords, axis=-1)  # unstack: its gradient (a stack) is cheaper than slicing's
    # clip_by_value passes NaN through and its int32 cast is an arbitrary (out-of-range) index:
    # gather such points at pixel (0, 0) and overwrite them with NaN at the end.
    is_nan = tf.math.logical_or(tf.math.is_nan(u), tf.math.is_nan(v))  # [B, H, W]
    x = tf.clip_by_value(tf.where(is_nan, tf.zeros_like(u), u), 0.0, w_max)  # [B, H, W]
    y = tf.clip_by_value(tf.where(is_nan, tf.zeros_like(v), v), 0.0, h_max)
    x0f = tf.floor(x)
    y0f = tf.floor(y)
    wx = (x - x0f)[..., None]  # [B, H, W, 1], weight of the right neighbour
    wy = (y - y0f)[..., None]
    x0 = tf.cast(x0f, tf.int32)
    y0 = tf.cast(y0f, tf.int32)
    x1 = tf.minimum(x0 + 1, w - 1)
    y1 = tf.minimum(y0 + 1, h - 1)

    flat = tf.reshape(image, [-1, channels])  # [B*h*w, C]
    base = tf.reshape(tf.range(batch) * (h * w), [-1, 1, 1])  # [B, 1, 1]
    row0 = base + y0 * w
    row1 = base + y1 * w

    def gather(rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
        return tf.gather(flat, rows + cols)  # [B, H, W, C]

    top = (1.0 - wx) * gather(row0, x0) + wx * gather(row0, x1)
    bottom = (1.0 - wx) * gather(row1, x0) + wx * gather(row1, x1)
    samples = (1.0 - wy) * top + wy * bottom
    return tf.where(is_nan[..., None], tf.constant(float("nan"), image.dtype), samples)
