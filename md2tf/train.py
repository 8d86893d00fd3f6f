"""Train Monodepth2: ``python -m md2tf.train --flagfile=configs/<name>.flags --run_dir=runs/<name>``.

A first run without KITTI: ``python -m md2tf.train --flagfile=configs/synthetic.flags
--run_dir=runs/synthetic`` generates the synthetic world on first use and trains on it on the CPU.
The run directory gets ``flags.txt`` (replay with ``--flagfile=<run_dir>/flags.txt``), ``config.json``,
``checkpoints/`` and ``tensorboard/``; ``--resume`` (default) continues from its latest checkpoint.
"""

from __future__ import annotations

import os
import sys

from absl import app, logging

from md2tf import cli
from md2tf import flags as md2tf_flags

FLAGS = md2tf_flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from md2tf.training import distribute, trainer

    config = md2tf_flags.experiment_config_from_flags(FLAGS)
    if not config.train.run_dir:
        raise app.UsageError("--run_dir is required (e.g. --run_dir=runs/synthetic)")
    # The strategy before any other TF op (MultiWorkerMirroredStrategy configures collectives).
    strategy = distribute.select_strategy(config.train.strategy)
    trainer.check_data_available(config)
    if distribute.is_chief():
        os.makedirs(config.train.run_dir, exist_ok=True)
        with open(os.path.join(config.train.run_dir, "flags.txt"), "w") as f:
            f.write(FLAGS.flags_into_string())
    trainer.ensure_synthetic_world(config, **md2tf_flags.synthetic_world_from_flags(FLAGS))
    result = trainer.Trainer(config, strategy=strategy).train()
    logging.info("training ended (%s) at step %d, epoch %d; checkpoint %s", result.reason,
                 result.step, result.epoch, result.checkpoint)
    if result.reason == "nonfinite":
        print(f"error: stopped after {config.train.max_nonfinite_steps} consecutive non-finite losses "
              f"at step {result.step}; last checkpoint {result.checkpoint}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    md2tf_flags.define_train_flags()
    app.run(cli.main(main))


if __name__ == "__main__":
    run()
