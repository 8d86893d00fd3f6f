"""End to end on the built-in synthetic world: lidar GT vs dense GT, checkpoint -> metrics, odometry."""

from __future__ import annotations

import os

import numpy as np
import pytest

from md2tf.config import EvalConfig, ExperimentConfig
from md2tf.evaluation import gt_depth, odometry, runner

pytest.importorskip("md2tf.data.synthetic.writer")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from md2tf.data.synthetic import world as w
    from md2tf.data.synthetic import writer

    root = str(tmp_path_factory.mktemp("world"))
    config = w.WorldConfig(drives=1, frames=6, height=64, width=192, ext="png")
    writer.generate_world(root, config, progress=False)
    return root


def test_lidar_gt_agrees_with_dense_gt(world):
    """The velodyne projection (KITTI calibration chain) lands on the right pixels of the dense GT.

    Lidar GT is velodyne x (27 cm behind camera 0) at pixel round(u) - 1, dense GT is camera z at the
    pixel centre, so they agree to a few per cent, not exactly; a wrong projection would not.
    """
    lines = gt_depth.read_split_file(os.path.join(world, "splits", "synthetic", "test_files.txt"))
    for line in lines[:2]:
        lidar = gt_depth.load_gt_depth(world, line, "velodyne")
        dense = gt_depth.load_gt_depth(world, line, "dense")
        assert lidar.shape == dense.shape
        dense_shifted = dense[1:, 1:]  # lidar[r, c] ~ dense[r + 1, c + 1] because of the "- 1"
        lid = lidar[:-1, :-1]
        mask = (lid > 0) & (dense_shifted > 0)
        assert mask.sum() > 0.2 * mask.size
        rel = np.abs(lid[mask] - dense_shifted[mask]) / dense_shifted[mask]
        assert np.median(rel) < 0.06
        assert np.mean(rel < 0.25) > 0.9


@pytest.mark.slow
def test_checkpoint_evaluation_and_odometry(world, tmp_path):
    from md2tf import models
    from md2tf.config import DataConfig, ModelConfig

    splits = os.path.join(world, "splits")
    gt_depth.export_gt_depths("synthetic", world, splits, source="dense")
    experiment = ExperimentConfig(data=DataConfig(height=64, width=192), model=ModelConfig())
    depth_net, pose_net = models.build(experiment.model, use_pose_net=True, load_weights=False)
    run_dir = str(tmp_path / "run")
    models.save_models(run_dir, experiment, depth_net, pose_net)

    config = EvalConfig(models=(run_dir,), names=("tiny",), eval_split="synthetic", data_dir=world,
                        image_ext=".png", batch_size=2, progress=False,
                        output_json=str(tmp_path / "r.json"))
    report = runner.run_evaluation(config)
    assert "tiny" in report and "abs_rel" in report
    import json

    scores = json.loads((tmp_path / "r.json").read_text())["models"]["tiny"]
    assert scores["num_scored"] == scores["num_images"] > 0
    assert 0 <= scores["metrics"]["abs_rel"] and 0 <= scores["metrics"]["a1"] <= 1

    # Odometry on the world's GT poses with the untrained pose network: runs and is finite.
    poses = os.path.join(world, "2019_10_27")
    drive = [d for d in os.listdir(poses) if d.endswith("_sync")][0]
    odom_split = tmp_path / "odom.txt"
    odom_split.write_text("".join(f"2019_10_27/{drive} {i} l\n" for i in range(4)))
    config = EvalConfig(models=(run_dir,), task="odometry", eval_split="synthetic_odom", data_dir=world,
                        split_file=str(odom_split), poses_file=os.path.join(poses, drive, "poses.txt"),
                        image_ext=".png", progress=False)
    report = runner.run_odometry_evaluation(config)
    assert "ATE" in report
    gt = odometry.read_kitti_poses(os.path.join(poses, drive, "poses.txt"))
    np.testing.assert_allclose(gt[0], np.eye(4), atol=1e-9)  # world frame = camera 02 at frame 0
