"""Coloured point clouds from a depth map and the camera intrinsics, as binary PLY files.

A pixel ``(u, v)`` (integer values at pixel centres) with depth ``z`` becomes the point
``X = z K^-1 [u, v, 1]^T`` (`md2tf.geometry.projection.backproject`) in the **camera frame: x right,
y down, z forward**, in the units of the depth (metres for a model whose depth is metric, see its
model card; relative units otherwise). Its colour is the input pixel's RGB.

File format: PLY 1.0, ``binary_little_endian``, one ``vertex`` element with ``float x, y, z`` and
``uchar red, green, blue`` (15 bytes per point), in row-major pixel order; pixels whose depth is not
finite and positive are left out. MeshLab, CloudCompare, Open3D and Blender read it.

This is host-side output of ``md2tf.predict``, never part of an exported graph.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf.geometry.camera import invert_intrinsics, scale_intrinsics
from md2tf.geometry.projection import backproject

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
                    ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def pixel_intrinsics(K_normalized: np.ndarray, height: int, width: int) -> np.ndarray:
    """Intrinsics in pixels of an ``height x width`` image from normalised ones (as in
    ``intrinsics.json``: fx, cx divided by the width; fy, cy by the height).

    Returns:
      float32 ``[3, 3]`` K in pixels.
    """
    K = tf.constant(np.asarray(K_normalized, np.float32)[None])
    return scale_intrinsics(K, height, width)[0].numpy()


def backproject_depth(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points of every pixel of a depth map.

    Args:
      depth: ``[H, W]`` depth along the optical axis (any units).
      K: ``[3, 3]`` intrinsics in pixels of the ``H x W`` image.

    Returns:
      float32 ``[H, W, 3]`` points (x right, y down, z forward) in the units of ``depth``.
    """
    depth = np.asarray(depth, np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H, W], got shape {depth.shape}")
    inv_K = invert_intrinsics(tf.constant(np.asarray(K, np.float32)[None]))
    return backproject(tf.constant(depth[None, ..., None]), inv_K)[0].numpy()


def write_ply(path: str, points: np.ndarray, colors: np.ndarray) -> None:
    """Writes ``[N, 3]`` float points with ``[N, 3]`` uint8 RGB colours as a binary PLY file."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    colors = np.asarray(colors).reshape(-1, 3)
    if colors.dtype != np.uint8 or len(colors) != len(points):
        raise ValueError(f"colors must be uint8 [N, 3] with N = {len(points)}, got {colors.dtype} "
                         f"{colors.shape}")
    vertices = np.empty(len(points), _VERTEX)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue")):
        vertices[channel] = colors[:, i]
    header = ("ply\nformat binary_little_endian 1.0\ncomment md2tf camera frame: x right, y down, "
              f"z forward\nelement vertex {len(points)}\nproperty float x\nproperty float y\n"
              "property float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n"
              "end_header\n")
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(vertices.tobytes())


def read_ply(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads a PLY file written by `write_ply`.

    Returns:
      ``(points, colors)``: float32 ``[N, 3]`` and uint8 ``[N, 3]``.

    Raises:
      ValueError: naming the file if it is not a binary little-endian PLY of this layout.
    """
    with open(path, "rb") as f:
        data = f.read()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError(f"{path}: not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError(f"{path}: expected format binary_little_endian 1.0")
    count = next((int(line.split()[2]) for line in header if line.startswith("element vertex")), None)
    properties = [line.split()[1:] for line in header if line.startswith("property")]
    if count is None or properties != [["float", a] for a in "xyz"] + [["uchar", c] for c in
                                                                      ("red", "green", "blue")]:
        raise ValueError(f"{path}: expected one vertex element with float x, y, z, uchar red, green, blue")
    vertices = np.frombuffer(data, _VERTEX, count=count, offset=end + len(b"end_header\n"))
    points = np.stack([vertices[a] for a in "xyz"], axis=-1)
    colors = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=-1)
    return points, colors


def write_depth_ply(path: str, depth: np.ndarray, image: np.ndarray, K_normalized: np.ndarray) -> int:
    """Writes the coloured point cloud of one frame (module docstring).

    Args:
      path: output ``.ply`` file.
      depth: ``[H, W]`` depth at the image's size.
      image: uint8 ``[H, W, 3]`` RGB (the colours).
      K_normalized: ``[3, 3]`` normalised intrinsics of the image.

    Returns:
      The number of points written (pixels with finite positive depth).
    """
    depth = np.asarray(depth, np.float32)
    if image.shape[:2] != depth.shape:
        raise ValueError(f"image {image.shape[:2]} and depth {depth.shape} differ in size")
    points = backproject_depth(depth, pixel_intrinsics(K_normalized, *depth.shape))
    valid = np.isfinite(depth) & (depth > 0)
    write_ply(path, points[valid], image[valid])
    return int(valid.sum())
