"""``--encoder_init``: encoders from another run (the ImageNet stand-in), decoders fresh."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from md2tf.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from md2tf.models import build
from md2tf.models import checkpoint as model_checkpoint
from md2tf.training import run_checkpoints

MONO = ExperimentConfig(data=DataConfig(frame_offsets=(0, -1, 1)))
STEREO = ExperimentConfig(data=DataConfig(frame_offsets=(0,), use_stereo=True))


def randomise(net, seed: int) -> None:
    """Every variable (BatchNorm statistics included) set to seeded noise, unlike any initialiser."""
    rng = np.random.default_rng(seed)
    for var in net.weights:
        var.assign(rng.normal(size=var.shape).astype(np.float32))


def values(variables) -> list[np.ndarray]:
    return [v.numpy().copy() for v in variables]


def save_source(run_dir, config: ExperimentConfig) -> tuple:
    depth, pose = build(config.model, use_pose_net=config.use_pose_net)
    randomise(depth, 1)
    if pose is not None:
        randomise(pose, 2)
    model_checkpoint.save_models(str(run_dir), config, depth, pose, step=5)
    return depth, pose


def assert_all_equal(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_copies_both_encoders_and_keeps_the_fresh_decoders(tmp_path):
    src_depth, src_pose = save_source(tmp_path / "src", MONO)
    depth, pose = build(ModelConfig(), use_pose_net=True)
    fresh_decoders = values(depth.decoder.weights) + values(pose.decoder.weights)

    prefix, nets = run_checkpoints.restore_encoders(str(tmp_path / "src"), depth, pose)

    assert prefix.endswith("ckpt-5") and nets == ["depth_net", "pose_net"]
    assert_all_equal(values(depth.encoder.weights), values(src_depth.encoder.weights))
    # The 6-channel first conv of the pose encoder comes over as it is (both frames).
    assert pose.encoder.weights[0].shape[2] == 6
    assert_all_equal(values(pose.encoder.weights), values(src_pose.encoder.weights))
    assert_all_equal(values(depth.decoder.weights) + values(pose.decoder.weights), fresh_decoders)
    assert not np.allclose(depth.decoder.weights[0].numpy(), src_depth.decoder.weights[0].numpy())


def test_stereo_source_initialises_only_the_depth_encoder(tmp_path):
    src_depth, _ = save_source(tmp_path / "src", STEREO)
    depth, pose = build(ModelConfig(), use_pose_net=True)
    fresh_pose = values(pose.weights)

    _, nets = run_checkpoints.restore_encoders(str(tmp_path / "src"), depth, pose)

    assert nets == ["depth_net"]
    assert_all_equal(values(depth.encoder.weights), values(src_depth.encoder.weights))
    assert_all_equal(values(pose.weights), fresh_pose)


def test_refuses_a_deeper_source_encoder(tmp_path):
    # Every ResNet18 variable exists with the same shape in a ResNet34: only the depth tells them apart.
    deeper = dataclasses.replace(MONO, model=ModelConfig(num_layers=34))
    save_source(tmp_path / "src", deeper)
    depth, pose = build(ModelConfig(), use_pose_net=True)
    before = values(depth.weights)
    with pytest.raises(ValueError, match=r"--encoder_init .*ResNet34 depth_net encoder \(--num_layers\), "
                                         r"this run a ResNet18"):
        run_checkpoints.restore_encoders(str(tmp_path / "src"), depth, pose)
    assert_all_equal(values(depth.weights), before)  # nothing assigned


def test_missing_source_names_the_path(tmp_path):
    depth, _ = build(ModelConfig(), use_pose_net=False)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run_checkpoints.restore_encoders(str(tmp_path / "nowhere"), depth)


def test_exclusive_with_init_checkpoint():
    assert TrainConfig(encoder_init="runs/pretrain").encoder_init == "runs/pretrain"
    with pytest.raises(ValueError, match="--init_checkpoint and --encoder_init are exclusive"):
        TrainConfig(init_checkpoint="runs/a", encoder_init="runs/b")


def test_trainer_applies_encoder_init_when_not_resuming(tmp_path):
    from md2tf.training import trainer as trainer_lib
    from tests.training import fakes

    src_depth, src_pose = save_source(tmp_path / "src", MONO)
    config = fakes.tiny_config(str(tmp_path / "run"), encoder_init=str(tmp_path / "src"))
    t = trainer_lib.Trainer(config, dataset_fn=fakes.fake_dataset_fn(8))
    fresh_decoder = values(t.depth_net.decoder.weights)

    assert t.restore().endswith("ckpt-5")

    assert_all_equal(values(t.depth_net.encoder.weights), values(src_depth.encoder.weights))
    assert_all_equal(values(t.pose_net.encoder.weights), values(src_pose.encoder.weights))
    assert_all_equal(values(t.depth_net.decoder.weights), fresh_decoder)
