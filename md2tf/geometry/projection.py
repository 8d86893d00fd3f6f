"""Back-projection of depth maps, projection into another camera, and view synthesis (warping)."""

from __future__ import annotations

import tensorflow as tf

from md2tf.geometry._checks import check_same_batch, check_same_spatial, check_shape
from md2tf.geometry.sampling import bilinear_sample

_PROJECT_EPS = 1e-7  # (x, y) = P[:2] X / (P[2] X + eps), as the reference implementation trained


def pixel_grid(
    batch: int | tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor, dtype: tf.DType = tf.float32
) -> tf.Tensor:
    """Pixel-centre coordinates ``(u, v)`` of an image: ``u`` in ``0..W-1``, ``v`` in ``0..H-1``.

    Args:
      batch: B (int or scalar tensor).
      height, width: H, W in pixels (ints or scalar tensors).
      dtype: float dtype of the result.

    Returns:
      ``[B, H, W, 2]``; ``grid[b, v, u] == (u, v)``.
    """
    u = tf.range(width, dtype=dtype)
    v = tf.range(height, dtype=dtype)
    uu, vv = tf.meshgrid(u, v)  # [H, W] each (xy indexing)
    grid = tf.stack([uu, vv], axis=-1)[None]
    return tf.tile(grid, tf.stack([batch, 1, 1, 1]))


def backproject(depth: tf.Tensor, inv_K: tf.Tensor) -> tf.Tensor:
    """Lifts every pixel to a 3D point in its camera: ``X = depth * inv_K @ [u, v, 1]^T``.

    Args:
      depth: ``[B, H, W, 1]`` depth along the optical axis (camera z, training units).
      inv_K: ``[B, 3, 3]`` inverse intrinsics of the ``H x W`` image (1/pixels).

    Returns:
      ``[B, H, W, 3]`` points (x right, y down, z forward), units of ``depth``.

    Raises:
      ValueError: on wrong shapes or mismatched batch sizes.
    """
    depth = tf.convert_to_tensor(depth)
    inv_K = tf.convert_to_tensor(inv_K, dtype=depth.dtype)
    check_shape(depth, "depth", "[B, H, W, 1]", rank=4, dims={-1: 1})
    check_shape(inv_K, "inv_K", "[B, 3, 3]", rank=3, dims={-1: 3, -2: 3})
    check_same_batch(("depth", depth), ("inv_K", inv_K))
    shape = tf.shape(depth)
    grid = pixel_grid(shape[0], shape[1], shape[2], dtype=depth.dtype)
    homogeneous = tf.concat([grid, tf.ones_like(grid[..., :1])], axis=-1)  # [B, H, W, 3]
    rays = tf.einsum("bij,bhwj->bhwi", inv_K, homogeneous)
    return depth * rays


def project(points: tf.Tensor, K: tf.Tensor, source_from_target: tf.Tensor) -> tf.Tensor:
    """Projects target-camera points into the source image: ``P = K @ source_from_target[:3, :]``.

    ``(x, y) = P[:2] X / (P[2] X + 1e-7)`` in source pixels (pixel-centre convention, no
    normalisation). Points behind the camera or outside the image are not masked (as the reference).

    Args:
      points: ``[B, H, W, 3]`` points in target camera coordinates.
      K: ``[B, 3, 3]`` source intrinsics in pixels.
      source_from_target: ``[B, 4, 4]`` rigid transform from target to source camera coordinates.

    Returns:
      ``[B, H, W, 2]`` source pixel coordinates (u, v).

    Raises:
      ValueError: on wrong shapes or mismatched batch sizes.
    """
    points = tf.convert_to_tensor(points)
    K = tf.convert_to_tensor(K, dtype=points.dtype)
    source_from_target = tf.convert_to_tensor(source_from_target, dtype=points.dtype)
    check_shape(points, "points", "[B, H, W, 3]", rank=4, dims={-1: 3})
    check_shape(K, "K", "[B, 3, 3]", rank=3, dims={-1: 3, -2: 3})
    check_shape(source_from_target, "source_from_target", "[B, 4, 4]", rank=3, dims={-1: 4, -2: 4})
    check_same_batch(("points", points), ("K", K), ("source_from_target", source_from_target))
    proj = tf.matmul(K, source_from_target[:, :3, :])  # [B, 3, 4]
    cam = tf.einsum("bij,bhwj->bhwi", proj[:, :, :3], points) + proj[:, None, None, :, 3]
    xy, z = tf.split(cam, [2, 1], axis=-1)  # split: its gradient (a concat) is cheaper than slicing's
    return xy / (z + _PROJECT_EPS)


def warp(
    source_image: tf.Tensor,
    target_depth: tf.Tensor,
    source_from_target: tf.Tensor,
    K: tf.Tensor,
    inv_K: tf.Tensor,
) -> tf.Tensor:
    """Synthesises the target view from a source image (view synthesis by inverse warping).

    ``bilinear_sample(source_image, project(backproject(target_depth, inv_K), K, source_from_target))``.
    Source and target images share the same intrinsics ``K`` (same camera, same resolution).

    Args:
      source_image: ``[B, H, W, C]`` source image.
      target_depth: ``[B, H, W, 1]`` target depth (training units).
      source_from_target: ``[B, 4, 4]`` maps target-camera points into the source camera.
      K: ``[B, 3, 3]`` intrinsics of the ``H x W`` images (pixels).
      inv_K: ``[B, 3, 3]`` their inverse.

    Returns:
      ``[B, H, W, C]`` the source image resampled into the target view (border padding).

    Raises:
      ValueError: on wrong shapes, mismatched batch sizes or different image/depth sizes.
    """
    source_image = tf.convert_to_tensor(source_image)
    target_depth = tf.convert_to_tensor(target_depth)
    check_shape(source_image, "source_image", "[B, H, W, C]", rank=4)
    check_same_spatial("source_image", source_image, "target_depth", target_depth)
    check_same_batch(("source_image", source_image), ("target_depth", target_depth))
    points = backproject(target_depth, inv_K)
    coords = project(points, K, source_from_target)
    return bilinear_sample(source_image, coords)
