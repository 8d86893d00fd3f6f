"""Camera geometry for md2tf: pure TensorFlow functions, float32 by default (float64 works too).

Conventions (fixed here, used by every package):

* Tensors are NHWC. Images are RGB floats in [0, 1], ``[B, H, W, 3]``.
* Depth is ``[B, H, W, 1]``, camera z (distance along the optical axis) in training units (metres for
  real-scale data; stereo-trained KITTI models use a 0.1 baseline, so depth x 5.4 = metres).
* Disparity from the network is a sigmoid in [0, 1]; ``disp_to_depth`` maps it to
  ``[min_depth, max_depth]``.
* Pixel coordinates ``(u, v)`` = (column, row) with **integer values at pixel centres**:
  ``u in [0, W-1]``, ``v in [0, H-1]``; no ``+0.5`` and no ``align_corners`` normalisation anywhere.
  ``bilinear_sample`` clamps to that range (border padding); identity coordinates are exact.
* Camera frame: x right, y down, z forward. Intrinsics ``K`` are ``[B, 3, 3]`` in pixels of the image
  they are used with; pyramid level s uses ``scale_intrinsics_to_level(K, s)`` (rows 0, 1 / 2^s).
* Poses are 4x4 rigid transforms named by the frames they map between: ``source_from_target`` maps
  points in target-camera coordinates to source-camera coordinates (``X_s = T @ X_t``). It is what
  warping a source image into the target view needs. For a temporal source at offset f < 0 the pose
  network sees ``[I_f, I_0]`` and its output is inverted (``pose_to_matrix(..., invert=True)``); for
  f > 0 it sees ``[I_0, I_f]`` and is not inverted; both give ``source_from_target``. Known camera
  poses (``--pose_source=gt``) give it as ``inv(world_from_source) @ world_from_target``, and a
  horizontal image flip turns any of these into ``mirror_x(T) = F T F`` with ``F = diag(-1, 1, 1, 1)``.
"""

from md2tf.geometry.camera import (
    intrinsics_matrix,
    invert_intrinsics,
    mirror_principal_point,
    scale_intrinsics,
    scale_intrinsics_to_level,
)
from md2tf.geometry.depth import disp_to_depth, disp_to_depth_coefficients
from md2tf.geometry.projection import backproject, pixel_grid, project, warp
from md2tf.geometry.sampling import bilinear_sample
from md2tf.geometry.transforms import (
    axis_angle_to_matrix,
    mirror_x,
    pose_to_matrix,
    rigid_transform,
)

__all__ = [
    "axis_angle_to_matrix",
    "backproject",
    "bilinear_sample",
    "disp_to_depth",
    "disp_to_depth_coefficients",
    "intrinsics_matrix",
    "invert_intrinsics",
    "mirror_principal_point",
    "mirror_x",
    "pixel_grid",
    "pose_to_matrix",
    "project",
    "rigid_transform",
    "scale_intrinsics",
    "scale_intrinsics_to_level",
    "warp",
]
