r"""``python -m md2tf.evaluate``: depth metrics (Eigen protocol) or odometry ATE for one or more models.

A run directory by itself: its ``config.json`` gives the test split with GT, the data directory and
the image extension (flags given on the command line win); a missing ``gt_depths.npz`` is written
first from the GT source the dataset declares (dense maps for the synthetic world)::

    python -m md2tf.evaluate --models runs/synthetic

Depth, e.g. a checkpoint, a TFLite variant and the official published disparities in one table::

    python -m md2tf.evaluate --data_dir DIR --splits_dir DIR --eval_split eigen \
        --models runs/mono,exports/mono_int8.tflite,official/disps_eigen_split.npy

KITTI depth benchmark submission (``splits/benchmark`` lists ``image N``; no GT, no scores): writes
``<output_dir>/<name>/<N:010d>.png`` = ``uint16(clip(5.4 / resize(disp, 1216x352), 0, 80) * 256)``::

    python -m md2tf.evaluate --eval_split benchmark --splits_dir DIR --image_ext .png \
        --data_dir <depth_selection>/test_depth_prediction_anonymous --models runs/stereo --output_dir OUT

Odometry (pose network of a run)::

    python -m md2tf.evaluate --task odometry --eval_split odom_9 --data_dir ODOM_DIR --models runs/mono

``--pose_refine_steps=100`` adds each model's poses refined by photometric alignment with its own
depth (`md2tf.evaluation.pose_refinement`) as a second row; ``--pose_refine_length_only`` refines
only each step's length and keeps the pose network's rotation and direction.

The library lives in `md2tf.evaluation`; this module only parses flags.
"""

from __future__ import annotations

import sys

from md2tf import flags as md2tf_flags
from md2tf.config import EvalConfig
from md2tf.evaluation import from_run


def main(config: EvalConfig, flag_values) -> int:
    given = {name for name in from_run.RUN_FIELDS if flag_values[name].present}
    config, note = from_run.with_run_defaults(config, given)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    from md2tf.evaluation import runner  # noqa: PLC0415  (TF after flag parsing)

    try:
        print(runner.run_evaluation(config))
    except runner.EvaluationFailed as failure:  # the table first, then why the exit status is 1
        print(failure.report)
        print(f"error: {md2tf_flags.one_line(failure)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    md2tf_flags.run_command(main, EvalConfig, __doc__)
