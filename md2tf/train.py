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
import shlex
import sys

from md2tf import flags as md2tf_flags
from md2tf.config import ConfigError, ExperimentConfig
from md2tf.evaluation import gt_depth
from md2tf.rundir import RunDir


def _duration(seconds: float) -> str:
    """``1 h 02 min``, ``12 min 05 s`` or ``48 s``."""
    seconds = round(seconds)
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def run_summary(config, result) -> str:
    """The block printed when training ends: what the run reached and the next commands.

    Args:
      config: the run's ``ExperimentConfig``.
      result: the ``md2tf.training.trainer.TrainResult`` of the run.

    Returns:
      Lines: steps, epochs and wall time; the last validation; the best epoch and where its networks
      are; the checkpoint and TensorBoard paths; the tensorboard, evaluate and export commands with
      this run's paths (evaluate only where the dataset has a test split with GT).
    """
    from md2tf.training.hooks import validation_line  # noqa: PLC0415  (TF after flag parsing)

    run = RunDir(config.train.run_dir)
    lines = [f"training {result.reason}: step {result.step}, epoch {result.epoch} of "
             f"{config.train.num_epochs}, {_duration(result.wall_time_s)}"]
    if result.validations:
        epoch, step, results = result.validations[-1]
        lines.append(f"  last validation: epoch {epoch} (step {step}): {validation_line(results)}")
    if result.best:
        best = result.best
        name = best["metric"].split("/")[-1].replace("total", "val loss")
        lines.append(f"  best epoch:      {best['epoch']} ({name} {best['value']:.3f}), networks in "
                     f"{run.best}")
    for camera, (fx, fy, cx, cy) in (result.learned_intrinsics or {}).items():
        lines.append(f"  learned K:       {camera}: fx {fx:.4f} fy {fy:.4f} cx {cx:.4f} cy {cy:.4f} "
                     f"(normalised), in {run.learned_intrinsics_path}")
    lines.append(f"  checkpoint:      {result.checkpoint}")
    lines.append(f"  TensorBoard:     {run.tensorboard}")
    # The commands are meant to be pasted into a shell: paths with spaces or quotes are quoted.
    quote = shlex.quote
    lines += [f"warning: {w}" for w in result.warnings]
    lines += ["next:", f"  tensorboard --logdir {quote(run.tensorboard)}"]
    if gt_depth.evaluation_split(config.data.dataset):
        models = run.path + (f",{run.best}" if result.best and result.best["step"] != result.step
                             else "")
        lines.append(f"  python -m md2tf.evaluate --models {quote(models)}")
    name = os.path.basename(os.path.normpath(run.path)) or "model"
    lines.append(f"  python -m md2tf.export --checkpoint {quote(run.path)} "
                 f"--out {quote(os.path.join('export', name))}")
    return "\n".join(lines)


def main(config: ExperimentConfig, flag_values) -> int:
    if not config.train.run_dir:
        raise ConfigError("--run_dir is required (e.g. --run_dir=runs/synthetic)")
    run = RunDir(config.train.run_dir)
    run.check_writable()  # before TF starts: a file in its place or a read-only disk end here
    run.resumed_changes(config)  # and so does a resume with other networks or data
    from md2tf.training import distribute, inputs, trainer  # noqa: PLC0415  (TF after flag parsing)

    # The strategy before any other TF op (MultiWorkerMirroredStrategy configures collectives).
    strategy = distribute.select_strategy(config.train.strategy)
    inputs.check_data_available(config)
    chief = distribute.is_chief()  # other workers write only into their own temporary folders
    with run.lock() if chief else contextlib.nullcontext():
        if chief:
            run.record(config, flag_values.flags_into_string())
        inputs.prepare_data(config)
        result = trainer.Trainer(config, strategy=strategy).train()
    if distribute.is_chief():
        print(run_summary(config, result), flush=True)
    if result.reason == "nonfinite":
        print(f"error: stopped after {config.train.max_nonfinite_steps} consecutive non-finite losses "
              f"at step {result.step}; last checkpoint {result.checkpoint}", file=sys.stderr)
        return 1
    return 0


def run() -> None:
    md2tf_flags.run_command(main, ExperimentConfig, __doc__)


if __name__ == "__main__":
    run()
