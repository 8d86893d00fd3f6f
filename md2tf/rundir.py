"""The run directory: one object names every file a training run writes and every reader opens.

    <run_dir>/config.json      ExperimentConfig.to_dict(): replays the run by itself
    <run_dir>/flags.txt        the command line as a flagfile (--flagfile=<run_dir>/flags.txt)
    <run_dir>/config.resume-<step>.json, flags.resume-<step>.txt
                               the settings of a resume at checkpoint <step> that changed resumable
                               settings (config.json and flags.txt keep the first record)
    <run_dir>/checkpoints/     tf.train.CheckpointManager checkpoints (ckpt-<step>)
    <run_dir>/best/            the networks of the best validation epoch (ckpt-<step>, no optimizer)
                               and best.json (epoch, step, metric, value)
    <run_dir>/tensorboard/     summaries and profiler traces
    <run_dir>/.lock            held by the training that writes the directory (`RunDir.lock`)
    <run_dir>/intrinsics_learned.json
                               the cameras' K of an --intrinsics=learned run, in the format of
                               --dataset=folder's intrinsics.json

A resumed run (``--resume`` and a checkpoint in ``checkpoints/``) is compared with ``config.json``
before it builds anything: a setting not declared ``resumable`` in ``md2tf.config`` (the networks,
the data, the objective) must be unchanged, and the others are recorded beside the first record.

This module must not import TensorFlow (the command-line entry points use it before TF starts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import tempfile
from typing import Any

from md2tf import locks
from md2tf.config import ConfigError, ExperimentConfig, SettingChange, changed_settings

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunDir:
    """Paths and config I/O of one run directory (``path`` need not exist yet)."""

    path: str

    CONFIG = "config.json"
    FLAGS = "flags.txt"
    RESUME_CONFIG = "config.resume-{step}.json"
    RESUME_FLAGS = "flags.resume-{step}.txt"
    CHECKPOINTS = "checkpoints"
    TENSORBOARD = "tensorboard"
    BEST = "best"
    BEST_RECORD = "best.json"
    LOCK = ".lock"
    LEARNED_INTRINSICS = "intrinsics_learned.json"

    def lock(self) -> contextlib.AbstractContextManager[str]:
        """The lock of the training that writes this directory (`md2tf.locks.hold` on `LOCK`).

        Two trainings writing one run directory would interleave their event files and
        checkpoints, and a starting one removes the ``*_temp`` folder of a save in progress; the
        second fails at once with one line naming the holder's PID.
        """
        return locks.hold(os.path.join(self.path, self.LOCK), f"--run_dir={self.path}",
                          "another training writes there: wait for it to end, or choose another "
                          "--run_dir")

    @property
    def learned_intrinsics_path(self) -> str:
        return os.path.join(self.path, self.LEARNED_INTRINSICS)

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

    def write_config(self, config: ExperimentConfig, path: str | None = None) -> str:
        """Writes ``config.json`` (or ``path``) atomically (temporary file + rename); returns the
        path."""
        os.makedirs(self.path, exist_ok=True)
        path = path or self.config_path
        with open(path + ".tmp", "w") as f:
            json.dump(config.to_dict(), f, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)
        return path

    def read_config(self) -> ExperimentConfig:
        """Reads ``config.json``.

        Raises:
          FileNotFoundError: naming the file, when the directory was not written by md2tf.train.
          ValueError: naming the file, when it is not a config this version can read.
        """
        if not self.has_config():
            raise FileNotFoundError(f"no {self.CONFIG} in run directory {self.path!r}: expected a directory "
                                    "written by `python -m md2tf.train --run_dir=...`")
        try:
            with open(self.config_path) as f:
                return ExperimentConfig.from_dict(json.load(f))
        except (ValueError, TypeError, AttributeError) as e:  # bad JSON, unknown keys or values
            raise ValueError(f"{self.config_path} is not a readable md2tf config: "
                             f"{' '.join(str(e).split())}") from e

    def write_flags(self, text: str, path: str | None = None) -> str:
        """Writes ``flags.txt`` (or ``path``): the parsed command line as a flagfile; returns the
        path."""
        os.makedirs(self.path, exist_ok=True)
        path = path or self.flags_path
        with open(path, "w") as f:
            f.write(text)
        return path

    def check_writable(self) -> None:
        """Fails with one line naming ``--run_dir`` unless the run directory can be written.

        Creates the directory when missing and writes (and removes) a probe file in it, so that a
        file in its place, a read-only file system or missing permissions end the command at
        start-up instead of in the middle of a checkpoint.

        Raises:
          ValueError: naming ``--run_dir`` and the reason.
        """
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"--run_dir={self.path} is a file, not a directory: give a directory "
                             "(it is created when missing)")
        try:
            os.makedirs(self.path, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=self.path)
            os.close(fd)
            os.remove(probe)
        except OSError as e:
            why = e.strerror or type(e).__name__
            raise ValueError(f"--run_dir={self.path} cannot be written ({why}): give a directory "
                             "you can write to") from e

    def latest_checkpoint_step(self) -> int | None:
        """The step of the newest complete checkpoint in ``checkpoints/`` (its ``.index`` file is
        written last), or None."""
        try:
            names = os.listdir(self.checkpoints)
        except OSError:
            return None
        matches = map(re.compile(r"ckpt-(\d+)\.index").fullmatch, names)
        steps = [int(m.group(1)) for m in matches if m]
        return max(steps, default=None)

    def resume_step(self, config: ExperimentConfig) -> int | None:
        """The checkpoint step ``config`` resumes at: ``--resume``, a ``config.json`` and a
        checkpoint; None for a run that starts from scratch."""
        if not (config.train.resume and self.has_config()):
            return None
        return self.latest_checkpoint_step()

    def resumed_changes(self, config: ExperimentConfig) -> list[SettingChange]:
        """The settings in which a resumed run differs from the run's ``config.json``.

        Returns:
          The changed settings, all declared ``resumable`` (empty when nothing changed or the run
          starts from scratch).

        Raises:
          ConfigError: one line listing every changed setting that is not resumable (they change
            the networks, the data or the objective, which the checkpoints were trained with).
        """
        if self.resume_step(config) is None:
            return []
        changes = changed_settings(self.read_config(), config)
        fixed = [c for c in changes if not c.resumable]
        if fixed:
            listed = "; ".join(f"--{c.name}: {_flag_value(c.recorded)} in the run's {self.CONFIG}, "
                               f"{_flag_value(c.now)} now" for c in fixed)
            raise ConfigError(f"--run_dir={self.path} holds a run trained with other settings "
                              f"({listed}); the checkpoints fit only those: start a new --run_dir, "
                              "or drop these flags to resume the run")
        return changes

    def record(self, config: ExperimentConfig, flags_text: str | None = None) -> str:
        """Records the settings of the run starting now; the first record is never overwritten.

        A run from scratch writes ``config.json`` (and ``flags.txt``). A resumed run is checked with
        `resumed_changes`; when resumable settings changed, they go to
        ``config.resume-<step>.json`` (and ``flags.resume-<step>.txt``) and are logged. Calling it
        again with the same config writes nothing more.

        Args:
          config: the run's settings.
          flags_text: the command line as a flagfile (``FlagValues.flags_into_string()``), or None.

        Returns:
          The path of the config file that describes the run from now on.

        Raises:
          ConfigError: a resumed run changed a setting that is not resumable.
        """
        step = self.resume_step(config)
        if step is None:
            if flags_text is not None:
                self.write_flags(flags_text)
            return self.write_config(config)
        changes = self.resumed_changes(config)
        if not changes:
            return self.config_path
        path = os.path.join(self.path, self.RESUME_CONFIG.format(step=step))
        if flags_text is not None:
            self.write_flags(flags_text,
                             os.path.join(self.path, self.RESUME_FLAGS.format(step=step)))
        if _read_json(path) != json.loads(json.dumps(config.to_dict())):
            self.write_config(config, path)
            listed = "; ".join(f"--{c.name}={_flag_value(c.now)}, was {_flag_value(c.recorded)}"
                               for c in changes)
            logger.warning("resuming at step %d with other settings (%s): recorded in %s", step,
                           listed, path)
        return path


def _flag_value(value: Any) -> str:
    """A setting's value as written on the command line (lists comma-separated)."""
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        value = ",".join(map(str, value))
    return str(value) if value != "" else "''"


def _read_json(path: str) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
