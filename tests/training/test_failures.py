"""Training under failure: non-finite weights, crashes in the loop, broken checkpoints, resume.

The end-to-end cases run ``python -m md2tf.train`` on the smoke config in a subprocess and are
``slow``; the unit cases use the stand-in networks of ``tests.training.fakes``.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import json
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from md2tf.config import ConfigError
from md2tf.training import inputs, run_checkpoints
from md2tf.training import trainer as trainer_lib
from tests.training import fakes
from tests.training.test_trainer import nan_after, run_case

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class BatchNormDepthNet(fakes.TinyDepthNet):
    """The stand-in depth network with a BatchNorm layer (moving statistics change in training)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = tf.keras.layers.BatchNormalization(momentum=0.5)

    def call(self, images, training=False):
        x = self.conv2(self.norm(self.conv1(images), training=training))
        return tuple(tf.sigmoid(tf.nn.avg_pool2d(x, 2**s, 2**s, "VALID") if s else x)
                     for s in range(4))


def all_weights(t) -> list[np.ndarray]:
    return [v.numpy() for n in (t.depth_net, t.pose_net) for v in n.weights]


@pytest.mark.slow
def test_skipped_step_keeps_batchnorm_statistics(tmp_path):
    """A non-finite step changes nothing, not even the moving statistics of its forward pass."""
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=50, max_nonfinite_steps=2,
                               image_log_every=0, validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=lambda: (BatchNormDepthNet(), fakes.TinyPoseNet()),
                            dataset_fn=fakes.fake_dataset_fn(8, repeat=True), loss_fn=nan_after(1))
    seen = {}
    result = t.train(step_callback=lambda s, _: seen.setdefault(s, all_weights(t)))
    assert (result.reason, result.step) == ("nonfinite", 3)
    stats = [v.numpy() for v in t.depth_net.norm.non_trainable_variables]
    assert stats and not np.allclose(stats[0], 0.0)  # step 1 did move them
    for a, b in zip(seen[1], seen[3]):
        np.testing.assert_array_equal(a, b)


def corrupt_after(num_ok_batches: int):
    """A `DatasetFn` whose batch ``num_ok_batches`` fails as a corrupt image would (names the file)."""
    base = fakes.fake_dataset_fn(16)

    def fn(split, batch_size, training, input_context=None, seed=None):
        ds = base(split, batch_size, training, input_context, seed).enumerate()

        def check(i, batch):
            ok = tf.debugging.Assert(i < num_ok_batches,
                                     ["corrupt or truncated image file:", "/data/frame_7.jpg"])
            with tf.control_dependencies([ok]):
                return tf.nest.map_structure(lambda t: t if t is None else tf.identity(t), batch)

        return ds.map(check)

    return fn


def test_exception_in_the_loop_saves_and_names_the_file(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=6, image_log_every=0,
                               validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=corrupt_after(3))
    with pytest.raises(inputs.TrainingDataError,
                       match=r"step 3 by its input data: .*/data/frame_7.jpg.*ckpt-3.*--skip_corrupt"):
        t.train()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")


@pytest.mark.slow
def test_a_bug_in_the_loop_keeps_its_traceback_and_saves(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=6, image_log_every=0,
                               validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(16))

    def callback(step, _):
        if step == 2:
            raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        t.train(step_callback=callback)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")


@pytest.mark.slow
def test_steps_per_epoch_beyond_the_split_is_clamped(tmp_path, caplog):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=5, num_epochs=2, image_log_every=0,
                               validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(7))
    with caplog.at_level("WARNING"):
        result = t.train()
    assert (result.step, result.epoch) == (6, 2)  # 7 samples = 3 batches of 2 per epoch
    assert any("--steps_per_epoch=5 is more than the 3 batches" in r.getMessage()
               for r in caplog.records)


def test_diverged_weights_reach_the_image_summaries_as_black_pixels(tmp_path):
    """lr 1e30 makes the disparities NaN after step 1: the image summaries of every step still
    write, and the non-finite guard, not the colour map, ends the run."""
    config = fakes.tiny_config(str(tmp_path), learning_rate=1e30, steps_per_epoch=20,
                               image_log_every=1, max_nonfinite_steps=2, validate_every_epoch=False,
                               save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=lambda: (BatchNormDepthNet(), fakes.TinyPoseNet()),
                            dataset_fn=fakes.fake_dataset_fn(8, repeat=True))
    result = t.train()
    assert (result.reason, result.nonfinite_steps) == ("nonfinite", 2)
    disparity = t.images(t.image_batch())["disparity/s0"].numpy()
    assert not np.isfinite(t.depth_net(t.image_batch().target[0])[0].numpy()).all()
    assert np.isfinite(disparity).all() and (disparity == 0).any()


