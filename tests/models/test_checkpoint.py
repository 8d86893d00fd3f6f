"""save_models / load_models: the run-directory checkpoint format every tool reads."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.config import DataConfig, ExperimentConfig, ModelConfig
from md2tf.models import checkpoint

CONFIG = ExperimentConfig(data=DataConfig(height=64, width=64), model=ModelConfig(scales=(0, 1)))


def _randomise_bn_statistics(net, seed):
    rng = np.random.default_rng(seed)
    for v in net.weights:
        if "moving_" in v.path:
            v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype(np.float32))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    depth, pose = models.build(CONFIG.model, use_pose_net=True)
    _randomise_bn_statistics(depth, 1)
    _randomise_bn_statistics(pose, 2)
    prefix = models.save_models(str(run), CONFIG, depth, pose, step=7)
    return run, prefix, depth, pose


def _assert_same_weights(a, b):
    assert [v.path for v in a.weights] == [v.path for v in b.weights]
    for va, vb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=va.path)


def test_layout_of_a_saved_run(saved_run):
    run, prefix, _, _ = saved_run
    assert prefix == str(run / "checkpoints" / "ckpt-7")
    assert ExperimentConfig.from_dict(json.loads((run / "config.json").read_text())) == CONFIG


def test_round_trip_from_run_dir_restores_every_variable(saved_run):
    run, _, depth, pose = saved_run
    config, depth2, pose2 = models.load_models(str(run))
    assert config == CONFIG
    _assert_same_weights(depth, depth2)  # includes the randomised BN moving statistics
    _assert_same_weights(pose, pose2)
    x = tf.random.stateless_uniform([1, 64, 64, 3], seed=(1, 2))
    np.testing.assert_array_equal(depth(x)[1].numpy(), depth2(x)[1].numpy())


def test_depth_only_load_from_prefix(saved_run):
    _, prefix, depth, _ = saved_run
    _, depth2, pose2 = models.load_models(prefix, load_pose_net=False)
    assert pose2 is None
    _assert_same_weights(depth, depth2)


def test_trainer_checkpoint_with_optimizer_state_loads(tmp_path):
    """The trainer saves optimizer/step/epoch next to the nets; readers ignore them."""
    config = ExperimentConfig(data=DataConfig(height=64, width=64, frame_offsets=(0,), use_stereo=True))
    depth, _ = models.build(config.model, use_pose_net=False)
    opt = keras.optimizers.Adam(1e-4)
    opt.build(depth.trainable_variables)
    ckpt = tf.train.Checkpoint(depth_net=depth, optimizer=opt, step=tf.Variable(3, dtype=tf.int64),
                               epoch=tf.Variable(1, dtype=tf.int64))
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    tf.train.CheckpointManager(ckpt, str(tmp_path / "checkpoints"), 2).save(checkpoint_number=3)
    _, depth2, pose2 = models.load_models(str(tmp_path))
    assert pose2 is None
    _assert_same_weights(depth, depth2)


def test_missing_variables_are_named(tmp_path):
    """A checkpoint lacking variables the config asks for fails loudly instead of half-restoring."""
    stereo = DataConfig(height=64, width=64, frame_offsets=(0,), use_stereo=True)
    small = ExperimentConfig(data=stereo, model=ModelConfig(scales=(0,)))
    depth, _ = models.build(small.model, use_pose_net=False)
    models.save_models(str(tmp_path), small, depth)
    # Now claim the run had 2 scales: the dispconv_1 head is missing from the checkpoint.
    two = ExperimentConfig(data=stereo, model=ModelConfig(scales=(0, 1)))
    (tmp_path / "config.json").write_text(json.dumps(two.to_dict()))
    with pytest.raises(ValueError, match=r"does not hold \d+ variable\(s\).*depth_net: .*dispconv_1"):
        models.load_models(str(tmp_path))


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        models.load_models(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="neither a run directory nor a checkpoint prefix"):
        models.load_models(str(tmp_path / "nope" / "ckpt-1"))


def test_list_held_variables_are_reported_as_unsaved(tmp_path):
    """The verifier catches the Keras 3 pitfall: layers held only in a list are not checkpointed."""

    class Hidden(keras.Model):
        def __init__(self):
            super().__init__()
            self.named = keras.layers.Dense(2)
            self.hidden = [keras.layers.Dense(2)]

        def call(self, x):
            return self.hidden[0](self.named(x))

    model = Hidden()
    model(tf.zeros([1, 3]))
    prefix = tf.train.Checkpoint(depth_net=model).write(str(tmp_path / "c"))
    unsaved = checkpoint.unsaved_variables("depth_net", model, prefix)
    saved_keys = [k for k, _ in tf.train.list_variables(prefix) if k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(saved_keys) == 2 and len(unsaved) == 2  # the listed Dense's kernel and bias
    assert all(u.endswith(("kernel", "bias")) and "named" not in u for u in unsaved)


def test_run_dir_with_the_depth_range_under_loss_still_loads(saved_run, tmp_path):
    """config.json of md2tf 0.1.0 runs holds min_depth/max_depth under "loss"; they reach DepthNet."""
    run, _, depth, _ = saved_run
    legacy = json.loads((run / "config.json").read_text())
    del legacy["model"]["min_depth"], legacy["model"]["max_depth"]
    legacy["loss"].update(min_depth=0.5, max_depth=80.0)
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "config.json").write_text(json.dumps(legacy))
    (old / "checkpoints").symlink_to(run / "checkpoints")
    config, depth2, _ = models.load_models(str(old), load_pose_net=False)
    assert (config.model.min_depth, config.model.max_depth) == (0.5, 80.0)
    assert (depth2.min_depth, depth2.max_depth) == (0.5, 80.0)
    _assert_same_weights(depth, depth2)


def _damaged_copy(saved_run, tmp_path, damage):
    """A copy of the saved run whose checkpoint file ``damage(prefix)`` spoils."""
    run, prefix, _, _ = saved_run
    copy = tmp_path / "damaged_run"
    shutil.copytree(run, copy)
    damaged_prefix = str(copy / "checkpoints" / os.path.basename(prefix))
    damage(damaged_prefix)
    return str(copy), damaged_prefix


def _cut_data_in_half(prefix):
    (data,) = glob.glob(prefix + ".data-*")
    with open(data, "rb") as f:
        content = f.read()
    with open(data, "wb") as f:
        f.write(content[: len(content) // 2])


def _text_index(prefix):
    with open(prefix + ".index", "w") as f:
        f.write("not a checkpoint index\n")


@pytest.mark.parametrize("damage", [_cut_data_in_half, _text_index])
def test_damaged_checkpoint_is_named(saved_run, tmp_path, damage):
    run, prefix = _damaged_copy(saved_run, tmp_path, damage)
    with pytest.raises(ValueError, match=f"checkpoint '{re.escape(prefix)}' cannot be read: its files "
                                         "are truncated, damaged or missing"):
        models.load_models(run)


@pytest.mark.parametrize("command", ["evaluate", "export"])
def test_truncated_checkpoint_ends_evaluate_and_export_in_one_line(saved_run, tmp_path, capsys, command):
    from md2tf import evaluate, export
    from md2tf.config import EvalConfig, ExportConfig
    from md2tf.flags import call_command

    run, prefix = _damaged_copy(saved_run, tmp_path, _cut_data_in_half)
    if command == "evaluate":
        status = call_command(evaluate.main, EvalConfig, [f"--models={run}", "--noprogress"])
    else:
        status = call_command(export.main, ExportConfig, [f"--checkpoint={run}",
                                                          f"--out={tmp_path / 'export'}"])
    assert status == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith(f"error: checkpoint '{prefix}' cannot be read"), err
