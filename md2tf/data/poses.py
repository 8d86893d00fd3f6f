"""Known camera poses (``--pose_source=gt``): pose files and the relative poses of a sample's sources.

Pose files use the KITTI odometry format: one line per frame (in frame order) with the 12 numbers of
the row-major 3x4 ``[R | t]`` of ``world_from_camera`` (camera-to-world: it maps points in that
frame's camera coordinates into one fixed world frame), in metres. The built-in synthetic world
writes ``<drive>/poses.txt`` for camera 02, KITTI odometry ships ``poses/NN.txt`` for camera 0, and a
frame folder may carry a ``poses.txt`` of its camera.

The loss warps a source frame into the target view with ``source_from_target`` (see
`md2tf.geometry`), which for frames ``t`` (target) and ``s`` (source) of one camera is

    source_from_target = inv(world_from_camera[s]) @ world_from_camera[t]

(identity for ``s == t``). When the file describes another camera of a rigid rig (KITTI odometry:
camera 0, training camera 2 or 3), the relative pose of the training camera is the conjugate
``E @ source_from_target @ inv(E)`` with ``E = camera_from_reference``, the fixed transform from the
pose file's camera into the training camera. This module is NumPy only: it runs when samples are
listed, once per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Largest accepted deviation of a pose's rotation block from orthonormality, max |R^T R - I|:
#: poses written with 6 significant digits are orthonormal to ~1e-6, a scaled or sheared matrix is not.
ROTATION_TOLERANCE = 1e-3


def read_poses_file(path: str, expected_frames: int | None = None) -> np.ndarray:
    """Reads and validates a KITTI-odometry-format pose file.

    Args:
      path: text file, one line of 12 numbers (row-major 3x4 ``world_from_camera``) per frame;
        blank lines are not allowed between poses (the line number is the frame index).
      expected_frames: the number of frames the poses belong to (one line each), or None.

    Returns:
      float64 ``[N, 4, 4]`` ``world_from_camera`` per frame (last row ``[0, 0, 0, 1]``).

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: naming ``path`` (and the line) for a line without exactly 12 numbers, a non-finite
        value, a rotation block that is not a rotation, no poses at all, or a count that differs
        from ``expected_frames``.
    """
    poses = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing newline or two
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{path}:{number}: expected 12 numbers (a 3x4 camera-to-world pose), "
                             f"got {line.strip()[:60]!r}") from None
        if len(values) != 12:
            raise ValueError(f"{path}:{number}: expected 12 numbers (a 3x4 camera-to-world pose), "
                             f"got {len(values)}")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{path}:{number}: pose values must be finite, got {line.strip()[:80]!r}")
        pose = np.eye(4)
        pose[:3] = np.reshape(values, (3, 4))
        rotation = pose[:3, :3]
        error = np.abs(rotation.T @ rotation - np.eye(3)).max()
        if error > ROTATION_TOLERANCE or np.linalg.det(rotation) < 0:
            raise ValueError(f"{path}:{number}: the 3x3 block is not a rotation (max |R^T R - I| = "
                             f"{error:.3g}, det = {np.linalg.det(rotation):.3g})")
        poses.append(pose)
    if not poses:
        raise ValueError(f"{path}: no poses (expected one line of 12 numbers per frame)")
    if expected_frames is not None and len(poses) != expected_frames:
        raise ValueError(f"{path}: {len(poses)} poses for {expected_frames} frames (expected one "
                         "line per frame, in frame order)")
    return np.stack(poses)


def invert_rigid(transform: np.ndarray) -> np.ndarray:
    """Inverse of rigid ``[..., 4, 4]`` transforms: ``[R^T | -R^T t]``."""
    transform = np.asarray(transform, np.float64)
    rotation_t = np.swapaxes(transform[..., :3, :3], -1, -2)
    out = np.zeros_like(transform)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, transform[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def translation(offset: Sequence[float]) -> np.ndarray:
    """The float64 ``[4, 4]`` pure translation by ``offset`` (3 values)."""
    transform = np.eye(4)
    transform[:3, 3] = offset
    return transform


def source_from_target(world_from_camera: np.ndarray, target, source) -> np.ndarray:
    """``inv(world_from_camera[source]) @ world_from_camera[target]``: maps points in the target
    frame's camera into the source frame's.

    Args:
      world_from_camera: ``[N, 4, 4]`` rigid poses.
      target, source: frame indices (ints or integer arrays of one shape ``[...]``).

    Returns:
      float64 ``[..., 4, 4]``.
    """
    poses = np.asarray(world_from_camera, np.float64)
    return invert_rigid(poses[source]) @ poses[target]


def relative_poses(world_from_camera: np.ndarray, index: int, offsets: Sequence[int],
                   camera_from_reference: np.ndarray | None = None) -> np.ndarray:
    """``source_from_target`` of each temporal source of the target frame ``index``.

    Args:
      world_from_camera: ``[N, 4, 4]`` poses of the reference camera (the pose file's), per frame.
      index: the target frame.
      offsets: source offsets in frames (``index + offset`` must be a frame of the file).
      camera_from_reference: ``[4, 4]`` rigid transform from the reference camera into the camera
        the images come from (None = the same camera).

    Returns:
      float32 ``[len(offsets), 4, 4]``: for offset ``o``, ``inv(W[index + o]) @ W[index]``
      (conjugated by ``camera_from_reference``), mapping target-camera points into the source camera.

    Raises:
      IndexError: if a source frame is outside ``world_from_camera``.
    """
    count = len(world_from_camera)
    sources = np.asarray([index + offset for offset in offsets], np.int64)
    outside = [int(s) for s in sources if not 0 <= s < count]
    if outside or not 0 <= index < count:
        raise IndexError(f"frames {index} and {outside or list(sources)} need poses, the file has "
                         f"{count}")
    relative = source_from_target(world_from_camera, np.full_like(sources, index), sources)
    if camera_from_reference is not None:
        relative = camera_from_reference @ relative @ invert_rigid(camera_from_reference)
    return relative.astype(np.float32).reshape(len(sources), 4, 4)


def unknown_poses(num_offsets: int) -> np.ndarray:
    """float32 ``[num_offsets, 4, 4]`` of NaN: the relative poses of a sample without known poses."""
    return np.full((num_offsets, 4, 4), np.nan, np.float32)


def has_poses(source_from_target: np.ndarray | None) -> bool:
    """Whether a sample's ``temporal_source_from_target`` holds known (finite) poses."""
    return source_from_target is not None and bool(np.all(np.isfinite(source_from_target)))


def travelled(source_from_target: np.ndarray) -> np.ndarray:
    """float32 ``[T]``: metres between the target's and each source's camera centre, ``||t||`` of
    ``source_from_target`` ``[T, 4, 4]`` (the target's centre in the source's coordinates); NaN
    where the poses are unknown."""
    return np.linalg.norm(np.asarray(source_from_target, np.float64)[:, :3, 3], axis=-1).astype(np.float32)
