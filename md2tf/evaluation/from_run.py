"""Evaluation settings read from a run directory, so ``md2tf.evaluate --models runs/<name>`` needs no recipe.

A run's ``config.json`` knows its dataset and where it lives: the test split with GT is the one the
dataset declares (`gt_depth.evaluation_split`: ``synthetic`` with dense GT for the synthetic world,
``eigen`` with projected lidar for KITTI), and the data directory, split folders and image extension
are the run's. The network resolution comes with the checkpoint itself. Every setting given on the
command line wins over the run's.

This module must not import TensorFlow (it runs before the models are loaded).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection

from md2tf.config import EvalConfig, ExperimentConfig
from md2tf.evaluation import gt_depth
from md2tf.rundir import RunDir

#: ``EvalConfig`` fields a run directory fills in when the command line does not give them.
RUN_FIELDS = ("eval_split", "data_dir", "splits_dir", "image_ext")


def run_dir_of(model: str) -> str | None:
    """The run directory a ``--models`` entry belongs to, or None (exports, ``.npy`` files).

    Accepts a run directory, its ``best/`` folder and a checkpoint prefix inside either
    (``runs/x/checkpoints/ckpt-100``, ``runs/x/best/ckpt-90``).
    """
    if model.endswith((".npy", ".tflite")):
        return None
    path = os.path.abspath(model)
    candidates = [path, os.path.dirname(path)] if os.path.isdir(path) else []
    if not candidates and os.path.exists(path + ".index"):
        parent = os.path.dirname(path)
        candidates = [parent, os.path.dirname(parent)]
    for candidate in candidates:
        if RunDir(candidate).has_config():
            return candidate if candidate != path else model
    return None


def run_settings(run: ExperimentConfig) -> dict[str, str]:
    """The `RUN_FIELDS` values of a training run (``eval_split`` only where its dataset has GT)."""
    data = run.data
    values = {"data_dir": data.data_dir, "splits_dir": data.splits_dir, "image_ext": data.image_ext}
    split = gt_depth.evaluation_split(data.dataset)
    if split:
        values["eval_split"] = split
    return values


def with_run_defaults(config: EvalConfig, given: Collection[str]) -> tuple[EvalConfig, str]:
    """Fills the settings the command line left out from the ``config.json`` of a ``--models`` run.

    Args:
      config: the evaluation config as parsed.
      given: names of the flags given on the command line (they keep their values).

    Returns:
      ``(config, note)``: the completed config and a one-line note naming what was taken from which
      run (empty when nothing was).

    Raises:
      ValueError: two run directories among ``--models`` disagree on a setting none was given for.
    """
    if config.task != "depth":
        return config, ""
    found = [(m, d) for m in config.models if (d := run_dir_of(m)) is not None]
    if not found:
        return config, ""
    settings = [(model, run_settings(RunDir(run_dir).read_config())) for model, run_dir in found]
    first_model, values = settings[0]
    values = {k: v for k, v in values.items() if k in RUN_FIELDS and k not in given}
    for model, other in settings[1:]:
        for key in values:
            if other.get(key) != values[key]:
                raise ValueError(f"--models {first_model} and {model} were trained with different "
                                 f"--{key} ({values[key]!r} vs {other.get(key)!r}): give --{key}")
    changed = {k: v for k, v in values.items() if getattr(config, k) != v}
    if not changed:
        return config, ""
    shown = " ".join(f"--{k}={v}" for k, v in changed.items())
    return dataclasses.replace(config, **changed), f"settings of {first_model}: {shown}"
