"""``--dataset=kitti``: KITTI raw, listed by split files (Eigen-Zhou for training, Sec. 4 of the paper).

Layout and reader: `md2tf.data.kitti_layout`. Training-time metrics use the Eigen protocol (Garg crop,
depth capped at 80 m); evaluation reads projected lidar for ``eigen`` and the depth-annotated PNGs
for ``eigen_benchmark``. KITTI raw has GPS/IMU, not camera poses: ``--pose_source=gt`` needs
another dataset (``kitti_odom``, ``synthetic``, or a ``folder`` with ``poses.txt``).
"""

from __future__ import annotations

from md2tf.config import KITTI_BASELINE_M
from md2tf.data.datasets.base import SplitFileDataset

DATASET = SplitFileDataset(
    name="kitti",
    layout="<data_dir>/<date>/<date>_drive_<nnnn>_sync/image_0{2,3}/data/<index:010d>.jpg "
           "(+ calib_cam_to_cam.txt per date)",
    how_to_get="Download KITTI raw with scripts/download_kitti.py (about 175 GB)",
    default_split="eigen_zhou",  # the paper's training split (Zhou et al.'s, Sec. 4)
    eval_split="eigen",
    gt_sources={"eigen": "velodyne", "eigen_benchmark": "png"},
    baseline_m=KITTI_BASELINE_M,
)
