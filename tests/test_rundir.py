"""The run directory object: paths, config.json round trip, clear errors for a foreign or unwritable
folder, and the settings check of a resumed run."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest

from md2tf.config import ConfigError, DataConfig, ExperimentConfig, ModelConfig, TrainConfig
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


def test_damaged_config_names_the_file(tmp_path):
    run = RunDir(str(tmp_path))
    (tmp_path / "config.json").write_text('{"data": {"height": 64')
    with pytest.raises(ValueError, match=r"config.json is not a readable md2tf config"):
        run.read_config()


# --- resume -------------------------------------------------------------------------------------


def experiment(run_dir: str, *, height: int = 192, num_layers: int = 18,
               frame_offsets: tuple[int, ...] = (0, -1, 1), **train) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(height=height, frame_offsets=frame_offsets),
                            model=ModelConfig(num_layers=num_layers),
                            train=TrainConfig(run_dir=run_dir, **train))


@pytest.fixture
def trained_run(tmp_path) -> RunDir:
    """A run directory as a killed training leaves it: first record and a checkpoint of step 4."""
    run = RunDir(str(tmp_path / "run"))
    assert run.record(experiment(run.path), "--height=192\n") == run.config_path
    os.makedirs(run.checkpoints)
    for name in ("ckpt-2.index", "ckpt-4.index", "ckpt-4.data-00000-of-00001", "checkpoint"):
        open(os.path.join(run.checkpoints, name), "w").close()
    os.makedirs(os.path.join(run.checkpoints, "ckpt-6_temp"))  # an interrupted save: no checkpoint
    return run


def first_record(run: RunDir) -> tuple[bytes, bytes]:
    return open(run.config_path, "rb").read(), open(run.flags_path, "rb").read()


def test_resume_that_changes_the_networks_or_data_stops_listing_every_change(trained_run):
    before = first_record(trained_run)
    changed = experiment(trained_run.path, height=96, num_layers=34, frame_offsets=(0, -2, 2),
                         batch_size=4, learning_rate=5e-5)
    with pytest.raises(ConfigError) as error:
        trained_run.record(changed, "--height=96\n")
    message = str(error.value)
    assert "\n" not in message
    assert ("(--height: 192 in the run's config.json, 96 now; --frame_offsets: 0,-1,1 in the run's "
            "config.json, 0,-2,2 now; --num_layers: 18 in the run's config.json, 34 now; "
            "--batch_size: 12 in the run's config.json, 4 now)") in message
    assert "start a new --run_dir, or drop these flags" in message
    assert "learning_rate" not in message  # resumable: not a reason to stop
    assert first_record(trained_run) == before
    assert sorted(os.listdir(trained_run.path)) == ["checkpoints", "config.json", "flags.txt"]


def test_resume_with_resumable_changes_records_them_beside_the_first_record(trained_run, caplog):
    before = first_record(trained_run)
    changed = experiment(trained_run.path, learning_rate=5e-5, max_steps=10, log_every=1)
    assert trained_run.resumed_changes(changed) != []
    with caplog.at_level("WARNING"):
        path = trained_run.record(changed, "--learning_rate=5e-05\n")
    assert path == os.path.join(trained_run.path, "config.resume-4.json")
    assert first_record(trained_run) == before
    assert RunDir(trained_run.path).read_config() == experiment(trained_run.path)
    with open(os.path.join(trained_run.path, "flags.resume-4.txt")) as f:
        assert f.read() == "--learning_rate=5e-05\n"
    messages = [r.getMessage() for r in caplog.records]
    assert any("resuming at step 4 with other settings (--learning_rate=5e-05, was 0.0001; "
               "--max_steps=10, was 0; --log_every=1, was 250)" in m for m in messages), messages
    # The trainer records again: same settings, nothing more written or logged.
    mtime = os.path.getmtime(path)
    caplog.clear()
    assert trained_run.record(changed) == path
    assert os.path.getmtime(path) == mtime and not caplog.records


def test_resume_with_the_same_settings_writes_nothing(trained_run):
    before = first_record(trained_run)
    assert trained_run.record(experiment(trained_run.path), "--other_flagfile_spelling\n") == \
        trained_run.config_path
    assert first_record(trained_run) == before
    assert not [n for n in os.listdir(trained_run.path) if "resume" in n]


@pytest.mark.parametrize("case", ["noresume", "no_checkpoint"])
def test_a_run_from_scratch_writes_the_first_record(trained_run, case):
    if case == "noresume":
        config = experiment(trained_run.path, height=96, resume=False)
    else:
        for name in os.listdir(trained_run.checkpoints):
            if name.endswith(".index"):
                os.remove(os.path.join(trained_run.checkpoints, name))
        config = experiment(trained_run.path, height=96)
    assert trained_run.resumed_changes(config) == []
    trained_run.record(config, "--height=96\n")
    assert trained_run.read_config() == config
    assert open(trained_run.flags_path).read() == "--height=96\n"


def test_latest_checkpoint_step_reads_complete_checkpoints_only(trained_run, tmp_path):
    assert trained_run.latest_checkpoint_step() == 4
    assert RunDir(str(tmp_path / "absent")).latest_checkpoint_step() is None


# --- writable -----------------------------------------------------------------------------------


def test_run_dir_that_is_a_file_names_the_flag(tmp_path):
    path = tmp_path / "run"
    path.write_text("not a directory")
    with pytest.raises(ValueError, match=rf"^--run_dir={path} is a file, not a directory"):
        RunDir(str(path)).check_writable()
    with pytest.raises(ValueError, match=rf"^--run_dir={path}/run cannot be written \(.+\)"):
        RunDir(str(path / "run")).check_writable()


def test_read_only_run_dir_names_the_flag(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(ValueError, match=rf"^--run_dir={tmp_path} cannot be written "
                                         r"\(Read-only file system\): give a directory you can"):
        RunDir(str(tmp_path)).check_writable()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_directory_without_write_permission_names_the_flag(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(ValueError, match=r"cannot be written \(Permission denied\)"):
        RunDir(str(locked)).check_writable()


def test_writable_run_dir_is_created_and_left_clean(tmp_path):
    run = RunDir(str(tmp_path / "a" / "run"))
    run.check_writable()
    assert os.listdir(run.path) == []
