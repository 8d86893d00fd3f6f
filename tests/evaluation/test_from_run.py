"""``md2tf.evaluate --models <run dir>`` by itself: settings from config.json, GT exported on the fly."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from md2tf import evaluate, models
from md2tf.config import DataConfig, EvalConfig, ExperimentConfig, ModelConfig
from md2tf.data import synthetic
from md2tf.evaluation import from_run, gt_depth, runner
from md2tf.flags import call_command
from md2tf.rundir import RunDir

H, W = 64, 128


def write_run(path, **data) -> str:
    RunDir(str(path)).write_config(ExperimentConfig(data=DataConfig(**data)))
    return str(path)


def test_synthetic_run_gives_split_data_dir_and_image_ext(tmp_path):
    run = write_run(tmp_path / "run", dataset="synthetic", data_dir="world", image_ext=".png")
    config, note = from_run.with_run_defaults(EvalConfig(models=(run,)), given=())
    assert (config.eval_split, config.data_dir, config.image_ext) == ("synthetic", "world", ".png")
    assert "--eval_split=synthetic" in note and "--image_ext=.png" in note and run in note


def test_flags_given_on_the_command_line_win(tmp_path):
    run = write_run(tmp_path / "run", dataset="synthetic", data_dir="world", image_ext=".png")
    given = EvalConfig(models=(run,), data_dir="elsewhere", image_ext=".jpg")
    config, _ = from_run.with_run_defaults(given, given=("data_dir", "image_ext"))
    assert (config.eval_split, config.data_dir, config.image_ext) == ("synthetic", "elsewhere", ".jpg")


def test_kitti_run_is_scored_on_eigen(tmp_path):
    run = write_run(tmp_path / "run", dataset="kitti", data_dir="kitti_data")
    config, _ = from_run.with_run_defaults(EvalConfig(models=(run,), eval_split="odd"), given=())
    assert (config.eval_split, config.data_dir, config.image_ext) == ("eigen", "kitti_data", ".jpg")


def test_exports_npy_and_odometry_are_left_alone(tmp_path):
    config = EvalConfig(models=(str(tmp_path / "p.npy"), str(tmp_path / "m.tflite")))
    assert from_run.with_run_defaults(config, given=()) == (config, "")
    run = write_run(tmp_path / "run", dataset="synthetic", data_dir="world")
    odometry = EvalConfig(models=(run,), task="odometry")
    assert from_run.with_run_defaults(odometry, given=()) == (odometry, "")


def test_best_folder_and_checkpoint_prefixes_belong_to_their_run(tmp_path):
    run = write_run(tmp_path / "run", dataset="synthetic", data_dir="world")
    (tmp_path / "run" / "best").mkdir()
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "ckpt-7.index").write_bytes(b"")
    assert from_run.run_dir_of(run) == run
    assert from_run.run_dir_of(f"{run}/best") == str(tmp_path / "run")
    assert from_run.run_dir_of(f"{run}/checkpoints/ckpt-7") == str(tmp_path / "run")
    assert from_run.run_dir_of(str(tmp_path)) is None  # no config.json here or above


def test_runs_that_disagree_need_the_flag(tmp_path):
    a = write_run(tmp_path / "a", dataset="synthetic", data_dir="world_a")
    b = write_run(tmp_path / "b", dataset="synthetic", data_dir="world_b")
    with pytest.raises(ValueError, match="--data_dir"):
        from_run.with_run_defaults(EvalConfig(models=(a, b)), given=())
    config, _ = from_run.with_run_defaults(EvalConfig(models=(a, b), data_dir="w"), given=("data_dir",))
    assert config.data_dir == "w"


def _dense_split(root, gts):
    """A synthetic-layout test split with dense GT maps (no gt_depths.npz yet)."""
    folder = "2011_09_26/2011_09_26_drive_0001_sync"
    (root / folder / "depth_gt" / "image_02").mkdir(parents=True)
    (root / "splits" / "synthetic").mkdir(parents=True)
    for i, g in enumerate(gts):
        np.save(root / folder / "depth_gt" / "image_02" / f"{i:010d}.npy", g)
    lines = "".join(f"{folder} {i} l\n" for i in range(len(gts)))
    (root / "splits" / "synthetic" / "test_files.txt").write_text(lines)


def test_missing_dense_gt_is_exported_with_a_note(tmp_path, capsys):
    gts = [np.random.default_rng(i).uniform(2.0, 50.0, (8, 16)).astype(np.float32) for i in range(3)]
    _dense_split(tmp_path, gts)
    np.save(tmp_path / "pred.npy", np.stack([3.0 / g for g in gts]))  # 3/depth: exact after scaling
    config = EvalConfig(models=(str(tmp_path / "pred.npy"),), eval_split="synthetic",
                        data_dir=str(tmp_path), progress=False, output_json=str(tmp_path / "r.json"))
    runner.run_evaluation(config)
    gt_file = tmp_path / "splits" / "synthetic" / "gt_depths.npz"
    assert "--gt_source dense" in capsys.readouterr().err
    np.testing.assert_array_equal(gt_depth.load_gt_depths(str(gt_file))[1], gts[1])
    metrics = json.loads((tmp_path / "r.json").read_text())["models"]["pred.npy"]["metrics"]
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-5) and metrics["a1"] == 1.0


def test_missing_gt_of_an_unknown_split_names_the_full_command(tmp_path):
    config = EvalConfig(models=("x.npy",), eval_split="mine", data_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match=r"export_gt --split mine .*--gt_source velodyne"):
        runner.run_evaluation(config)


def test_wrong_image_ext_names_the_flag(tmp_path):
    _dense_split(tmp_path, [np.ones((8, 16), np.float32)])
    image_dir = tmp_path / "2011_09_26/2011_09_26_drive_0001_sync/image_02/data"
    image_dir.mkdir(parents=True)
    (image_dir / "0000000000.png").write_bytes(b"")
    with pytest.raises(ValueError, match="pass --image_ext=.png"):
        runner.kitti_test_images(str(tmp_path), str(tmp_path / "splits/synthetic/test_files.txt"), ".jpg")


@pytest.mark.slow  # ResNet18 built twice and traced: ~25 s on the shared 2-core machine
def test_evaluate_a_synthetic_run_directory_by_itself(tmp_path, capsys):
    """A real (untrained) network's run dir over a tiny synthetic world: only --models given."""
    world = str(tmp_path / "world")
    synthetic.ensure_world(world, drives=3, frames=3, height=H, width=W, ext="png", seed=1)
    config = ExperimentConfig(data=DataConfig(dataset="synthetic", data_dir=world, image_ext=".png",
                                              height=H, width=W, use_stereo=True, frame_offsets=(0,)),
                              model=ModelConfig(scales=(0,)))
    keras.utils.set_random_seed(0)
    depth_net, _ = models.build(config.model, use_pose_net=False)
    depth_net(np.zeros([1, H, W, 3], np.float32))
    run = str(tmp_path / "run")
    models.save_models(run, config, depth_net, step=3)
    out = tmp_path / "r.json"
    assert call_command(evaluate.main, EvalConfig, [f"--models={run}", "--noprogress",
                                                    f"--output_json={out}"]) == 0
    captured = capsys.readouterr()
    assert "synthetic:" in captured.out and "abs_rel" in captured.out
    assert "dense" in captured.err and (tmp_path / "world/splits/synthetic/gt_depths.npz").exists()
    scores = json.loads(out.read_text())["models"]["run"]
    test_lines = (tmp_path / "world/splits/synthetic/test_files.txt").read_text().splitlines()
    assert scores["num_scored"] == len(test_lines) and np.isfinite(scores["metrics"]["abs_rel"])


@pytest.mark.parametrize("extra", [[], ["--eval_split=benchmark", "--output_dir=out"]])
def test_a_run_directory_without_checkpoints_is_the_error(tmp_path, capsys, extra):
    """The missing checkpoint is reported, not the GT, split or test images it would be scored on."""
    run = write_run(tmp_path / "run", dataset="synthetic", data_dir=str(tmp_path / "no_world"))
    assert call_command(evaluate.main, EvalConfig, [f"--models={run}", "--noprogress", *extra]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: no checkpoint in '{run}/checkpoints'"), errors
