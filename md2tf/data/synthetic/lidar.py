"""Simulated 64-beam lidar (HDL-64E-like) for the synthetic world, in the KITTI velodyne frame.

The velodyne frame has x forward, y left, z up. Its origin sits 8 cm above and 27 cm behind camera 00
(KITTI rig), i.e. at ``(0.06, -0.08, -0.27)`` in camera-02 coordinates, and its axes map to the camera
axes by ``x_cam = -y_velo, y_cam = -z_velo, z_cam = x_velo`` (`VELO_TO_CAM_R`). The scan is taken at
the frame's instant (no rolling sweep) and has no range noise, so lidar points and dense GT depth agree.
"""

from __future__ import annotations

import numpy as np

from md2tf.data.synthetic import render
from md2tf.data.synthetic import world as w

# x_cam = R @ x_velo + T (T = velodyne origin in camera-00 coordinates).
VELO_TO_CAM_R = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
VELO_TO_CAM_T = np.array(w.VELO_IN_CAM0_M)
# HDL-64E vertical field of view: +2 to -24.8 degrees.
ELEVATION_RANGE_DEG = (2.0, -24.8)


def street_from_velo(drive: w.Drive, frame: int) -> np.ndarray:
    """``[4, 4]`` transform mapping velodyne points into the street frame at ``frame``."""
    cam0_from_velo = np.eye(4)
    cam0_from_velo[:3, :3] = VELO_TO_CAM_R
    cam0_from_velo[:3, 3] = VELO_TO_CAM_T
    cam2_from_cam0 = np.eye(4)
    cam2_from_cam0[0, 3] = -w.CAM2_OFFSET_FROM_CAM0_M
    return drive.street_from_camera(frame, 2) @ cam2_from_cam0 @ cam0_from_velo


def scan(drive: w.Drive, frame: int, beams: int = 64, azimuth_step_deg: float = 0.2,
         max_range: float = 120.0, boxes: w.Boxes | None = None) -> np.ndarray:
    """One 360-degree sweep at ``frame``.

    Args:
      drive: the drive.
      frame: frame index.
      beams: number of beams, evenly spaced over `ELEVATION_RANGE_DEG`.
      azimuth_step_deg: horizontal step in degrees.
      max_range: returns beyond this range (metres) are dropped, like sky rays.
      boxes: ``drive.boxes_at(frame)`` if already computed.

    Returns:
      ``[N, 4]`` float32 (x, y, z, reflectance) in the velodyne frame, metres; reflectance in [0, 1].
    """
    boxes = drive.boxes_at(frame) if boxes is None else boxes
    elev = np.radians(np.linspace(ELEVATION_RANGE_DEG[0], ELEVATION_RANGE_DEG[1], beams))
    n_az = int(round(360.0 / azimuth_step_deg))
    az = np.radians(np.arange(n_az) * (360.0 / n_az) - 180.0)
    a, e = np.meshgrid(az, elev, indexing="ij")  # [n_az, beams]
    d_velo = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)
    pose = street_from_velo(drive, frame)
    per_group = max(1, 512 // beams)
    n_groups = -(-n_az // per_group)
    pad = n_groups * per_group - n_az
    d_pad = np.concatenate([d_velo, d_velo[:pad]], axis=0) if pad else d_velo
    groups = (d_pad @ pose[:3, :3].T).reshape(n_groups, per_group * beams, 3)
    hits = render.cast_rays(pose[:3, 3], groups, boxes, drive.camera_height)
    t = hits.t.reshape(-1)[: n_az * beams]
    box = hits.box.reshape(-1)[: n_az * beams]
    keep = np.isfinite(t) & (t <= max_range)
    pts = d_velo.reshape(-1, 3)[keep] * t[keep, None]
    refl = np.where(box[keep] >= 0, boxes.color[np.maximum(box[keep], 0)].mean(axis=-1), 0.3)
    return np.concatenate([pts, refl[:, None]], axis=1).astype(np.float32)
