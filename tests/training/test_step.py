"""The replica step: pose plumbing (pair order, inversion for negative offsets, stereo source), the
auto-mask warm-up switch and its trainer schedule."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry, losses
from md2tf.config import ConfigError, DataConfig, ExperimentConfig, LossConfig, TrainConfig
from md2tf.data.batch import Batch
from md2tf.training import hooks as hooks_lib
from md2tf.training import step
from md2tf.training import trainer as trainer_lib
from tests.training import fakes


class RecordingPoseNet:
    """Pose 'network' whose output encodes its input order: x-translation = mean(first) - mean(second),
    y-rotation = 0.1 * the same, so swapping the pair flips the sign."""

    def __init__(self):
        self.calls = []

    def __call__(self, pair, training=False):
        self.calls.append(pair.shape)
        d = tf.reduce_mean(pair[..., :3], axis=[1, 2, 3]) - tf.reduce_mean(pair[..., 3:], axis=[1, 2, 3])
        zeros = tf.zeros_like(d)
        return tf.stack([zeros, 0.1 * d, zeros], -1), tf.stack([d, zeros, zeros], -1)


def constant_batch(values, stereo_tx=0.0, b=2, h=8, w=8):
    """Target filled with values[0], sources with values[1:]."""
    target = tf.fill([b, h, w, 3], values[0])
    sources = tf.stack([tf.fill([b, h, w, 3], v) for v in values[1:]], axis=1)
    stereo = np.tile(np.eye(4, dtype=np.float32), (b, 1, 1))
    stereo[:, 0, 3] = stereo_tx
    return Batch(target=(target,), sources=(sources,), target_aug=target, sources_aug=sources,
                 intrinsics=tf.eye(3, batch_shape=[b]), stereo_source_from_target=tf.constant(stereo),
                 depth_gt=tf.zeros([b, h, w, 1]))


def matrix(d):
    return geometry.pose_to_matrix(tf.constant([[0.0, 0.1 * d, 0.0]]), tf.constant([[d, 0.0, 0.0]]))[0]


def test_negative_offset_uses_earlier_first_and_is_inverted():
    batch = constant_batch([0.2, 0.5, 0.9])
    poses = step.source_from_target_poses(RecordingPoseNet(), batch,
                                          DataConfig(frame_offsets=(0, -1, 1)), training=False)
    assert poses.shape == (2, 2, 4, 4)
    # f = -1: PoseNet([I_-1, I_0]) -> d = 0.5 - 0.2, then inverted.
    np.testing.assert_allclose(poses[0, 0], np.linalg.inv(matrix(0.5 - 0.2).numpy()), atol=1e-6)
    # f = +1: PoseNet([I_0, I_1]) -> d = 0.2 - 0.9, not inverted.
    np.testing.assert_allclose(poses[0, 1], matrix(0.2 - 0.9), atol=1e-6)


def test_stereo_source_comes_last_from_the_batch():
    batch = constant_batch([0.2, 0.5, 0.7], stereo_tx=-0.1)
    net = RecordingPoseNet()
    poses = step.source_from_target_poses(net, batch, DataConfig(frame_offsets=(0, 1), use_stereo=True),
                                          training=False)
    assert len(net.calls) == 1 and poses.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(poses[:, 1], batch.stereo_source_from_target, atol=0)


def test_stereo_only_needs_no_pose_net():
    batch = constant_batch([0.2, 0.5], stereo_tx=0.1)
    poses = step.source_from_target_poses(None, batch, DataConfig(frame_offsets=(0,), use_stereo=True),
                                          training=False)
    np.testing.assert_allclose(poses[:, 0], batch.stereo_source_from_target, atol=0)


def test_missing_pose_net_is_an_error():
    with pytest.raises(ValueError, match="pose network"):
        step.source_from_target_poses(None, constant_batch([0.2, 0.5]), DataConfig(frame_offsets=(0, 1)),
                                      training=False)


def test_noise_seed_depends_on_step_only():
    a = step.noise_seed_for(tf.constant(5, tf.int64)).numpy()
    b = step.noise_seed_for(tf.constant(5, tf.int64)).numpy()
    c = step.noise_seed_for(tf.constant(6, tf.int64)).numpy()
    assert a.dtype == np.int32 and a.shape == (2,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_all_finite():
    assert bool(step.all_finite([tf.ones(3), None, tf.zeros([2, 2])]))
    assert not bool(step.all_finite([tf.ones(3), tf.constant([1.0, np.nan])]))
    assert not bool(step.all_finite([tf.constant(np.inf)]))


def test_rotation_deg_is_the_mean_angle_per_frame():
    """Angles of known rotations (about any axis), divided by the frame offset, averaged."""
    def rotation(axis, degrees):
        axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        a = np.radians(degrees)
        m = np.eye(4)
        m[:3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k  # Rodrigues
        return m

    poses = np.stack([[rotation([0, 1, 0], 2.0), rotation([1, 1, 0], 3.0), rotation([1, 0, 0], 9.0)],
                      [rotation([0, 0, 1], 0.5), rotation([1, 2, 3], 1.0), np.eye(4)]])  # [2, 3, 4, 4]
    got = step.rotation_deg(tf.constant(poses, tf.float32), temporal_offsets=(-1, 2))
    # The third source (the stereo partner) is left out; offset 2 halves its angle.
    assert float(got) == pytest.approx(np.mean([2.0, 1.5, 0.5, 0.5]), abs=2e-3)
    # A car's hundredth of a degree survives float32 (an arccos of the trace would round it to 0).
    tiny = step.rotation_deg(tf.constant(rotation([0, 1, 0], 0.01)[None, None], tf.float32), (1,))
    assert float(tiny) == pytest.approx(0.01, rel=1e-3)


def test_automask_off_runs_the_loss_without_auto_masking():
    """``automask_off`` picks, inside the graph, between the configured loss and the same loss with
    ``automask=False``; None leaves the configured one."""
    depth_net, pose_net = fakes.tiny_networks()
    batch = fakes.fake_samples(2)
    data = fakes.tiny_config("unused").data
    config = LossConfig(identity_noise_std=0.0)

    def loss(loss_config, automask_off):
        def run(off):
            out = step.forward(depth_net, pose_net, batch, data, loss_config, losses.monodepth2_loss, None,
                               False, automask_off=off)
            return out.losses.total, out.losses.automask[0]

        # As the trainer runs it: traced once, the switch a tensor inside the graph.
        total, mask = tf.function(run)(automask_off)
        return float(total), mask.numpy()

    off = tf.Variable(False)
    masked, mask = loss(config, off)
    off.assign(True)
    unmasked, no_mask = loss(config, off)
    assert masked == pytest.approx(loss(config, None)[0], rel=1e-5)
    assert unmasked == pytest.approx(loss(dataclasses.replace(config, automask=False), None)[0], rel=1e-5)
    assert 0 < mask.mean() < 1 and no_mask.min() == 1  # the fake frames hold some still pixels
    assert masked < unmasked  # the identity can only lower each pixel's minimum


@pytest.mark.parametrize("warmup, masked, xla_loss", [(0, True, False), (1, False, False), (2, False, True)])
def test_trainer_masks_from_the_end_of_the_warmup(tmp_path, warmup, masked, xla_loss):
    """A 1-step run: auto-masked (some pixels masked) unless the step lies in the warm-up; also with
    the XLA-compiled loss (both losses compiled, the switch outside them)."""
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=1, max_steps=1, validate_every_epoch=False,
                               image_log_every=0, jit_compile_loss=xla_loss)
    config = dataclasses.replace(config, loss=LossConfig(automask_warmup_steps=warmup))
    trainer = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(4))
    monitors = [h for h in trainer.default_hooks(1, 0) if isinstance(h, hooks_lib.RotationMonitor)]
    assert len(monitors) == (0 if warmup else 1)  # the summary's pointer to the warm-up
    result = trainer.train()
    assert (result.last_scalars["automask/masked_fraction"] > 0) == masked
    assert result.last_scalars["pose/rotation_deg"] >= 0
    # A warm-up as long as the run is a mistake the summary names (the mask never starts).
    assert any("covers the whole run (1 steps)" in w for w in result.warnings) == (not masked)


def test_the_mask_starts_on_the_first_step_after_the_warmup(tmp_path):
    """Two steps, one of warm-up: the first unmasked, the second masked (the compiled step reads the
    step counter, it is not retraced)."""
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=2, max_steps=2, validate_every_epoch=False,
                               image_log_every=0)
    config = dataclasses.replace(config, loss=LossConfig(automask_warmup_steps=1))
    trainer = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(4))
    masked = []
    result = trainer.train(step_callback=lambda s, scalars: masked.append(scalars["automask/masked_fraction"]))
    assert len(masked) == 2 and masked[0] == 0 and masked[1] > 0, masked
    assert not result.warnings


def test_automask_warmup_config_errors():
    with pytest.raises(ConfigError, match="--automask_warmup_steps must be >= 0"):
        LossConfig(automask_warmup_steps=-1)
    with pytest.raises(ConfigError, match="--automask_warmup_steps=5 needs --automask"):
        LossConfig(automask=False, automask_warmup_steps=5)
    with pytest.raises(ConfigError, match="does not run in a whole-step --jit_compile"):
        ExperimentConfig(loss=LossConfig(automask_warmup_steps=5), train=TrainConfig(jit_compile=True))
    ExperimentConfig(loss=LossConfig(automask_warmup_steps=5), train=TrainConfig(jit_compile_loss=True))
