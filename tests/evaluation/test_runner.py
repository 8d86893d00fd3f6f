"""Sources, multi-model tables, JSON/markdown and the evaluate / export_gt entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from md2tf import geometry
from md2tf.config import EvalConfig
from md2tf.evaluation import gt_depth, metrics, report, runner, sources

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_gt(rng, n=3, shape=(20, 40)):
    gts = []
    for _ in range(n):
        gt = rng.uniform(3.0, 50.0, shape).astype(np.float32)
        gt[rng.uniform(size=shape) < 0.5] = 0
        gts.append(gt)
    return gts


def perfect_disp(gt, shape=None):
    d = np.where(gt > 0, 1.0 / np.maximum(gt, 1e-3), 0.1).astype(np.float32)
    return d


def test_array_source_and_scores(rng):
    gts = make_gt(rng)
    src = sources.ArraySource("perfect", np.stack([perfect_disp(g) * 3 for g in gts])[..., None])
    assert len(src) == 3
    res = runner.evaluate_sources(gts, [src], metrics.ScoringOptions(split="synthetic"), show_progress=False)
    assert res["perfect"].metrics["abs_rel"] == pytest.approx(0.0, abs=1e-6)


def test_npy_source_reorder(tmp_path, rng):
    arr = rng.uniform(size=(5, 4, 6)).astype(np.float32)
    np.save(tmp_path / "d.npy", arr)
    src = sources.npy_source(str(tmp_path / "d.npy"), reorder_ids=np.array([4, 0]))
    got = list(src)
    np.testing.assert_array_equal(got[0], arr[4])
    np.testing.assert_array_equal(got[1], arr[0])
    with pytest.raises(ValueError, match="reorder ids reach 9"):
        sources.npy_source(str(tmp_path / "d.npy"), reorder_ids=np.array([9]))
    with pytest.raises(ValueError, match="not found"):
        sources.npy_source(str(tmp_path / "x.npy"))
    with pytest.raises(ValueError, match=r"\[N, h, w\]"):
        sources.ArraySource("bad", np.ones((2, 3)))


def test_model_source_batches_resizes_and_post_processes(rng):
    images = [rng.integers(0, 255, (10, 20, 3), dtype=np.uint8) for _ in range(5)]
    calls = []

    def predict(x):
        calls.append(x.shape)
        # brightness-based disparity: flip-equivariant per pixel
        return x.astype(np.float32).mean(axis=-1, keepdims=True) / 255.0 + 0.01

    src = sources.ModelSource("m", predict, 8, 16, lambda: iter(images), 5, batch_size=2, post_process=True)
    out = list(src)
    assert len(out) == 5 and out[0].shape == (8, 16)
    assert calls == [(4, 8, 16, 3), (4, 8, 16, 3), (2, 8, 16, 3)]  # 2B images with post-processing


def test_model_source_checks_prediction_shape():
    src = sources.ModelSource("m", lambda x: np.ones((len(x), 4, 4, 1)), 8, 16,
                             lambda: iter([np.zeros((8, 16, 3), np.uint8)]), 1)
    with pytest.raises(ValueError, match=r"m: prediction has shape"):
        list(src)


def test_predictor_source_does_not_post_process_twice():
    class FakePredictor:
        height, width = 8, 16
        info = SimpleNamespace(post_process=True)

        def __init__(self):
            self.batches = []

        def predict(self, x):
            self.batches.append(len(x))
            return {"scaled_disparity": np.full((len(x), 8, 16, 1), 0.5, np.float32)}

    fake = FakePredictor()
    src = sources.predictor_source(fake, lambda: iter([np.zeros((8, 16, 3), np.uint8)] * 3), 3, "p",
                                  batch_size=4, post_process=True)
    assert [d.mean() for d in src] == [0.5, 0.5, 0.5]
    assert fake.batches == [3]


def test_depth_net_source_with_tiny_keras_model(rng):
    import keras

    inputs = keras.Input((8, 16, 3))
    disp = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    net = keras.Model(inputs, [disp, disp])
    net.disp_to_depth = lambda d: geometry.disp_to_depth(d, 0.1, 100.0)  # the DepthNet contract
    images = [rng.integers(0, 255, (8, 16, 3), dtype=np.uint8) for _ in range(3)]
    src = sources.depth_net_source(net, 8, 16, lambda: iter(images), 3, "tiny")
    out = np.stack(list(src))
    sig = net.predict(np.stack(images).astype(np.float32) / 255.0, verbose=0)[0][..., 0]
    np.testing.assert_allclose(out, 0.01 + (10.0 - 0.01) * sig, rtol=1e-5)


def test_count_mismatch_and_duplicate_names(rng):
    gts = make_gt(rng)
    a = sources.ArraySource("a", np.ones((2, 20, 40)))
    with pytest.raises(ValueError, match="a: 2 predictions but 3 ground-truth"):
        runner.evaluate_sources(gts, [a], metrics.ScoringOptions(), show_progress=False)
    b = sources.ArraySource("a", np.ones((3, 20, 40)))
    with pytest.raises(ValueError, match="unique"):
        runner.evaluate_sources(gts, [b, b], metrics.ScoringOptions(), show_progress=False)


def test_tables_and_json(rng):
    gts = make_gt(rng)
    good = sources.ArraySource("good", np.stack([perfect_disp(g) for g in gts]))
    bad = np.stack([perfect_disp(g) * 1.5 for g in gts])
    bad[0, 0, 0] = np.nan
    worse = sources.ArraySource("nanny", bad)
    opts = metrics.ScoringOptions(split="synthetic", scaling="none")
    res = runner.evaluate_sources(gts, [good, worse], opts, show_progress=False)
    table = report.format_table(res)
    assert table.splitlines()[0].split()[:8] == ["model", "abs_rel", "sq_rel", "rmse", "rmse_log", "d<1.25",
                                                 "d<1.25^2", "d<1.25^3"]
    assert "FAILED nanny: 1 of 3 image(s) have 1 NaN/inf" in table
    # No median scaling: no ratio columns (they would only hold NaN).
    assert not {"nan", "med", "std"} & set(" ".join(table.splitlines()[:4]).lower().split())
    assert table.splitlines()[2].split()[-2:] == ["3", "0"]  # n, nonfin of "good"
    median = runner.evaluate_sources(gts, [good], metrics.ScoringOptions(split="synthetic"),
                                     show_progress=False)
    scaled_table = report.format_table({**median, "stereo": res["good"]})
    header, _, row_good, row_stereo = scaled_table.splitlines()[:4]
    assert header.split()[-4:] == ["med", "std", "n", "nonfin"]
    assert row_good.split()[-4:-2] == ["1.000", "0.000"]  # perfect disparity: ratio 1, no spread
    assert row_stereo.split()[-4:] == ["-", "-", "3", "0"]
    md = report.markdown_table(res)
    assert md.count("\n") == 3 and "| good | 0.000 |" in md
    payload = json.loads(report.results_to_json(res, opts))
    assert payload["models"]["nanny"]["nonfinite_images"] == [0]
    assert payload["models"]["nanny"]["num_failed"] == 1 and payload["failed_models"] == {"nanny": 1}
    assert payload["models"]["good"]["ratio_median"] is None
    assert payload["models"]["nanny"]["metrics"]["abs_rel"] == pytest.approx(1 / 3, rel=1e-5)


def test_run_depth_evaluation_on_npy(tmp_path, rng):
    gts = make_gt(rng)
    splits = tmp_path / "splits"
    os.makedirs(splits / "synthetic")
    gt_depth.save_gt_depths(str(splits / "synthetic" / "gt_depths.npz"), gts)
    np.save(tmp_path / "a.npy", np.stack([perfect_disp(g) for g in gts]))
    np.save(tmp_path / "b.npy", np.stack([perfect_disp(g) * 2 for g in gts]))
    config = EvalConfig(models=(str(tmp_path / "a.npy"), str(tmp_path / "b.npy")), names=("A", "B"),
                        eval_split="synthetic", splits_dir=str(splits), scaling="none",
                        output_json=str(tmp_path / "r.json"), output_markdown=str(tmp_path / "r.md"),
                        progress=False)
    report = runner.run_evaluation(config)
    assert "A " in report and "B " in report
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["models"]["A"]["metrics"]["abs_rel"] == pytest.approx(0, abs=1e-6)
    assert payload["models"]["B"]["metrics"]["abs_rel"] == pytest.approx(0.5, rel=1e-5)
    assert "| B |" in (tmp_path / "r.md").read_text()


def _npy_eval(tmp_path, gts, disps, **kwargs) -> EvalConfig:
    splits = tmp_path / "splits"
    os.makedirs(splits / "synthetic", exist_ok=True)
    gt_depth.save_gt_depths(str(splits / "synthetic" / "gt_depths.npz"), gts)
    np.save(tmp_path / "m.npy", disps)
    return EvalConfig(models=(str(tmp_path / "m.npy"),), eval_split="synthetic", splits_dir=str(splits),
                      output_json=str(tmp_path / "r.json"), progress=False, **kwargs)


def test_nonfinite_predictions_fail_the_evaluation(tmp_path, rng):
    """A NaN patch in 1 of 3 images must not pass as a better score on 2 images."""
    gts = make_gt(rng)
    disps = np.stack([perfect_disp(g) * (1.5 if i else 1.0) for i, g in enumerate(gts)])
    disps[1, 2:4, 5:9] = np.nan
    with pytest.raises(runner.EvaluationFailed, match=r"m.npy: 1 of 3 images.*--allow_nonfinite") as info:
        runner.run_evaluation(_npy_eval(tmp_path, gts, disps, scaling="none"))
    assert "FAILED m.npy: 1 of 3" in info.value.report
    payload = json.loads((tmp_path / "r.json").read_text())  # written before failing
    assert payload["failed_models"] == {"m.npy": 1} and payload["models"]["m.npy"]["num_scored"] == 2
    report = runner.run_evaluation(_npy_eval(tmp_path, gts, disps, scaling="none", allow_nonfinite=True))
    assert "FAILED m.npy" in report


@pytest.mark.parametrize("scaling", ["median", "none"])
def test_all_zero_prediction_is_an_error(tmp_path, rng, scaling):
    gts = make_gt(rng)
    disps = np.stack([perfect_disp(g) for g in gts])
    disps[2] = 0.0
    with pytest.raises(ValueError, match=r"m.npy: prediction 2 is degenerate: no positive disparity"):
        runner.run_evaluation(_npy_eval(tmp_path, gts, disps, scaling=scaling))


def test_precomputed_maps_with_height_and_width_swapped_are_refused(tmp_path, rng, capsys):
    """[N, W, H] arrays would be resized to the GT and scored (abs_rel ~0.7) without a word."""
    from md2tf import evaluate
    from md2tf.flags import call_command

    gts = make_gt(rng)  # 20x40
    swapped = np.stack([perfect_disp(g).T for g in gts])  # [3, 40, 20]
    config = _npy_eval(tmp_path, gts, swapped)
    args = [f"--models={config.models[0]}", "--eval_split=synthetic", f"--splits_dir={config.splits_dir}",
            "--noprogress"]
    assert call_command(evaluate.main, EvalConfig, args) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'm.npy'}: prediction 0 has shape 40x20 (height x width) but its ground "
        "truth 20x40: aspect ratios 0.5 and 2 differ by more than 10% (height and width swapped?)\n")
    # Network-resolution maps of a slightly different aspect ratio (KITTI: 1024x320 on 1242x375,
    # 3.5 %) are resized as the protocol says.
    wider = np.stack([perfect_disp(g)[:, :38] for g in gts])  # 20x38: 5 % narrower
    np.save(tmp_path / "m.npy", wider)
    capsys.readouterr()
    assert call_command(evaluate.main, EvalConfig, args) == 0, capsys.readouterr().err


def test_pickled_npy_predictions_are_refused(tmp_path):
    payload = np.empty(1, dtype=object)
    payload[0] = {"a": 1}
    np.save(tmp_path / "p.npy", payload, allow_pickle=True)
    with pytest.raises(ValueError, match=r"p.npy is not a plain numeric .npy array"):
        sources.npy_source(str(tmp_path / "p.npy"))


def test_missing_gt_message(tmp_path):
    config = EvalConfig(models=("x.npy",), eval_split="eigen", splits_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="python -m md2tf.export_gt --split eigen"):
        runner.run_evaluation(config)


def test_eval_config_validation():
    with pytest.raises(ValueError, match="--models"):
        EvalConfig()
    with pytest.raises(ValueError, match="--names"):
        EvalConfig(models=("a", "b"), names=("x",))
    with pytest.raises(ValueError, match="--eval_stereo"):
        EvalConfig(models=("a",), eval_stereo=True, scaling="global")
    opts = runner.scoring_options(EvalConfig(models=("a",), eval_stereo=True))
    assert opts.scaling == "none" and opts.pred_depth_scale_factor == 5.4


def test_camera_height_config():
    config = EvalConfig(models=("a",), scaling="camera_height", camera_height=1.2)
    opts = runner.scoring_options(config)
    assert (opts.scaling, opts.camera_height) == ("camera_height", 1.2)
    assert EvalConfig(models=("a",)).camera_height == 1.65  # KITTI's, the synthetic world's default
    with pytest.raises(ValueError, match=r"^--camera_height must be > 0 metres, got -1.0$"):
        EvalConfig(models=("a",), scaling="camera_height", camera_height=-1.0)
    with pytest.raises(ValueError, match="--camera_height must be a finite number"):
        EvalConfig(models=("a",), scaling="camera_height", camera_height=float("nan"))
    with pytest.raises(ValueError, match="--eval_stereo disables scaling.*--scaling=camera_height"):
        EvalConfig(models=("a",), eval_stereo=True, scaling="camera_height")


@pytest.fixture(scope="module")
def flat_world(tmp_path_factory):
    """A small built-in world (KITTI layout, dense GT, calibration), 3 test frames at 96x320."""
    from md2tf.data.synthetic import world as w
    from md2tf.data.synthetic import writer

    root = str(tmp_path_factory.mktemp("height_world"))
    writer.generate_world(root, w.WorldConfig(drives=1, frames=20, height=96, width=320, ext="png",
                                              lidar=False, odometry=False), progress=False)
    return root


def test_evaluate_command_with_camera_height_scaling(flat_world, tmp_path, capsys):
    """``md2tf.evaluate --scaling=camera_height``: predictions of GT depth / 3 come out scaled by 3
    from the fitted ground and the calibration alone (the GT only scores them)."""
    from md2tf import evaluate
    from md2tf.data.kitti_layout import depth_gt_path
    from md2tf.data.splits import read_split
    from md2tf.flags import call_command

    entries = read_split(os.path.join(flat_world, "splits", "synthetic", "test_files.txt"))
    gts = [np.load(depth_gt_path(flat_world, e)) for e in entries]
    disps = np.stack([np.where(g > 0, 3.0 / np.maximum(g, 1e-3), 3.0 / 200.0) for g in gts])
    np.save(tmp_path / "third.npy", disps.astype(np.float32))
    args = [f"--models={tmp_path / 'third.npy'}", f"--data_dir={flat_world}", "--eval_split=synthetic",
            "--image_ext=.png", "--scaling=camera_height", "--camera_height=1.65", "--noprogress",
            f"--output_json={tmp_path / 'r.json'}"]
    assert call_command(evaluate.main, EvalConfig, args) == 0
    out = capsys.readouterr().out
    assert "3 images, camera-height scaling (1.65 m above a flat ground" in out
    assert out.splitlines()[1].split()[-7:] == ["med", "std", "h_scale", "h_err", "noground", "n", "nonfin"]
    payload = json.loads((tmp_path / "r.json").read_text())
    assert payload["options"]["scaling"] == "camera_height" and payload["options"]["camera_height"] == 1.65
    scores = payload["models"]["third.npy"]
    assert scores["height_scale_median"] == pytest.approx(3.0, rel=0.02)
    assert scores["height_scale_error"] < 0.02 and scores["no_ground_images"] == []
    assert scores["ratio_median"] == pytest.approx(3.0, rel=1e-5)
    # As good as median scaling with the GT (both lose only the road beyond the 80 m clamp).
    median = metrics.score_predictions(gts, disps, metrics.ScoringOptions(split="synthetic"))
    for name in ("abs_rel", "a1"):
        assert scores["metrics"][name] == pytest.approx(median.metrics[name], abs=0.005)


@pytest.mark.slow  # two subprocesses importing TensorFlow: ~15 s on the shared 2-core machine
def test_cli_export_gt_and_evaluate(tmp_path, rng):
    """The two absl mains end to end in a subprocess (dense GT, .npy predictions)."""
    root = tmp_path
    folder = "2011_09_26/2011_09_26_drive_0001_sync"
    os.makedirs(root / folder / "depth_gt" / "image_02")
    os.makedirs(root / "splits" / "synthetic")
    gts = make_gt(rng, n=2)
    for i, g in enumerate(gts):
        np.save(root / folder / "depth_gt" / "image_02" / f"{i:010d}.npy", g)
    (root / "splits" / "synthetic" / "test_files.txt").write_text(f"{folder} 0 l\n{folder} 1 l\n")
    np.save(root / "pred.npy", np.stack([perfect_disp(g) * 7 for g in gts]))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, "-m", "md2tf.export_gt", "--split", "synthetic", f"--data_dir={root}",
                    "--gt_source", "dense"], check=True, cwd=REPO, env=env, capture_output=True)
    assert (root / "splits" / "synthetic" / "gt_depths.npz").exists()
    out = subprocess.run([sys.executable, "-m", "md2tf.evaluate", f"--data_dir={root}", "--eval_split=synthetic",
                          f"--models={root / 'pred.npy'}", "--noprogress",
                          f"--output_json={root / 'r.json'}"],
                         check=True, cwd=REPO, env=env, capture_output=True, text=True)
    assert "abs_rel" in out.stdout
    payload = json.loads((root / "r.json").read_text())
    assert payload["models"]["pred.npy"]["metrics"]["a1"] == 1.0
    assert payload["models"]["pred.npy"]["ratio_median"] == pytest.approx(7.0, rel=1e-5)
