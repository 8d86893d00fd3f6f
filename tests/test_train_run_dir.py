"""``python -m md2tf.train`` refuses an unusable ``--run_dir`` and a resume with other network or
data settings at start-up: one line, exit status 2, before TensorFlow work, the record kept."""

from __future__ import annotations

import errno
import os
import sys
import tempfile

import pytest

from md2tf import flags as md2tf_flags
from md2tf import train
from md2tf.config import ExperimentConfig, TrainConfig
from md2tf.rundir import RunDir


def run_train(*args: str) -> int:
    return md2tf_flags.call_command(train.main, ExperimentConfig, list(args))


@pytest.fixture
def no_training(monkeypatch):
    """Any import of md2tf.training (TensorFlow work) fails the test."""
    monkeypatch.setitem(sys.modules, "md2tf.training", None)


def test_run_dir_that_is_a_file(tmp_path, capsys, no_training):
    path = tmp_path / "run"
    path.write_text("")
    assert run_train(f"--run_dir={path}") == 2
    assert capsys.readouterr().err == (f"error: --run_dir={path} is a file, not a directory: give "
                                       "a directory (it is created when missing)\n")


def test_read_only_run_dir(tmp_path, capsys, monkeypatch, no_training):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    assert run_train(f"--run_dir={tmp_path}") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --run_dir={tmp_path} cannot be written (Read-only file system)")
    assert err.count("\n") == 1


def test_resume_with_other_networks_stops_before_tensorflow(tmp_path, capsys, no_training):
    run = RunDir(str(tmp_path / "run"))
    run.record(ExperimentConfig(train=TrainConfig(run_dir=run.path)))  # the defaults' record
    os.makedirs(run.checkpoints)
    open(os.path.join(run.checkpoints, "ckpt-8.index"), "w").close()
    first = open(run.config_path, "rb").read()
    assert run_train(f"--run_dir={run.path}", "--height=96", "--num_layers=34",
                     "--frame_offsets=0,-2,2") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert ("--height: 192 in the run's config.json, 96 now; --frame_offsets: 0,-1,1 in the run's "
            "config.json, 0,-2,2 now; --num_layers: 18 in the run's config.json, 34 now") in err
    assert open(run.config_path, "rb").read() == first
    assert not os.path.exists(run.flags_path)
