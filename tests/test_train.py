"""``python -m md2tf.train``: an unusable ``--run_dir`` and a resume with other network or data
settings are refused at start-up (one line, exit status 2, before TensorFlow work, the record kept);
the end-of-run summary names the paths and the next commands, quoted for a shell."""

from __future__ import annotations

import errno
import os
import shlex
import sys
import tempfile

import pytest

from md2tf import flags as md2tf_flags
from md2tf import train
from md2tf.config import DataConfig, ExperimentConfig, TrainConfig
from md2tf.rundir import RunDir
from md2tf.training.trainer import TrainResult
from tests.training import fakes


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


def test_summary_names_paths_and_next_commands(tmp_path):
    run = str(tmp_path / "synthetic")
    config = fakes.tiny_config(run, num_epochs=12)
    best = {"epoch": 11, "step": 1078, "metric": "depth/abs_rel", "value": 0.147,
            "checkpoint": f"{run}/best/ckpt-1078"}
    result = TrainResult(
        1176, 12, "completed", f"{run}/checkpoints/ckpt-1176", {}, 0,
        validations=((12, 1176, {"loss/total": 0.1, "depth/abs_rel": 0.151, "depth/a1": 0.84}),),
        best=best, wall_time_s=905.0)
    text = train.run_summary(config, result)
    assert "training completed: step 1176, epoch 12 of 12, 15 min 05 s" in text
    assert "epoch 12 (step 1176): val loss 0.1000  abs_rel 0.151  a1 0.840" in text
    assert f"best epoch:      11 (abs_rel 0.147), networks in {run}/best" in text
    assert f"checkpoint:      {run}/checkpoints/ckpt-1176" in text
    assert f"tensorboard --logdir {run}/tensorboard" in text
    assert f"python -m md2tf.evaluate --models {run},{run}/best" in text
    assert f"python -m md2tf.export --checkpoint {run} --out export/synthetic" in text


def test_summary_of_a_dataset_without_test_gt_has_no_evaluate_command(tmp_path):
    config = fakes.tiny_config(str(tmp_path))
    config = config.__class__(data=DataConfig(dataset="folder", data_dir="frames", frame_offsets=(0, -1, 1)),
                              model=config.model, loss=config.loss, train=config.train)
    result = TrainResult(4, 1, "completed", "ckpt-4", {}, 0)
    text = train.run_summary(config, result)
    assert "md2tf.evaluate" not in text and "md2tf.export" in text and "best epoch" not in text


def test_summary_quotes_paths_with_spaces_in_next_commands(tmp_path):
    run = str(tmp_path / "my runs" / "it's synthetic")
    config = fakes.tiny_config(run)
    best = {"epoch": 0, "step": 2, "metric": "depth/abs_rel", "value": 0.2, "checkpoint": f"{run}/best/ckpt-2"}
    result = TrainResult(4, 1, "completed", f"{run}/checkpoints/ckpt-4", {}, 0, best=best)
    text = train.run_summary(config, result)
    commands = text.split("next:\n", 1)[1].splitlines()
    assert [shlex.split(line)[1:] for line in commands] == [
        ["--logdir", f"{run}/tensorboard"],
        ["-m", "md2tf.evaluate", "--models", f"{run},{run}/best"],
        ["-m", "md2tf.export", "--checkpoint", run, "--out", "export/it's synthetic"],
    ]


def test_summary_shows_the_learned_k_and_the_runs_warnings(tmp_path):
    run = str(tmp_path / "clip")
    config = fakes.tiny_config(run)
    result = TrainResult(4, 1, "completed", f"{run}/checkpoints/ckpt-4", {}, 0,
                         warnings=("the camera hardly rotates (...)",),
                         learned_intrinsics={"clip": (0.71, 2.38, 0.55, 0.45)})
    lines = train.run_summary(config, result).splitlines()
    assert (f"  learned K:       clip: fx 0.7100 fy 2.3800 cx 0.5500 cy 0.4500 (normalised), in "
            f"{run}/intrinsics_learned.json") in lines
    assert lines[lines.index("next:") - 1] == "warning: the camera hardly rotates (...)"
