"""``python -m md2tf.export_gt --split eigen --data_dir DIR [--splits_dir DIR]``: GT depth maps.

Writes ``<splits_dir>/<split>/gt_depths.npz`` (keys ``depth_000000, ...``: float32 ``[H, W]`` maps in
metres, no pickled objects) from velodyne scans (``eigen``), depth-annotated PNGs (``eigen_benchmark``)
or the synthetic world's dense maps (``--gt_source dense``). See `md2tf.evaluation.gt_depth`.
"""

from __future__ import annotations

import os

from absl import app

from md2tf import cli
from md2tf import flags as md2tf_flags


def main(argv) -> None:
    del argv
    from md2tf.evaluation import gt_depth  # noqa: PLC0415
    from md2tf.evaluation.runner import Progress  # noqa: PLC0415

    config = md2tf_flags.export_gt_config_from_flags()
    splits_dir = config.splits_dir or os.path.join(config.data_dir, "splits")
    count = len(gt_depth.read_split_file(os.path.join(splits_dir, config.split, "test_files.txt")))
    path = gt_depth.export_gt_depths(config.split, config.data_dir, splits_dir, config.gt_source,
                                     config.output, progress=Progress(count, f"GT {config.split}"))
    print(f"wrote {count} ground-truth maps to {path}")


if __name__ == "__main__":
    md2tf_flags.define_export_gt_flags()
    app.run(cli.main(main))
