"""Built-in synthetic driving world, written in the KITTI raw layout (see README.md here).

Public API:
  `WorldConfig`: the world's parameters (`md2tf.config`; training's `DataConfig.synthetic`).
  `ensure_world(out_dir, config) -> out_dir`: generate once (manifest written last).
  `generate_world(out_dir, config)`: generate unconditionally.
  `make_drive`, `render_view`, `lidar_scan`, `kitti_like_intrinsics`, `camera_intrinsics`: building
  blocks (tests, tools).
CLI: ``python -m md2tf.data.synthetic --out DIR [--drives N --frames M --height H --width W --seed S]``.
"""

from md2tf.data.kitti_layout import read_calib_file
from md2tf.data.synthetic.lidar import scan as lidar_scan
from md2tf.data.synthetic.render import RenderOutput, render_view
from md2tf.data.synthetic.world import (
    Drive,
    WorldConfig,
    camera_intrinsics,
    kitti_like_intrinsics,
    make_drive,
)
from md2tf.data.synthetic.writer import (
    MANIFEST,
    SPLIT_NAME,
    ensure_world,
    generate_world,
    split_roles,
)

__all__ = [
    "MANIFEST",
    "SPLIT_NAME",
    "Drive",
    "RenderOutput",
    "WorldConfig",
    "ensure_world",
    "generate_world",
    "camera_intrinsics",
    "kitti_like_intrinsics",
    "lidar_scan",
    "make_drive",
    "read_calib_file",
    "render_view",
    "split_roles",
]
