"""``--distill_from`` / ``--distill_weight``: config, the frozen teacher, one training step."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from md2tf.config import ConfigError, ExperimentConfig, LossConfig, TrainConfig
from md2tf.models import build
from md2tf.models import checkpoint as model_checkpoint
from md2tf.training import step
from md2tf.training import trainer as trainer_lib
from tests.training import fakes


def test_weight_and_teacher_go_together():
    with pytest.raises(ConfigError, match=r"--distill_weight \(1\) and --distill_from \(''\) go together"):
        ExperimentConfig(loss=LossConfig(distill_weight=1.0))
    with pytest.raises(ConfigError, match="--distill_weight .* and --distill_from .*'runs/r18'"):
        ExperimentConfig(train=TrainConfig(distill_from="runs/r18"))
    with pytest.raises(ConfigError, match="--distill_weight must be >= 0"):
        LossConfig(distill_weight=-1.0)


def test_a_missing_teacher_names_the_flag(tmp_path):
    config = fakes.tiny_config(str(tmp_path / "run"))
    config = dataclasses.replace(config, loss=LossConfig(distill_weight=1.0), train=dataclasses.replace(
        config.train, distill_from=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="^--distill_from: .*nowhere.* is neither a run directory"):
        trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(4))


def test_one_step_follows_the_frozen_teacher(tmp_path):
    """A saved ResNet18 teacher: the step logs the distillation term, the total is the photometric
    loss plus exactly weight x that term, the student changes and the teacher does not."""
    teacher_config = ExperimentConfig()
    teacher, _ = build(teacher_config.model, use_pose_net=False)
    teacher(np.zeros([1, fakes.H, fakes.W, 3], np.float32))
    model_checkpoint.save_models(str(tmp_path / "teacher"), teacher_config, teacher, None, step=3)

    config = fakes.tiny_config(str(tmp_path / "run"), steps_per_epoch=1, max_steps=1,
                               validate_every_epoch=False, image_log_every=0)
    plain = config
    config = dataclasses.replace(config, loss=LossConfig(distill_weight=0.5), train=dataclasses.replace(
        config.train, distill_from=str(tmp_path / "teacher")))
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(4))
    frozen = [v.numpy().copy() for v in t.teacher.weights]
    np.testing.assert_array_equal(frozen[0], teacher.weights[0].numpy())  # restored from the run
    assert not any(v is w for v in t.variables for w in t.teacher.weights)  # never trained
    before = [v.numpy().copy() for v in t.depth_net.weights]
    scalars = t.train().last_scalars
    assert scalars["loss/distill"] > 0 and np.isfinite(scalars["loss/total"])
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, t.depth_net.weights)) > 0
    for a, v in zip(frozen, t.teacher.weights):
        np.testing.assert_array_equal(a, v.numpy())  # BN statistics included: inference mode

    batch = next(iter(t.dataset_fn("train", 2, False)))
    out = t._forward(batch, None, training=False)
    without = fakes.tiny_networks()[0]
    without(batch.target_aug)
    without.set_weights(t.depth_net.get_weights())
    base = step.forward(without, t.pose_net, batch, plain.data, plain.loss, t.loss_fn, None, False)
    np.testing.assert_allclose(float(out.losses.total), float(base.losses.total) + 0.5 * float(out.distill),
                               rtol=1e-5)
