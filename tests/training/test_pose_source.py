"""``--pose_source=gt``: the dataset's known poses replace the pose network; ``rotation``: their
rotations replace the network's (config, step, trainer)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from md2tf.config import ConfigError, DataConfig, ExperimentConfig, TrainConfig
from md2tf.data.batch import Batch
from md2tf.training import inputs, step
from md2tf.training import trainer as trainer_lib
from tests.data import fake_kitti
from tests.training import fakes


def gt_config(run_dir: str, **train) -> ExperimentConfig:
    config = fakes.tiny_config(run_dir, pose_source="gt", **train)
    assert not config.use_pose_net
    return config


def test_config_builds_no_pose_net_and_needs_temporal_frames():
    assert ExperimentConfig().use_pose_net  # the paper's M: pose network
    assert not ExperimentConfig(train=TrainConfig(pose_source="gt")).use_pose_net
    with pytest.raises(ConfigError, match=r"--pose_source must be one of network, gt, rotation; got 'imu'"):
        TrainConfig(pose_source="imu")
    with pytest.raises(ConfigError, match=r"--pose_source=gt needs temporal source frames"):
        ExperimentConfig(data=DataConfig(frame_offsets=(0,), use_stereo=True),
                         train=TrainConfig(pose_source="gt"))
    assert ExperimentConfig(train=TrainConfig(pose_source="rotation")).use_pose_net  # translation
    with pytest.raises(ConfigError, match=r"--pose_source=rotation needs temporal source frames"):
        ExperimentConfig(data=DataConfig(frame_offsets=(0,), use_stereo=True),
                         train=TrainConfig(pose_source="rotation"))


def test_step_takes_the_batch_poses_then_the_stereo_partner():
    b, h, w = 2, 8, 8
    known = np.tile(np.eye(4, dtype=np.float32), (b, 2, 1, 1))
    known[:, 0, 2, 3], known[:, 1, 2, 3] = 0.7, -0.7
    stereo = np.tile(np.eye(4, dtype=np.float32), (b, 1, 1))
    stereo[:, 0, 3] = -0.1
    images = tf.zeros([b, h, w, 3])
    batch = Batch(target=(images,), sources=(tf.zeros([b, 3, h, w, 3]),), target_aug=images,
                  sources_aug=tf.zeros([b, 3, h, w, 3]), intrinsics=tf.eye(3, batch_shape=[b]),
                  stereo_source_from_target=tf.constant(stereo), depth_gt=tf.zeros([b, h, w, 1]),
                  temporal_source_from_target=tf.constant(known))
    poses = step.source_from_target_poses(None, batch, DataConfig(frame_offsets=(0, -1, 1),
                                                                  use_stereo=True), training=True)
    np.testing.assert_array_equal(poses[:, :2], known)
    np.testing.assert_array_equal(poses[:, 2], stereo)


def test_known_rotation_replaces_the_networks_and_keeps_its_translation():
    """``--pose_source=rotation``: source_from_target = ``[R_known | t]`` with the network's
    translation, in the network's frame for the inverted earlier source: ``[R | -R t]``."""
    b, h, w = 2, 8, 8
    rng = np.random.default_rng(3)
    known = np.tile(np.eye(4, dtype=np.float32), (b, 2, 1, 1))
    for i in range(b):
        for j in range(2):
            r = tf.linalg.expm(tf.constant(np.cross(np.eye(3), rng.normal(0, 0.05, 3)), tf.float64))
            known[i, j, :3, :3] = r.numpy()
            known[i, j, :3, 3] = rng.normal(0, 1, 3)  # a known translation the step must not use
    images = tf.zeros([b, h, w, 3])
    batch = Batch(target=(images,), sources=(tf.zeros([b, 2, h, w, 3]),), target_aug=images,
                  sources_aug=tf.zeros([b, 2, h, w, 3]), intrinsics=tf.eye(3, batch_shape=[b]),
                  stereo_source_from_target=tf.eye(4, batch_shape=[b]), depth_gt=tf.zeros([b, h, w, 1]),
                  temporal_source_from_target=tf.constant(known))
    t = np.array([[0.1, -0.2, 0.9], [0.3, 0.0, -0.5]], np.float32)

    def pose_net(pair, training=False):
        del pair, training
        return tf.constant([[0.3, 0.2, 0.1]] * b), tf.constant(t)  # a rotation to ignore

    poses = step.source_from_target_poses(pose_net, batch, DataConfig(frame_offsets=(0, -1, 1)),
                                          training=True, known_rotation=True).numpy()
    np.testing.assert_allclose(poses[..., :3, :3], known[..., :3, :3], atol=1e-6)
    np.testing.assert_allclose(poses[:, 1, :3, 3], t, atol=1e-6)  # +1: [I_0, I_1], as predicted
    expected = -np.einsum("bij,bj->bi", known[:, 0, :3, :3], t)  # -1: [I_-1, I_0], inverted
    np.testing.assert_allclose(poses[:, 0, :3, 3], expected, atol=1e-6)
    np.testing.assert_array_equal(poses[..., 3, :], np.tile([0, 0, 0, 1], (b, 2, 1)))
    with pytest.raises(ValueError, match=r"need known rotations \(--pose_source=rotation\), but the "
                                         r"batch has no known poses"):
        step.source_from_target_poses(pose_net, batch._replace(temporal_source_from_target=None),
                                      DataConfig(frame_offsets=(0, -1, 1)), training=True,
                                      known_rotation=True)


