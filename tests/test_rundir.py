"""The run directory object: paths, config.json round trip, clear error for a foreign folder."""

from __future__ import annotations

import os

import pytest

from md2tf.config import DataConfig, ExperimentConfig, TrainConfig
from md2tf.rundir import RunDir


def test_paths_and_config_round_trip(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    assert run.checkpoints == os.path.join(run.path, "checkpoints")
    assert run.tensorboard == os.path.join(run.path, "tensorboard")
    config = ExperimentConfig(data=DataConfig(height=64, width=96, frame_offsets=(0, 1)),
                              train=TrainConfig(run_dir=run.path, seed=5))
    assert not run.has_config()
    run.write_config(config)
    assert run.has_config() and run.read_config() == config
    assert not os.path.exists(run.config_path + ".tmp")
    run.write_flags("--height=64\n")
    assert open(run.flags_path).read() == "--height=64\n"


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json.*md2tf.train"):
        RunDir(str(tmp_path / "nothing")).read_config()
