"""Rigid transforms: axis-angle rotations and 4x4 poses from the pose network's 6-vector."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_same_batch, check_shape

_AXIS_EPS = 1e-7  # axis = v / (angle + eps), as the reference implementation trained


def _safe_norm(v: tf.Tensor) -> tf.Tensor:
    """||v|| over the last axis with a zero (not NaN) gradient at v == 0. ``[..., 3] -> [..., 1]``."""
    sq = tf.reduce_sum(tf.square(v), axis=-1, keepdims=True)
    positive = sq > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, sq, tf.ones_like(sq))), tf.zeros_like(sq))


def axis_angle_to_matrix(axis_angle: tf.Tensor) -> tf.Tensor:
    """Rodrigues' formula: rotation matrices from axis-angle vectors.

    ``angle = ||v||``, ``axis = v / (angle + 1e-7)`` and
    ``R = cos(angle) I + sin(angle) [axis]_x + (1 - cos(angle)) axis axis^T``.
    At ``v == 0`` this is exactly the identity and its gradient is finite (zero through the angle).

    Args:
      axis_angle: ``[B, 3]`` rotation vectors (radians).

    Returns:
      ``[B, 3, 3]`` rotation matrices (``R @ x`` rotates column vectors).

    Raises:
      ValueError: if ``axis_angle`` is not ``[B, 3]``.
    """
    axis_angle = tf.convert_to_tensor(axis_angle)
    check_shape(axis_angle, "axis_angle", "[B, 3]", rank=2, dims={-1: 3})
    angle = _safe_norm(axis_angle)  # [B, 1]
    axis = axis_angle / (angle + _AXIS_EPS)
    x, y, z = tf.unstack(axis, axis=-1)  # [B] each
    c = tf.cos(angle)[:, 0]
    s = tf.sin(angle)[:, 0]
    one_c = 1.0 - c
    zero = tf.zeros_like(x)
    # [axis]_x, the cross-product matrix.
    skew = tf.reshape(tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1), [-1, 3, 3])
    outer = axis[:, :, None] * axis[:, None, :]
    eye = tf.eye(3, dtype=axis_angle.dtype)[None]
    return (
        c[:, None, None] * eye + s[:, None, None] * skew + one_c[:, None, None] * outer
    )


def pose_to_matrix(
    axis_angle: tf.Tensor, translation: tf.Tensor, invert: bool = False
) -> tf.Tensor:
    """4x4 rigid transforms from the pose network's (axis-angle, translation) output.

    Not inverted: ``[R | t]`` (rotate, then translate). Inverted: ``[R^T | -R^T t]``, the inverse
    (exact up to the 1e-7 of the axis normalisation: a relative error of about ``1e-7 / angle``).

    How training uses it (temporally ordered pairs, as the reference implementation trained): for a
    temporal source at offset ``f < 0`` the pose network sees ``[I_f, I_0]`` (earlier frame first)
    and its output is used with ``invert=True``; for ``f > 0`` it sees ``[I_0, I_f]`` and
    ``invert=False``. Either way the result is ``source_from_target``: it maps points in target
    (frame 0) camera coordinates into the source (frame f) camera.

    Args:
      axis_angle: ``[B, 3]`` rotation vectors (radians).
      translation: ``[B, 3]`` translations (training units, e.g. metres).
      invert: return the inverse transform.

    Returns:
      ``[B, 4, 4]`` transforms with last row ``[0, 0, 0, 1]``.

    Raises:
      ValueError: if either input is not ``[B, 3]`` or their batch sizes differ.
    """
    axis_angle = tf.convert_to_tensor(axis_angle)
    check_shape(axis_angle, "axis_angle", "[B, 3]", rank=2, dims={-1: 3})
    return rigid_transform(axis_angle_to_matrix(axis_angle), translation, invert)


def rigid_transform(rotation: tf.Tensor, translation: tf.Tensor, invert: bool = False) -> tf.Tensor:
    """4x4 rigid transforms ``[R | t]`` (rotate, then translate), or their inverses ``[R^T | -R^T t]``.

    Args:
      rotation: ``[B, 3, 3]`` rotation matrices.
      translation: ``[B, 3]`` translations (training units, e.g. metres).
      invert: return the inverse transform.

    Returns:
      ``[B, 4, 4]`` transforms with last row ``[0, 0, 0, 1]``, the dtype of ``rotation``.

    Raises:
      ValueError: on wrong shapes or different batch sizes.
    """
    rotation = tf.convert_to_tensor(rotation)
    translation = tf.convert_to_tensor(translation, dtype=rotation.dtype)
    check_shape(rotation, "rotation", "[B, 3, 3]", rank=3, dims={-1: 3, -2: 3})
    check_shape(translation, "translation", "[B, 3]", rank=2, dims={-1: 3})
    check_same_batch(("rotation", rotation), ("translation", translation))
    t = translation[:, :, None]  # [B, 3, 1]
    if invert:
        rotation = tf.linalg.matrix_transpose(rotation)
        t = -tf.matmul(rotation, t)
    top = tf.concat([rotation, t], axis=-1)  # [B, 3, 4]
    batch = tf.shape(rotation)[0]
    bottom = tf.tile(tf.constant([[[0.0, 0.0, 0.0, 1.0]]], dtype=rotation.dtype), [batch, 1, 1])
    return tf.concat([top, bottom], axis=1)


def mirror_x(transform: tf.Tensor) -> tf.Tensor:
    """The rigid transform seen in horizontally mirrored images: ``F @ T @ F``, ``F = diag(-1, 1, 1, 1)``.

    Mirroring an image about its vertical centre line mirrors the camera's x axis (``x -> -x``), so a
    transform ``T`` between two cameras becomes ``F T F`` between the mirrored cameras: the rotation's
    entries that mix x with y or z change sign (a yaw or roll is reversed, a pitch is kept) and so
    does the x translation. ``F`` is its own inverse, so applying this twice gives ``T`` back. With a
    principal point at the image centre (``cx = (W - 1) / 2``) warping mirrored images with the
    mirrored transform equals mirroring the warp of the originals.

    Args:
      transform: ``[..., 4, 4]`` rigid transforms (e.g. ``source_from_target``).

    Returns:
      ``[..., 4, 4]`` mirrored transforms, same dtype.

    Raises:
      ValueError: if the last two axes are not ``4, 4``.
    """
    transform = tf.convert_to_tensor(transform)
    check_shape(transform, "transform", "[..., 4, 4]", rank=tuple(range(2, 9)), dims={-1: 4, -2: 4})
    flip = tf.constant([-1.0, 1.0, 1.0, 1.0], dtype=transform.dtype)
    # (F T F)_ij = f_i T_ij f_j
    return transform * flip[:, None] * flip[None, :]