def full_disk_at(trainer, step: int, calls: list) -> None:
    """From global ``step`` on, the trainer's checkpoint saves fail as on a full disk, leaving part
    of the checkpoint in its ``ckpt-N_temp`` folder (as TensorFlow's sharded save does)."""
    manager = trainer.checkpoints.manager
    real_save = manager.save

    def save(checkpoint_number):
        if checkpoint_number < step:
            return real_save(checkpoint_number=checkpoint_number)
        calls.append(checkpoint_number)
        os.makedirs(os.path.join(manager.directory, f"ckpt-{checkpoint_number}_temp"))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    manager.save = save


def test_full_disk_during_a_save_ends_in_one_line_and_keeps_the_previous_one(tmp_path, caplog):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=6, save_every_steps=2,
                               image_log_every=0, validate_every_epoch=False)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                            dataset_fn=fakes.fake_dataset_fn(16))
    calls = []
    full_disk_at(t, 4, calls)
    with pytest.raises(run_checkpoints.DiskFullError) as error, caplog.at_level("WARNING"):
        t.train()
    assert isinstance(error.value, ValueError)  # md2tf.flags.run_command: "error: ..." and exit 2
    assert "\n" not in str(error.value)
    assert re.fullmatch(r"no space left on /.* \(saving .*/checkpoints/ckpt-4\): freed the partial "
                        r"checkpoint; ckpt-2 is intact, and the same command resumes from it once "
                        r"there is space", str(error.value)), str(error.value)
    assert calls == [4]  # no second save into the full disk after the failure
    assert not glob.glob(str(tmp_path / "checkpoints" / "*_temp"))
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    again = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                                dataset_fn=fakes.fake_dataset_fn(16))
    assert again.restore().endswith("ckpt-2") and int(again.step.numpy()) == 2


def test_resumed_trainer_checks_its_settings_against_config_json(tmp_path):
    """A Trainer resuming with a setting that is not resumable stops before its restore and keeps
    the run's record (the resumable case: tests/test_rundir.py and the command-line test below)."""
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=2, max_steps=1, image_log_every=0,
                               validate_every_epoch=False)
    assert trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                               dataset_fn=fakes.fake_dataset_fn(4)).train().step == 1
    first = (tmp_path / "config.json").read_bytes()
    changed = dataclasses.replace(config, train=dataclasses.replace(config.train, batch_size=4))
    t = trainer_lib.Trainer(changed, networks=fakes.tiny_networks,
                            dataset_fn=fakes.fake_dataset_fn(4))
    with pytest.raises(ConfigError, match=r"\(--batch_size: 2 in the run's config.json, 4 now\); "
                                          r".*start a new --run_dir, or drop these flags"):
        t.train()
    assert int(t.step.numpy()) == 0  # stopped before the restore
    assert (tmp_path / "config.json").read_bytes() == first


@pytest.mark.parametrize("field, value, flag", [
    ("learning_rate", float("inf"), "--learning_rate"), ("lr_decay_factor", float("nan"), "--lr_decay_factor")])
def test_nonfinite_train_settings_are_rejected(field, value, flag):
    with pytest.raises(ValueError, match=rf"{flag} must be a finite number"):
        fakes.tiny_config("run", **{field: value})


def test_nonfinite_loss_settings_are_rejected():
    from md2tf.config import DataConfig, LossConfig

    with pytest.raises(ValueError, match="--disparity_smoothness must be a finite number, got inf"):
        LossConfig(smoothness_weight=float("inf"))
    with pytest.raises(ValueError, match="--stereo_baseline must be a finite number"):
        DataConfig(stereo_baseline=float("inf"))


def checkpoint_float_values(prefix: str) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    return {name: reader.get_tensor(name) for name, dtype in dtypes.items()
            if dtype.is_floating and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def smoke_command(run_dir, world, *extra: str) -> list[str]:
    return [sys.executable, "-m", "md2tf.train", "--flagfile=configs/smoke.flags", f"--run_dir={run_dir}",
            f"--synthetic_cache_dir={world}", "--image_log_every=0", "--novalidate_every_epoch",
            *extra]


@pytest.mark.slow
def test_exploding_learning_rate_stops_with_finite_checkpoint(tmp_path):
    """lr 1e30 blows the weights up at step 1; the next steps are non-finite and skipped, not a
    crash, and the image summary of every step shows the NaN disparities instead of failing."""
    cmd = smoke_command(tmp_path / "run", tmp_path / "world", "--learning_rate=1e30", "--max_steps=6",
                        "--steps_per_epoch=6", "--max_nonfinite_steps=3", "--save_every_steps=0",
                        "--image_log_every=1")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: stopped after 3 consecutive non-finite losses at step 4; last checkpoint "
        f"{tmp_path / 'run' / 'checkpoints' / 'ckpt-4'}"), proc.stderr[-3000:]
    prefix = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert prefix.endswith("ckpt-4")
    values = checkpoint_float_values(prefix)
    assert len(values) > 100
    bad = [name for name, value in values.items() if not np.all(np.isfinite(value))]
    assert not bad, bad[:5]


