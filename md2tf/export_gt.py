"""``python -m md2tf.export_gt --split eigen --data_dir DIR [--splits_dir DIR]``: GT depth maps.

Writes ``<splits_dir>/<split>/gt_depths.npz`` (keys ``depth_000000, ...``: float32 ``[H, W]`` maps in
metres, no pickled objects) from velodyne scans (``eigen``), depth-annotated PNGs (``eigen_benchmark``)
or the synthetic world's dense maps (``--gt_source dense``). See `md2tf.evaluation.gt_depth`.
"""

from __future__ import annotations

import os

from md2tf import flags as md2tf_flags
from md2tf.config import ExportGtConfig
from md2tf.data import splits
from md2tf.evaluation import gt_depth
from md2tf.progress import Progress


def main(config: ExportGtConfig, flag_values) -> None:
    del flag_values
    splits_dir = splits.splits_dir(config.data_dir, config.splits_dir)
    count = len(splits.read_split(os.path.join(splits_dir, config.split, "test_files.txt"), kind="raw"))
    with Progress(count, f"GT {config.split}", unit="map") as bar:
        path = gt_depth.export_gt_depths(config.split, config.data_dir, splits_dir, config.gt_source,
                                         config.output, progress=bar)
    print(f"wrote {count} ground-truth maps to {path}")


if __name__ == "__main__":
    md2tf_flags.run_command(main, ExportGtConfig, __doc__)
