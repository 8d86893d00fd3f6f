"""``--dataset=kitti_odom``: the KITTI odometry sequences, listed by split files (split ``odom``).

Layout and reader: `md2tf.data.kitti_layout` (``sequences/<nn>/image_{2,3}/<index:06d>``, ``calib.txt``).
The odometry benchmark has no depth GT; ``md2tf.evaluate --task=odometry`` scores poses instead.
Camera poses (``--pose_source=gt``) come from ``<data_dir>/poses/NN.txt`` (camera 0, sequences 00-10),
moved to camera 2 or 3 with the calibration's ``P2``/``P3``; other sequences have none.
"""

from __future__ import annotations

from md2tf.config import KITTI_BASELINE_M
from md2tf.data.datasets.base import SplitFileDataset

DATASET = SplitFileDataset(
    name="kitti_odom",
    layout="<data_dir>/sequences/<nn>/image_{2,3}/<index:06d>.png (+ sequences/<nn>/calib.txt, "
           "optional poses/<nn>.txt)",
    how_to_get="Download the KITTI odometry colour images and calibration (cvlibs.net) and the split "
               "files (scripts/download_kitti.py --splits_only)",
    default_split="odom",
    eval_split="odom",
    poses="odometry",
    baseline_m=KITTI_BASELINE_M,
)
