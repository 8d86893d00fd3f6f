"""Training augmentation (paper Sec. 4, implementation details): one draw per sample, all frames.

* Horizontal flip with probability ``flip_prob`` of every frame of the sample (and of the GT depth).
  Intrinsics are unchanged (principal point assumed centred); the stereo translation changes sign.
* Colour jitter with probability ``color_aug_prob``: brightness, contrast and saturation factors in
  [0.8, 1.2], a hue shift in [-0.1, 0.1] (fraction of a full turn), applied in a random order. The
  same parameters and order are applied to every frame of the sample; only network inputs are
  jittered, the losses use the clean images.

The ops follow torchvision's ``ColorJitter`` semantics (multiplicative brightness, contrast blended
with the mean grey level of each image, saturation blended with the grey image, hue rotated in HSV),
not ``tf.image.adjust_brightness`` (which is additive). The reference jitters PIL uint8 images, so it
also rounds to whole grey levels after each op (and its contrast mean to a whole grey level); md2tf
stays in float32. All randomness is stateless: the draw is a function of a per-sample seed, so a
seeded pipeline is reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

BRIGHTNESS_RANGE = (0.8, 1.2)
CONTRAST_RANGE = (0.8, 1.2)
SATURATION_RANGE = (0.8, 1.2)
HUE_RANGE = (-0.1, 0.1)

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


class AugmentParams(NamedTuple):
    """The augmentation draw of one sample (scalar tensors).

    Attributes:
      flip: bool, mirror all frames horizontally.
      color: bool, apply the colour jitter.
      brightness, contrast, saturation: float32 factors (1 = unchanged).
      hue: float32 hue shift in fractions of a turn (0 = unchanged).
      order: int32 ``[4]`` permutation of (0 brightness, 1 contrast, 2 saturation, 3 hue).
    """

    flip: tf.Tensor
    color: tf.Tensor
    brightness: tf.Tensor
    contrast: tf.Tensor
    saturation: tf.Tensor
    hue: tf.Tensor
    order: tf.Tensor


def identity_params() -> AugmentParams:
    """No flip, no jitter (validation / evaluation)."""
    one = tf.constant(1.0)
    return AugmentParams(tf.constant(False), tf.constant(False), one, one, one, tf.constant(0.0),
                         tf.range(4, dtype=tf.int32))


def draw_params(seed: tf.Tensor, flip_prob: float = 0.5, color_aug_prob: float = 0.5) -> AugmentParams:
    """Draws one sample's augmentation from a stateless seed.

    Args:
      seed: int32/int64 ``[2]`` stateless seed (one per sample).
      flip_prob: probability of the horizontal flip.
      color_aug_prob: probability of the colour jitter.

    Returns:
      `AugmentParams` of scalar tensors.
    """
    seed = tf.cast(seed, tf.int64)
    u = tf.random.stateless_uniform([6], seed=seed, dtype=tf.float32)
    perm_keys = tf.random.stateless_uniform([4], seed=seed + tf.constant([0, 7919], tf.int64))

    def in_range(x, bounds):
        return bounds[0] + (bounds[1] - bounds[0]) * x

    return AugmentParams(
        flip=u[0] < flip_prob,
        color=u[1] < color_aug_prob,
        brightness=in_range(u[2], BRIGHTNESS_RANGE),
        contrast=in_range(u[3], CONTRAST_RANGE),
        saturation=in_range(u[4], SATURATION_RANGE),
        hue=in_range(u[5], HUE_RANGE),
        order=tf.cast(tf.argsort(perm_keys), tf.int32),
    )


def _statically_false(flag: tf.Tensor) -> bool:
    value = tf.get_static_value(flag)
    return value is not None and not bool(value)


def rgb_to_grayscale(images: tf.Tensor) -> tf.Tensor:
    """Luma ``[..., H, W, 3] -> [..., H, W, 1]`` with torchvision's weights."""
    r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b  # ~10x faster than a reduce over 3 channels


def adjust_brightness(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """``clip(images * factor, 0, 1)``; images ``[..., H, W, 3]`` in [0, 1]."""
    return tf.clip_by_value(images * factor, 0.0, 1.0)


def adjust_contrast(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with the mean grey level of each image: ``clip(f * x + (1 - f) * mean(gray(x)), 0, 1)``."""
    channel_means = tf.reduce_mean(images, axis=[-3, -2], keepdims=True)  # [..., 1, 1, 3]
    mean = rgb_to_grayscale(channel_means)  # the mean of the grey image (luma is linear)
    return tf.clip_by_value(factor * images + (1.0 - factor) * mean, 0.0, 1.0)


def adjust_saturation(images: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """Blend with the grey image: ``clip(f * x + (1 - f) * gray(x), 0, 1)``.

    Computed as one 3x3 colour matrix ``f * I + (1 - f) * luma 1^T`` per pixel.
    """
    factor = tf.cast(factor, images.dtype)
    luma = tf.constant(_LUMA, images.dtype)[:, None] * tf.ones([1, 3], images.dtype)
    matrix = factor * tf.eye(3, dtype=images.dtype) + (1.0 - factor) * luma
    return tf.clip_by_value(tf.tensordot(images, matrix, axes=1), 0.0, 1.0)


def adjust_hue(images: tf.Tensor, delta: tf.Tensor) -> tf.Tensor:
    """Rotate the HSV hue by ``delta`` (fraction of a turn, in [-0.5, 0.5])."""
    return tf.image.adjust_hue(images, delta)


def color_jitter(images: tf.Tensor, params: AugmentParams) -> tf.Tensor:
    """Applies one jitter draw to all images of a sample (in ``params.order``), if ``params.color``.

    Args:
      images: float32 ``[N, H, W, 3]`` in [0, 1]: all frames of one sample.
      params: the sample's draw (`draw_params`).

    Returns:
      float32 ``[N, H, W, 3]`` in [0, 1]; ``images`` unchanged when ``params.color`` is False.
    """
    ops = [
        lambda x: adjust_brightness(x, params.brightness),
        lambda x: adjust_contrast(x, params.contrast),
        lambda x: adjust_saturation(x, params.saturation),
        lambda x: adjust_hue(x, params.hue),
    ]

    def jitter():
        out = images
        for position in range(4):
            out = tf.switch_case(params.order[position], [lambda f=f, x=out: f(x) for f in ops])
        return out

    if _statically_false(params.color):  # identity_params(): nothing to build
        return images
    return tf.cond(params.color, jitter, lambda: tf.identity(images))


def flip_horizontal(images: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    """Mirrors ``[..., H, W, C]`` along W when ``flip`` (bool scalar) is True."""
    if _statically_false(flip):
        return images
    return tf.cond(flip, lambda: tf.reverse(images, axis=[-2]), lambda: tf.identity(images))
