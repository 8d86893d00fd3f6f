"""Edge-aware disparity smoothness (paper Eq. 3)."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_same_batch, check_same_spatial, check_shape

_MEAN_EPS = 1e-7


def edge_aware_smoothness(disp: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Edge-aware smoothness of mean-normalised disparity.

    ``d = disp / (mean_hw(disp) + 1e-7)`` per image, then
    ``mean(|dx d| * exp(-mean_c|dx I|)) + mean(|dy d| * exp(-mean_c|dy I|))`` with forward
    differences (each term averaged over its own valid pixels, as the reference implementation
    trained; mean normalisation of d as in paper Eq. 3).

    Args:
      disp: ``[B, H, W, 1]`` disparity (the decoder's sigmoid output at this scale).
      image: ``[B, H, W, C]`` the clean target image at the same resolution, in [0, 1].

    Returns:
      Scalar smoothness (unweighted; the caller applies ``smoothness_weight / 2^s``).

    Raises:
      ValueError: on wrong ranks, a non-single-channel ``disp`` or different sizes.
    """
    disp = tf.convert_to_tensor(disp)
    image = tf.convert_to_tensor(image, dtype=disp.dtype)
    check_shape(disp, "disp", "[B, H, W, 1]", rank=4, dims={-1: 1})
    check_shape(image, "image", "[B, H, W, C]", rank=4)
    check_same_batch(("disp", disp), ("image", image))
    check_same_spatial("disp", disp, "image", image)
    disp = disp / (tf.reduce_mean(disp, axis=[1, 2], keepdims=True) + _MEAN_EPS)
    disp_dx = tf.abs(disp[:, :, :-1] - disp[:, :, 1:])
    disp_dy = tf.abs(disp[:, :-1] - disp[:, 1:])
    image_dx = tf.reduce_mean(tf.abs(image[:, :, :-1] - image[:, :, 1:]), axis=-1, keepdims=True)
    image_dy = tf.reduce_mean(tf.abs(image[:, :-1] - image[:, 1:]), axis=-1, keepdims=True)
    return tf.reduce_mean(disp_dx * tf.exp(-image_dx)) + tf.reduce_mean(disp_dy * tf.exp(-image_dy))