def test_one_step_with_known_rotations_trains_the_translation(tmp_path):
    """The stand-in networks and known poses: the step changes the pose network (its translation)."""
    config = fakes.tiny_config(str(tmp_path), pose_source="rotation", steps_per_epoch=1, max_steps=1,
                               validate_every_epoch=False, image_log_every=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                            dataset_fn=fakes.fake_dataset_fn(4, with_poses=True))
    before = [v.numpy() for v in t.pose_net.trainable_variables]
    result = t.train()
    assert np.isfinite(result.last_scalars["loss/total"])
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, t.pose_net.trainable_variables)) > 0
    # The head's axis-angle outputs (its first 3 columns) get no gradient: the rotation is the batch's.
    kernel_before = before[[v.path for v in t.pose_net.trainable_variables].index(t.pose_net.head.kernel.path)]
    np.testing.assert_array_equal(t.pose_net.head.kernel.numpy()[:, :3], kernel_before[:, :3])
    assert np.abs(t.pose_net.head.kernel.numpy()[:, 3:] - kernel_before[:, 3:]).max() > 0


def test_one_step_trains_depth_only_from_known_poses(tmp_path):
    """The stand-in depth network, no pose network: one step changes the depth weights."""
    config = gt_config(str(tmp_path), steps_per_epoch=1, max_steps=1, validate_every_epoch=False,
                       image_log_every=0)
    t = trainer_lib.Trainer(config, networks=lambda: (fakes.TinyDepthNet(), None),
                            dataset_fn=fakes.fake_dataset_fn(4, with_poses=True))
    before = [v.numpy() for v in t.depth_net.weights]
    result = t.train()
    assert result.step == 1 and result.nonfinite_steps == 0
    assert np.isfinite(result.last_scalars["loss/total"])
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, t.depth_net.weights)) > 0
    assert t.pose_net is None and len(t.variables) == len(t.depth_net.trainable_variables)


def test_known_poses_with_a_learned_k_log_their_rotation(tmp_path):
    """The rotation between frames determines a learned K (hooks.IntrinsicsMonitor checks it): with
    known poses it is theirs, 2 degrees about the vertical between neighbouring frames here."""
    base = gt_config(str(tmp_path), steps_per_epoch=1, max_steps=1, validate_every_epoch=False,
                     image_log_every=0)
    config = dataclasses.replace(base, data=dataclasses.replace(base.data, intrinsics="learned"))
    a = np.radians(2.0)
    turn = np.array([[np.cos(a), 0, np.sin(a), 0], [0, 1, 0, 0], [-np.sin(a), 0, np.cos(a), 0],
                     [0, 0, 0, 1]], np.float32)
    fake = fakes.fake_dataset_fn(4, with_poses=True)

    def turning(split, batch_size, training, input_context=None, seed=None):
        ds = fake(split, batch_size, training, input_context, seed)
        return ds.map(lambda b: b._replace(temporal_source_from_target=tf.stack(
            [tf.linalg.inv(turn) @ b.temporal_source_from_target[:, 0],
             turn @ b.temporal_source_from_target[:, 1]], axis=1)))

    start = np.array([[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]], np.float32)
    t = trainer_lib.Trainer(config, networks=lambda: (fakes.TinyDepthNet(), None), dataset_fn=turning,
                            learned_cameras=(("clip",), start[None]))
    assert t.pose_net is None
    assert t.train().last_scalars["pose/rotation_deg"] == pytest.approx(2.0, abs=1e-3)


@pytest.mark.slow
def test_trainer_builds_and_saves_no_pose_network(tmp_path):
    """The real networks: with gt the trainer builds only the depth network; one step changes it
    and the checkpoint holds no pose variables."""
    config = gt_config(str(tmp_path), steps_per_epoch=1, max_steps=1, validate_every_epoch=False,
                       image_log_every=0)
    t = trainer_lib.Trainer(config, dataset_fn=fakes.fake_dataset_fn(4, with_poses=True))
    assert t.pose_net is None
    before = [v.numpy() for v in t.depth_net.trainable_variables]
    result = t.train()
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, t.depth_net.trainable_variables)) > 0
    names = [name for name, _ in tf.train.list_variables(result.checkpoint)]
    assert any("depth" in n for n in names) and not any("pose" in n for n in names), names


def test_dataset_without_poses_fails_at_startup(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "kitti"), frames=5)
    data = DataConfig(dataset="kitti", data_dir=root, split="synthetic", image_ext=".png", height=32,
                      width=64)
    config = ExperimentConfig(data=data, train=TrainConfig(run_dir=str(tmp_path / "run"),
                                                           pose_source="gt"))
    with pytest.raises(ValueError, match=r"^--pose_source=gt needs known camera poses, but "
                                         r"--dataset=kitti .* has none for train sample"):
        trainer_lib.Trainer(config)
    inputs.check_poses_available(ExperimentConfig(data=data))  # network poses: nothing needed
