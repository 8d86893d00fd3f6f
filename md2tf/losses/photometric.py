"""Photometric (appearance) errors: SSIM and the paper's SSIM + L1 reprojection error."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_shape

SSIM_C1 = 0.01**2  # stabilisers for a dynamic range of 1 (images in [0, 1])
SSIM_C2 = 0.03**2


def _check_pair(x: tf.Tensor, y: tf.Tensor, x_name: str, y_name: str) -> None:
    check_shape(x, x_name, "[B, H, W, C]", rank=4)
    check_shape(y, y_name, "[B, H, W, C]", rank=4)
    if not x.shape.is_compatible_with(y.shape):
        raise ValueError(
            f"{x_name} and {y_name} must have the same shape [B, H, W, C], got "
            f"{x.shape.as_list()} and {y.shape.as_list()}"
        )


@tf.custom_gradient
def _mean3x3(t: tf.Tensor):
    """3x3 mean filter, stride 1, ``VALID``: ``[B, H, W, C] -> [B, H-2, W-2, C]``.

    The gradient is the same (symmetric) mean filter over the upstream gradient zero-padded by 2,
    which is several times faster on CPU than TF's generic ``AvgPoolGrad`` kernel (measured: the
    latter was ~30% of the loss's forward + backward time at 192x640).
    """

    def grad(dy: tf.Tensor) -> tf.Tensor:
        padded = tf.pad(dy, [[0, 0], [2, 2], [2, 2], [0, 0]])
        return tf.nn.avg_pool2d(padded, ksize=3, strides=1, padding="VALID")

    return tf.nn.avg_pool2d(t, ksize=3, strides=1, padding="VALID"), grad


def ssim(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Per-pixel, per-channel SSIM dissimilarity ``clip((1 - SSIM) / 2, 0, 1)``.

    Local statistics come from a 3x3 mean filter (stride 1) over reflection-padded (by 1) images;
    ``C1 = 0.01^2``, ``C2 = 0.03^2`` (the SSIM of paper Eq. 1, as the reference implementation
    trained).

    Args:
      x, y: ``[B, H, W, C]`` images in [0, 1] (H, W >= 2 for the reflection padding).

    Returns:
      ``[B, H, W, C]`` dissimilarity in [0, 1] (0 = identical neighbourhoods).

    Raises:
      ValueError: if the shapes are not equal ``[B, H, W, C]``.
    """
    x = tf.convert_to_tensor(x)
    y = tf.convert_to_tensor(y, dtype=x.dtype)
    _check_pair(x, y, "x", "y")
    # Reflection padding commutes with the element-wise products, so x and y are padded once.
    paddings = [[0, 0], [1, 1], [1, 1], [0, 0]]
    x = tf.pad(x, paddings, mode="REFLECT")
    y = tf.pad(y, paddings, mode="REFLECT")
    mu_x = _mean3x3(x)
    mu_y = _mean3x3(y)
    mean_xx = _mean3x3(x * x)
    mean_yy = _mean3x3(y * y)
    mean_xy = _mean3x3(x * y)
    sigma_x = mean_xx - mu_x * mu_x
    sigma_y = mean_yy - mu_y * mu_y
    sigma_xy = mean_xy - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return tf.clip_by_value((1.0 - numerator / denominator) / 2.0, 0.0, 1.0)


def photometric_error(
    pred: tf.Tensor, target: tf.Tensor, ssim_weight: float = 0.85, use_ssim: bool = True
) -> tf.Tensor:
    """The reprojection error ``a * mean_c(ssim(pred, target)) + (1 - a) * mean_c|target - pred|``.

    Args:
      pred: ``[B, H, W, C]`` synthesised (warped) image in [0, 1].
      target: ``[B, H, W, C]`` target image in [0, 1].
      ssim_weight: ``a`` (0.85 in the paper).
      use_ssim: False gives the plain per-pixel L1 (mean over channels).

    Returns:
      ``[B, H, W, 1]`` per-pixel error.

    Raises:
      ValueError: if the shapes differ or are not ``[B, H, W, C]``.
    """
    pred = tf.convert_to_tensor(pred)
    target = tf.convert_to_tensor(target, dtype=pred.dtype)
    _check_pair(pred, target, "pred", "target")
    l1 = tf.reduce_mean(tf.abs(target - pred), axis=-1, keepdims=True)
    if not use_ssim:
        return l1
    ssim_term = tf.reduce_mean(ssim(pred, target), axis=-1, keepdims=True)
    return ssim_weight * ssim_term + (1.0 - ssim_weight) * l1
