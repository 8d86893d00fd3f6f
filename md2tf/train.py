"""Train Monodepth2: ``python -m md2tf.train --flagfile=configs/<name>.flags --run_dir=runs/<name>``.

A first run without KITTI: ``python -m md2tf.train --flagfile=configs/synthetic.flags
--run_dir=runs/synthetic`` generates the synthetic world on first use and trains on it on the CPU.
The run directory gets ``flags.txt`` (replay with ``--flagfile=<run_dir>/flags.txt``), ``config.json``,
``checkpoints/`` (the latest ``--keep_checkpoints``), ``best/`` (the networks of the best validation
epoch) and ``tensorboard/``; ``--resume`` (default) continues from its latest checkpoint. The run ends
with a summary on stdout: last validation, best epoch, wall time, paths and the next commands.
"""

from __future__ import annotations

import contextlib
import os
import sys

from md2tf import flags as md2tf_flags
from md2tf import locks
from md2tf.config import ConfigError, ExperimentConfig
from md2tf.rundir import RunDir


def hold_run_dir(run_dir: str) -> contextlib.AbstractContextManager[str]:
    """The lock of one training's run directory, ``<run_dir>/.lock`` (`md2tf.locks.hold`).

    Two trainings writing one run directory would interleave their event files and checkpoints,
    and a starting one removes the ``*_temp`` folder of a save in progress; the second fails at
    once with one line naming the holder's PID.
    """
    return locks.hold(os.path.join(run_dir, ".lock"), f"--run_dir={run_dir}",
                      "another training writes there: wait for it to end, or choose another "
                      "--run_dir")


def main(config: ExperimentConfig, flag_values) -> int:
    if not config.train.run_dir:
        raise ConfigError("--run_dir is required (e.g. --run_dir=runs/synthetic)")
    run = RunDir(config.train.run_dir)
    run.check_writable()  # before TF starts: a file in its place or a read-only disk end here
    run.resumed_changes(config)  # and so does a resume with other networks or data
    from md2tf.training import distribute, trainer  # noqa: PLC0415  (TF after flag parsing)

    # The strategy before any other TF op (MultiWorkerMirroredStrategy configures collectives).
    strategy = distribute.select_strategy(config.train.strategy)
    trainer.check_data_available(config)
    chief = distribute.is_chief()  # other workers write only into their own temporary folders
    with hold_run_dir(config.train.run_dir) if chief else contextlib.nullcontext():
        if chief:
            run.record(config, flag_values.flags_into_string())
        trainer.prepare_data(config)
        result = trainer.Trainer(config, strategy=strategy).train()
    if distribute.is_chief():
        from md2tf.training import hooks  # noqa: PLC0415

        print(hooks.run_summary(config, result), flush=True)
    if result.reason == "nonfinite":
        print(f"error: stopped after {config.train.max_nonfinite_steps} consecutive non-finite losses "
              f"at step {result.step}; last checkpoint {result.checkpoint}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    md2tf_flags.run_command(main, ExperimentConfig, __doc__)


if __name__ == "__main__":
    run()
