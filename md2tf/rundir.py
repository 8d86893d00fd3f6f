"""The run directory: one object names every file a training run writes and every reader opens.

    <run_dir>/config.json      ExperimentConfig.to_dict(): replays the run by itself
    <run_dir>/flags.txt        the command line as a flagfile (--flagfile=<run_dir>/flags.txt)
    <run_dir>/checkpoints/     tf.train.CheckpointManager checkpoints (ckpt-<step>)
    <run_dir>/best/            the networks of the best validation epoch (ckpt-<step>, no optimizer)
                               and best.json (epoch, step, metric, value)
    <run_dir>/tensorboard/     summaries and profiler traces

This module must not import TensorFlow (the command-line entry points use it before TF starts).
"""

from __future__ import annotations

import dataclasses
import json
import os

from md2tf.config import ExperimentConfig


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths and config I/O of one run directory (``path`` need not exist yet)."""

    path: str

    CONFIG = "config.json"
    FLAGS = "flags.txt"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"
    BEST = "best"
    BEST_RECORD = "best.json"

    @property
    def config_path(self) -> str:
        return os.path.join(self.path, self.CONFIG)

    @property
    def flags_path(self) -> str:
        return os.path.join(self.path, self.FLAGS)

    @property
    def checkpoints(self) -> str:
        return os.path.join(self.path, self.CHECKPOINTS)

    @property
    def tensorboard(self) -> str:
        return os.path.join(self.path, self.TENSORBOARD)

    @property
    def best(self) -> str:
        """The folder of the best validation epoch's networks (a path ``--models``/``--checkpoint`` take)."""
        return os.path.join(self.path, self.BEST)

    def read_best(self) -> dict | None:
        """``best/best.json`` (``epoch``, ``step``, ``metric``, ``value``, ``checkpoint``), or None."""
        path = os.path.join(self.best, self.BEST_RECORD)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f)

    def write_best(self, record: dict) -> str:
        """Writes ``best/best.json`` atomically; returns its path."""
        os.makedirs(self.best, exist_ok=True)
        path = os.path.join(self.best, self.BEST_RECORD)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)
        return path

    def has_config(self) -> bool:
        return os.path.isfile(self.config_path)

    def write_config(self, config: ExperimentConfig) -> str:
        """Writes ``config.json`` atomically (temporary file + rename); returns its path."""
        os.makedirs(self.path, exist_ok=True)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(config.to_dict(), f, indent=2, sort_keys=True)
        os.replace(tmp, self.config_path)
        return self.config_path

    def read_config(self) -> ExperimentConfig:
        """Reads ``config.json``.

        Raises:
          FileNotFoundError: naming the file, when the directory was not written by md2tf.train.
        """
        if not self.has_config():
            raise FileNotFoundError(f"no {self.CONFIG} in run directory {self.path!r}: expected a directory "
                                    "written by `python -m md2tf.train --run_dir=...`")
        with open(self.config_path) as f:
            return ExperimentConfig.from_dict(json.load(f))

    def write_flags(self, text: str) -> str:
        """Writes ``flags.txt`` (the parsed command line as a flagfile); returns its path."""
        os.makedirs(self.path, exist_ok=True)
        with open(self.flags_path, "w") as f:
            f.write(text)
        return self.flags_path
