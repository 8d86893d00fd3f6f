"""Speed supervision (the velocity loss): config, start-up checks, data, one training step."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
from PIL import Image

from md2tf.config import (
    KITTI_BASELINE_M,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    LossConfig,
    TrainConfig,
    WorldConfig,
)
from md2tf.data import datasets, pipeline
from md2tf.training import inputs
from md2tf.training import trainer as trainer_lib
from tests.data import fake_kitti
from tests.training import fakes


def speed_config(run_dir: str, **train) -> ExperimentConfig:
    config = fakes.tiny_config(run_dir, **train)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, speed_source="gt"),
                               loss=LossConfig(speed_weight=0.1))


def test_config_needs_a_source_and_a_pose_network():
    with pytest.raises(ConfigError, match=r"--speed_weight=0.1 needs --speed_source \(gt or file\)"):
        ExperimentConfig(loss=LossConfig(speed_weight=0.1))
    with pytest.raises(ConfigError, match="--speed_weight supervises the pose network's translation"):
        ExperimentConfig(data=DataConfig(speed_source="gt"), loss=LossConfig(speed_weight=0.1),
                         train=TrainConfig(pose_source="gt"))
    with pytest.raises(ConfigError, match="--speed_weight must be >= 0"):
        LossConfig(speed_weight=-1.0)


def test_one_step_adds_the_weighted_velocity_loss(tmp_path):
    """Known distances (the stand-in poses' 0.1): the speed term is logged, weighted into the total,
    and the step changes the pose network."""
    config = speed_config(str(tmp_path), steps_per_epoch=1, max_steps=1, validate_every_epoch=False,
                          image_log_every=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                            dataset_fn=fakes.fake_dataset_fn(4, with_poses=True))
    before = [v.numpy() for v in t.pose_net.weights]
    result = t.train()
    scalars = result.last_scalars
    assert scalars["loss/speed"] > 0 and np.isfinite(scalars["loss/total"])
    assert max(np.abs(a - v.numpy()).max() for a, v in zip(before, t.pose_net.weights)) > 0
    plain = trainer_lib.Trainer(dataclasses.replace(config, loss=LossConfig(), train=dataclasses.replace(
        config.train, run_dir=str(tmp_path / "plain"))), networks=fakes.tiny_networks,
        dataset_fn=fakes.fake_dataset_fn(4, with_poses=True))
    batch = next(iter(plain.dataset_fn("train", 2, False)))
    for trainer in (t, plain):  # the same weights: the totals differ by exactly 0.1 x speed
        trainer.depth_net.set_weights(t.depth_net.get_weights())
        trainer.pose_net.set_weights(t.pose_net.get_weights())
    with_speed, without = (tr._forward(batch, None, training=False) for tr in (t, plain))
    assert "loss/speed" not in plain.train().last_scalars
    np.testing.assert_allclose(float(with_speed.losses.total),
                               float(without.losses.total) + 0.1 * float(with_speed.speed), rtol=1e-5)


def test_dataset_without_distances_fails_at_startup(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "kitti"), frames=5)
    data = DataConfig(dataset="kitti", data_dir=root, split="synthetic",
                      image_ext=".png", height=32, width=64, speed_source="gt")
    config = ExperimentConfig(data=data, loss=LossConfig(speed_weight=0.1),
                              train=TrainConfig(run_dir=str(tmp_path / "run")))
    with pytest.raises(ValueError, match="no .*oxts/timestamps.txt"):  # KITTI raw: from its oxts
        trainer_lib.Trainer(config)
    file_config = dataclasses.replace(config, data=dataclasses.replace(data, speed_source="file"))
    with pytest.raises(ValueError, match="--speed_source=file reads speeds.csv .* not --dataset=kitti"):
        inputs.check_distances_available(file_config)


def test_kitti_raw_distances_come_from_its_oxts(tmp_path):
    """A KITTI raw tree with oxts (vf 10 m/s, then 12, at 10 Hz): each sample's distance to its
    neighbours is the integrated forward velocity."""
    from tests.data.test_speeds import _oxts_drive

    root = fake_kitti.write_tree(str(tmp_path / "kitti"), frames=5)
    _oxts_drive(root, [10.0, 10.0, 10.0, 12.0, 12.0])
    data = DataConfig(dataset="kitti", data_dir=root, split="synthetic", image_ext=".png", height=32,
                      width=64, speed_source="gt")
    samples = datasets.get_dataset("kitti").list_samples(data, "train")
    assert samples
    vf = np.array([10.0, 10.0, 10.0, 12.0, 12.0])
    for sample in samples:
        i = int(sample.name.split()[1])
        expected = [0.1 * (vf[i - 1] + vf[i]) / 2, 0.1 * (vf[i] + vf[i + 1]) / 2]
        np.testing.assert_allclose(sample.temporal_distance, expected, rtol=1e-5)
    inputs.check_distances_available(ExperimentConfig(data=data, loss=LossConfig(speed_weight=0.1)))


def _frames(folder: str, n: int) -> None:
    os.makedirs(folder)
    y, x = np.mgrid[0:24, 0:80]
    for i in range(n):
        image = np.stack([x * 3 + i, y * 10, (x + y) * 2], -1).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(folder, f"{i:06d}.png"))
    with open(os.path.join(folder, "intrinsics.json"), "w") as f:
        json.dump({"fx": 0.6, "fy": 1.9, "cx": 0.5, "cy": 0.5}, f)


def test_folder_speeds_csv_reaches_the_batch_at_the_frames_times(tmp_path):
    """speeds.csv at times.txt's frame times (20 fps here) becomes ``Batch.temporal_distance``;
    without the file the start-up check names the sample and where speeds come from."""
    root = str(tmp_path / "clip")
    _frames(root, 6)
    data = DataConfig(dataset="folder", data_dir=root, image_ext=".png", height=32, width=64,
                      speed_source="file", gt_height=32, gt_width=64)
    config = ExperimentConfig(data=data, loss=LossConfig(speed_weight=0.1))
    with pytest.raises(ValueError, match=r"--speed_weight=0.1 needs the distance travelled between "
                                         r"frames, but --dataset=folder .* speeds.csv"):
        inputs.check_distances_available(config)
    with open(os.path.join(root, "times.txt"), "w") as f:
        f.write("\n".join(f"{i / 20:.3f}" for i in range(6)))
    with open(os.path.join(root, "speeds.csv"), "w") as f:
        f.write("time,speed\n0,4\n1,14\n")  # v = 4 + 10 t
    inputs.check_distances_available(config)
    batch = next(iter(pipeline.make_dataset(data, "test", batch_size=4, training=False,
                                            deterministic=True)))
    t = np.arange(1, 5) / 20  # targets 1..4, neighbours -1, +1 (1/20 s apart)

    def distance(a, b):
        return 4 * (b - a) + 5 * (b * b - a * a)

    expected = np.stack([distance(t - 0.05, t), distance(t, t + 0.05)], axis=1)
    np.testing.assert_allclose(batch.temporal_distance.numpy(), expected, rtol=1e-4)


def test_synthetic_world_distances_are_the_pose_translations(tmp_path):

    config = DataConfig(dataset="synthetic", data_dir=str(tmp_path / "world"), image_ext=".png",
                        height=32, width=64, speed_source="gt",
                        synthetic=dataclasses.replace(DataConfig().synthetic, drives=2, frames=8,
                                                      lidar=False, odometry=False))
    dataset = datasets.get_dataset("synthetic")
    dataset.prepare(config, progress=False)
    samples = dataset.list_samples(config, "train")
    for s in samples:
        np.testing.assert_allclose(s.temporal_distance,
                                   np.linalg.norm(s.temporal_source_from_target[:, :3, 3], axis=-1))
    assert max(float(np.max(s.temporal_distance)) for s in samples) > 0.3  # the car moves
    assert dataset.first_without_distances(config, "train") is None


def test_stereo_with_metric_motion_needs_the_rigs_baseline_in_metres():
    """MS with speeds or known poses: metres from both, or a one-line error at start-up."""

    def config(dataset: str, baseline: float, **train) -> ExperimentConfig:
        data = DataConfig(dataset=dataset, use_stereo=True, stereo_baseline=baseline, speed_source="gt")
        speed = LossConfig(speed_weight=0.0 if train else 0.1)
        return ExperimentConfig(data=data, loss=speed, train=TrainConfig(**train))

    assert datasets.get_dataset("kitti").rig_baseline_m(DataConfig()) == KITTI_BASELINE_M
    world = DataConfig(dataset="synthetic", synthetic=WorldConfig(baseline=0.3))
    assert datasets.get_dataset("synthetic").rig_baseline_m(world) == 0.3
    assert datasets.get_dataset("folder").rig_baseline_m(DataConfig()) is None
    with pytest.raises(ValueError, match=r"--speed_weight makes depth metres, so the stereo pair must "
                                         r"too: --stereo_baseline=0.1 is not the rig's 0.54 m "
                                         r"\(--dataset=kitti\); give --stereo_baseline=0.54"):
        inputs.check_stereo_units(config("kitti", 0.1))
    with pytest.raises(ValueError, match=r"--pose_source=gt makes depth metres, .* \(--dataset=synthetic\)"):
        inputs.check_stereo_units(config("synthetic", 0.1, pose_source="gt"))
    inputs.check_stereo_units(config("kitti", 0.537))  # a rectified KITTI baseline: within 2 %
    inputs.check_stereo_units(config("synthetic", 0.54))
    inputs.check_stereo_units(config("folder", 0.1))  # the rig is unknown: nothing to compare
    nothing_metric = ExperimentConfig(data=DataConfig(dataset="kitti", use_stereo=True))
    inputs.check_stereo_units(nothing_metric)  # the paper's MS: 0.1 units
