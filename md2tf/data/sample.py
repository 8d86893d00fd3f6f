"""`Sample`: the dataset-independent description of one training or evaluation sample.

Every dataset in `md2tf.data.datasets` lists its samples as this NamedTuple; the tf.data pipeline
(`md2tf.data.pipeline`) and the TFDS builders (`md2tf.tfds.builders`) read nothing else.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Sample(NamedTuple):
    """Validated file paths and camera data of one training/evaluation sample.

    Attributes:
      target: path of the target image.
      sources: paths of the source images: temporal offsets in the configured order, then the
        stereo partner (if used).
      intrinsics: ``[3, 3]`` float32 K normalised by the image size (row 0 / W, row 1 / H).
      side_sign: -1.0 for a left (camera 2) target, +1.0 for a right one (sign of the stereo
        translation before flipping); +1.0 when there is no side.
      depth_gt: path of a dense ``.npy`` GT depth map, or ``""`` when none exists.
      name: a readable id (``"<folder> <index> <side>"``) for logs and predictions.
      velodyne: the frame's lidar scan ``velodyne_points/data/{index:010d}.bin`` when there is no
        dense GT but a scan and both calibration files exist (KITTI raw); ``""`` otherwise.
      velo_projection: ``[3, 4]`` float32 ``P_rect_0X @ R_rect_00 @ velo_to_cam`` (lidar -> pixels
        of the raw image) when ``velodyne`` is set, zeros otherwise.
      temporal_source_from_target: float32 ``[T, 4, 4]``, one rigid transform per temporal offset
        (``DataConfig.temporal_offsets`` order; not the stereo partner): ``source_from_target`` from
        the dataset's known camera poses (`md2tf.data.poses`), in metres; NaN where the dataset has
        no poses for the sample. None (= unknown) for samples listed without poses.
      camera: the camera that took the target (one K per camera with ``--intrinsics=learned``):
        ``<date>/image_0X`` for KITTI raw and the synthetic world, ``<sequence>/image_0X`` for
        KITTI odometry, the frame folder (relative to ``data_dir``, or the folder's own name) for
        a folder of frames, the clip's file name for a decoded video (all its runs); ``""`` when
        unknown.
      temporal_distance: float32 ``[T]`` metres the camera travelled between the target and each
        temporal source (`md2tf.data.speeds`: known poses, KITTI oxts or ``speeds.csv``), the velocity
        loss's supervision; NaN where unknown. None (= unknown) for samples listed without.
    """

    target: str
    sources: tuple[str, ...]
    intrinsics: np.ndarray
    side_sign: float
    depth_gt: str
    name: str
    velodyne: str = ""
    velo_projection: np.ndarray = np.zeros((3, 4), np.float32)
    temporal_source_from_target: np.ndarray | None = None
    camera: str = ""
    temporal_distance: np.ndarray | None = None