@pytest.mark.slow
def test_resume_from_the_command_line_checks_and_records_other_settings(tmp_path):
    """A resume with another --height or --batch_size ends in one line and keeps the run's record;
    one with another learning rate and more steps trains on and records them beside it."""
    run, world = tmp_path / "run", tmp_path / "world"

    def train(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(smoke_command(run, world, *extra), cwd=REPO, capture_output=True,
                              text=True, timeout=600)

    proc = train()
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = (run / "config.json").read_bytes(), (run / "flags.txt").read_bytes()
    proc = train("--height=96", "--batch_size=4")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"error: --run_dir={run} holds a run trained with other settings (--height: 64 in the "
        "run's config.json, 96 now; --batch_size: 2 in the run's config.json, 4 now); the "
        "checkpoints fit only those: start a new --run_dir, or drop these flags to resume the run"]
    proc = train("--learning_rate=5e-5", "--num_epochs=2", "--max_steps=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming at step 2 with other settings" in proc.stderr
    assert ((run / "config.json").read_bytes(), (run / "flags.txt").read_bytes()) == first
    resumed = json.loads((run / "config.resume-2.json").read_text())["train"]
    assert (resumed["learning_rate"], resumed["num_epochs"], resumed["max_steps"]) == (5e-5, 2, 4)
    assert "--learning_rate=5e-05" in (run / "flags.resume-2.txt").read_text().split("\n")
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-4")


@pytest.mark.slow
def test_sigterm_and_resume_is_the_same_run_on_an_uneven_split(tmp_path):
    """SIGTERM at a random step of 9 (3 epochs x 3 batches; 7 samples do not divide into batches of
    2, and --steps_per_epoch=5 is more than the split holds): the resumed run ends at the same step
    with the same variables as the uninterrupted one."""
    stop_at = random.randint(1, 8)
    out = run_case("sigterm_resume", str(tmp_path), timeout=900,
                   env={"TF_ENABLE_ONEDNN_OPTS": "0", "MD2TF_STOP_AT": str(stop_at)})
    assert out["straight"] == [9, 3, "completed"], out
    assert out["first"] == [stop_at, "preempted"], out
    assert out["resumed"] == [9, 3, "completed"], out
    assert out["bitwise_equal"] and out["optimizer_equal"], (stop_at, out)


@pytest.mark.slow
def test_chaos_run_ends_with_the_uninterrupted_weights(tmp_path):
    """``scripts/chaos.py``: SIGTERM, SIGKILL during a checkpoint write, a truncated newest checkpoint,
    resume; every probe holds and the final variables equal an uninterrupted run bit for bit. Then a
    second writer on a running training's run directory, and a full disk during a save."""
    cmd = [sys.executable, "scripts/chaos.py", f"--work_dir={tmp_path / 'chaos'}",
           f"--json={tmp_path / 'table.json'}", "--timeout=400"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    import json

    rows = json.loads((tmp_path / "table.json").read_text())
    assert len(rows) == 8 and all(r["ok"] for r in rows), rows


@pytest.mark.slow
def test_corrupt_image_mid_epoch_saves_names_the_file_or_is_skipped(tmp_path):
    """A truncated training image: one line naming it + a checkpoint + exit 2, or, with
    --skip_corrupt_images, a full epoch and the number of dropped samples in the log."""
    from md2tf.data import synthetic

    world = tmp_path / "world"
    synthetic.ensure_world(str(world), drives=2, frames=12, height=64, width=128)
    lines = (world / "splits" / "synthetic" / "train_files.txt").read_text().split("\n")
    folder, frame, side = lines[len(lines) // 2].split()
    data = world / folder / ("image_02" if side == "l" else "image_03") / "data"
    (bad,) = data.glob(f"{int(frame):010d}.*")  # the synthetic world stores PNGs
    bad.write_bytes(bad.read_bytes()[:200])
    common = ["--max_steps=0", "--steps_per_epoch=0", "--num_epochs=1", "--save_every_steps=0",
              "--seed=3"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(smoke_command(tmp_path / "a", world, *common), cwd=REPO, capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: training stopped at step ") and str(bad) in last, last
    assert "--skip_corrupt_images" in last and "Traceback" not in proc.stderr
    assert tf.train.latest_checkpoint(str(tmp_path / "a" / "checkpoints")) is not None

    proc = subprocess.run(smoke_command(tmp_path / "b", world, *common, "--skip_corrupt_images"),
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "skipping a sample with a corrupt image" in proc.stderr
    assert "training sample(s) with corrupt images (--skip_corrupt_images)" in proc.stderr
    prefix = tf.train.latest_checkpoint(str(tmp_path / "b" / "checkpoints"))
    assert int(tf.train.load_variable(prefix, "epoch/.ATTRIBUTES/VARIABLE_VALUE")) == 1
