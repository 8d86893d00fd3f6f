"""End to end on the built-in synthetic world: lidar GT vs dense GT, a trained checkpoint -> metrics,
odometry and benchmark PNGs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from md2tf.config import EvalConfig, ExperimentConfig
from md2tf.data.poses import read_poses_file
from md2tf.data.splits import read_split
from md2tf.evaluation import gt_depth, kitti_benchmark, odometry_task, runner, sources
from md2tf.rundir import RunDir

pytest.importorskip("md2tf.data.synthetic.writer")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from md2tf.data.synthetic import world as w
    from md2tf.data.synthetic import writer

    root = str(tmp_path_factory.mktemp("world"))
    config = w.WorldConfig(drives=1, frames=10, height=64, width=192, ext="png")
    writer.generate_world(root, config, progress=False)
    return root


def test_lidar_gt_agrees_with_dense_gt(world):
    """The velodyne projection (KITTI calibration chain) lands on the right pixels of the dense GT.

    Lidar GT is velodyne x (27 cm behind camera 0) at pixel round(u) - 1, dense GT is camera z at the
    pixel centre, so they agree to a few per cent, not exactly; a wrong projection would not.
    """
    lines = read_split(os.path.join(world, "splits", "synthetic", "test_files.txt"), kind="raw")
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


def depth_weights(net) -> list[np.ndarray]:
    return [v.numpy() for v in net.weights]


@pytest.mark.slow  # real ResNet18 networks trained 3 steps at 64x128 + an evaluate subprocess: ~60 s
def test_trained_checkpoint_evaluation_and_odometry(world, tmp_path):
    """Train 3 steps on the world, then evaluate the checkpoint the trainer wrote: depth metrics (next
    to its own initial weights), odometry, and benchmark PNGs through ``python -m md2tf.evaluate``."""
    from md2tf import models
    from md2tf.config import DataConfig, ModelConfig, TrainConfig
    from md2tf.deploy.images import load_image_rgb
    from md2tf.models.checkpoint import load_models
    from md2tf.training.trainer import Trainer

    splits = os.path.join(world, "splits")
    gt_depth.export_gt_depths("synthetic", world, splits, source="dense")
    run_dir, init_dir = str(tmp_path / "run"), str(tmp_path / "init")
    experiment = ExperimentConfig(  # configs/smoke.flags sizes: 64x128, batch 2
        data=DataConfig(dataset="synthetic", data_dir=world, split="synthetic", image_ext=".png",
                        intrinsics="calib", height=64, width=128, gt_height=64, gt_width=128),
        model=ModelConfig(),
        train=TrainConfig(run_dir=run_dir, batch_size=2, num_epochs=1, steps_per_epoch=3, max_steps=3,
                          log_every=1, save_every_steps=3, progress_bar=False, validate_every_epoch=False,
                          strategy="default", learning_rate=1e-3))
    trainer = Trainer(experiment)
    init = depth_weights(trainer.depth_net)
    models.save_models(init_dir, experiment, trainer.depth_net, trainer.pose_net)
    result = trainer.train()
    assert (result.step, result.nonfinite_steps) == (3, 0) and result.checkpoint.endswith("ckpt-3")

    # The run directory resolves to the trained checkpoint, whose weights are not the initial ones.
    _, loaded, _ = load_models(run_dir)
    trained = depth_weights(loaded)
    for a, b in zip(trained, depth_weights(trainer.depth_net)):
        np.testing.assert_array_equal(a, b)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(trained, init)) > 1e-4

    config = EvalConfig(models=(run_dir, init_dir), names=("trained", "init"), eval_split="synthetic",
                        data_dir=world, image_ext=".png", batch_size=2, progress=False,
                        output_json=str(tmp_path / "r.json"))
    report = runner.run_evaluation(config)
    assert "trained" in report and "abs_rel" in report
    scores = json.loads((tmp_path / "r.json").read_text())["models"]
    for name in ("trained", "init"):
        s = scores[name]
        assert s["num_scored"] == s["num_images"] > 0 and s["nonfinite_images"] == []
        assert 0 <= s["metrics"]["abs_rel"] < 10 and 0 <= s["metrics"]["a1"] <= 1
    assert scores["trained"]["metrics"] != scores["init"]["metrics"]  # not the initial network

    # Odometry on the world's GT poses with the trained pose network: runs and is finite.
    poses = os.path.join(world, "2019_10_27")
    drive = [d for d in os.listdir(poses) if d.endswith("_sync")][0]
    odom_split = tmp_path / "odom.txt"
    odom_split.write_text("".join(f"2019_10_27/{drive} {i} l\n" for i in range(4)))
    config = EvalConfig(models=(run_dir,), task="odometry", eval_split="synthetic_odom", data_dir=world,
                        split_file=str(odom_split), poses_file=os.path.join(poses, drive, "poses.txt"),
                        image_ext=".png", progress=False, pose_refine_steps=3)
    report = odometry_task.run_odometry_evaluation(config)
    assert "ATE" in report and "nan" not in report.lower() and odometry_task.CONSTANT_VELOCITY in report
    assert f"{os.path.basename(run_dir)} (refined)" in report  # the aligned poses: their own row
    gt = read_poses_file(os.path.join(poses, drive, "poses.txt"))
    np.testing.assert_allclose(gt[0], np.eye(4), atol=1e-9)  # world frame = camera 02 at frame 0
    # A pose network trained with known rotations (--pose_source=rotation) has no odometry to score.
    saved = RunDir(run_dir).config_path
    original = open(saved).read()
    values = json.loads(original)
    values["train"]["pose_source"] = "rotation"
    with open(saved, "w") as f:
        json.dump(values, f)
    with pytest.raises(ValueError, match=r"learned the translation alone .* its rotations are untrained"):
        odometry_task.run_odometry_evaluation(config)
    with open(saved, "w") as f:
        f.write(original)

    # Benchmark split ('image N' lines) through the CLI: the PNGs are the trained model's predictions.
    bench = tmp_path / "bench"
    os.makedirs(bench / "splits" / "benchmark")
    os.makedirs(bench / "image")
    test_lines = read_split(os.path.join(splits, "synthetic", "test_files.txt"), kind="raw")[:2]
    images = []
    for i, line in enumerate(test_lines):
        src = os.path.join(world, line.folder, "image_02", "data", f"{line.frame_index:010d}.png")
        images.append(load_image_rgb(src))
        Image.fromarray(images[-1]).save(bench / "image" / f"{i:010d}.png")
    (bench / "splits" / "benchmark" / "test_files.txt").write_text(
        "".join(f"image {i}\n" for i in range(len(images))))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-m", "md2tf.evaluate", "--eval_split=benchmark",
                          f"--data_dir={bench}", f"--splits_dir={bench / 'splits'}",
                          "--image_ext=.png", f"--models={run_dir}", "--names=trained",
                          f"--output_dir={bench / 'out'}", "--noprogress"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"{len(images)} PNGs" in out.stdout
    source = sources.depth_net_source(loaded, 64, 128, lambda: iter(images), len(images), "mine")
    for i, disp in enumerate(source):
        with Image.open(bench / "out" / "trained" / f"{i:010d}.png") as image:
            got = np.asarray(image).astype(np.int64)
        want = kitti_benchmark.benchmark_depth_png(disp)[0].astype(np.int64)
        assert got.shape == (352, 1216) and got.max() > 0
        assert np.mean(np.abs(got - want) <= 2) > 0.99  # same network, two processes (float noise)
