"""``--eval_split benchmark``: KITTI depth benchmark submission PNGs (NumPy reference, PIL round trip)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from md2tf.config import EvalConfig
from md2tf.evaluation import kitti_benchmark, runner, sources


def np_bilinear_half_pixel(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """cv2.resize INTER_LINEAR (upsampling): ``src = (dst + 0.5) * in / out - 0.5``, border clamp."""
    in_h, in_w = x.shape

    def axis(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(int)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, src - lo

    r0, r1, fr = axis(out_h, in_h)
    c0, c1, fc = axis(out_w, in_w)
    x = x.astype(np.float64)
    top = x[r0][:, c0] * (1 - fc) + x[r0][:, c1] * fc
    bottom = x[r1][:, c0] * (1 - fc) + x[r1][:, c1] * fc
    return top * (1 - fr[:, None]) + bottom * fr[:, None]


def reference_png(disp: np.ndarray) -> np.ndarray:
    """``uint16(clip(5.4 / resize(disp, 1216 x 352), 0, 80) * 256)`` in float64."""
    resized = np_bilinear_half_pixel(disp, 352, 1216)
    with np.errstate(divide="ignore"):
        depth = 5.4 / resized
    return (np.clip(depth, 0, 80) * 256).astype(np.uint16)


def tiny_disparities(rng, n=2, shape=(4, 8)) -> np.ndarray:
    disp = rng.uniform(0.01, 2.0, (n, *shape)).astype(np.float32)
    disp[0, 0, 0] = 0.0  # -> inf -> clipped to 80 m
    disp[0, 1, 1] = 0.03  # 180 m -> clipped
    disp[1, 2, 3] = 10.0  # 0.54 m
    return disp


def test_benchmark_png_matches_numpy_reference(rng):
    for disp in tiny_disparities(rng):
        png, nonfinite = kitti_benchmark.benchmark_depth_png(disp[..., None])
        ref = reference_png(disp)
        assert png.dtype == np.uint16 and png.shape == (352, 1216) and nonfinite == 0
        # float32 vs float64 may truncate differently at an integer boundary: 1 count = 1/256 m
        assert np.abs(png.astype(int) - ref.astype(int)).max() <= 1
        assert np.mean(png == ref) > 0.99
    png, _ = kitti_benchmark.benchmark_depth_png(tiny_disparities(rng)[0])
    assert png[0, 0] == 80 * 256  # zero disparity at the top-left corner (border clamp) -> 80 m


def test_benchmark_png_nan_is_invalid():
    disp = np.full((4, 8), 0.5, np.float32)
    disp[:, :] = np.nan
    png, nonfinite = kitti_benchmark.benchmark_depth_png(disp)
    assert nonfinite == 352 * 1216 and not png.any()


def test_write_pngs_16_bit_round_trip(tmp_path, rng):
    disps = tiny_disparities(rng)
    paths, nonfinite = kitti_benchmark.write_benchmark_pngs(sources.ArraySource("m", disps), str(tmp_path / "out"),
                                                   show_progress=False)
    assert [os.path.basename(p) for p in paths] == ["0000000000.png", "0000000001.png"] and nonfinite == 0
    for path, disp in zip(paths, disps):
        with Image.open(path) as image:
            assert image.mode.startswith("I")  # 16-bit grayscale, not 8-bit "L"
            back = np.asarray(image).astype(np.int64)
        ref = reference_png(disp).astype(np.int64)
        assert back.shape == (352, 1216) and back.max() > 255
        assert np.abs(back - ref).max() <= 1
        depth_m = back / 256.0  # how the KITTI devkit reads it
        with np.errstate(divide="ignore"):
            true_m = np.clip(5.4 / np_bilinear_half_pixel(disp, 352, 1216), 0, 80)
        # uint16 truncates: within [-1/256, 0] of the true depth (+ 1 count of float32 rounding)
        assert np.all(depth_m <= true_m + 1.01 / 256) and np.all(depth_m > true_m - 2.01 / 256)


def write_benchmark_split(root, lines: str):
    os.makedirs(root / "splits" / "benchmark", exist_ok=True)
    (root / "splits" / "benchmark" / "test_files.txt").write_text(lines)


def test_run_evaluation_benchmark_npy(tmp_path, rng):
    """The runner on a .npy: files named after the benchmark images' indices, no scores."""
    write_benchmark_split(tmp_path, "image 0\nimage 1\nimage 7\n")
    disps = tiny_disparities(rng, n=3)
    np.save(tmp_path / "d.npy", disps)
    config = EvalConfig(models=(str(tmp_path / "d.npy"),), names=("mine",), eval_split="benchmark",
                        splits_dir=str(tmp_path / "splits"), output_dir=str(tmp_path / "sub"),
                        progress=False)
    report = runner.run_evaluation(config)
    assert "3 PNGs" in report and "abs_rel" not in report
    assert sorted(os.listdir(tmp_path / "sub" / "mine")) == ["0000000000.png", "0000000001.png",
                                                              "0000000007.png"]
    with Image.open(tmp_path / "sub" / "mine" / "0000000007.png") as image:
        back = np.asarray(image).astype(np.int64)
    assert np.abs(back - reference_png(disps[2]).astype(np.int64)).max() <= 1


def test_benchmark_errors(tmp_path, rng, monkeypatch):
    write_benchmark_split(tmp_path, "image 0\nimage 1\n")
    base = dict(eval_split="benchmark", splits_dir=str(tmp_path / "splits"), progress=False)
    with pytest.raises(ValueError, match="'runs/x' is not a .tflite file"):  # the model comes first
        runner.run_evaluation(EvalConfig(models=("runs/x",), output_dir=str(tmp_path / "o"), **base))
    # A model (a stand-in here) on the 2-field 'image N' split without the benchmark images: says
    # where they must be.
    monkeypatch.setattr(kitti_benchmark, "load_predictors", lambda paths, post_process: {"runs/x": None})
    with pytest.raises(ValueError, match="--data_dir is required.*test_depth_prediction_anonymous"):
        runner.run_evaluation(EvalConfig(models=("runs/x",), output_dir=str(tmp_path / "o"), **base))
    os.makedirs(tmp_path / "data" / "image")
    Image.fromarray(np.zeros((4, 8, 3), np.uint8)).save(tmp_path / "data" / "image" / "0000000000.png")
    with pytest.raises(ValueError, match=r"1 of 2 test images missing.*image/0000000001\.png.*--image_ext"):
        runner.run_evaluation(EvalConfig(models=("runs/x",), output_dir=str(tmp_path / "o"),
                                         data_dir=str(tmp_path / "data"), image_ext=".png", **base))
    np.save(tmp_path / "d.npy", tiny_disparities(rng, n=3))
    with pytest.raises(ValueError, match="--output_dir"):
        runner.run_evaluation(EvalConfig(models=(str(tmp_path / "d.npy"),), **base))
    with pytest.raises(ValueError, match="3 predictions but 2 test images"):
        runner.run_evaluation(EvalConfig(models=(str(tmp_path / "d.npy"),), output_dir=str(tmp_path / "o"),
                                         **base))
    with pytest.raises(ValueError, match="needs .*benchmark/test_files.txt"):
        runner.run_evaluation(EvalConfig(models=(str(tmp_path / "d.npy"),), output_dir=str(tmp_path / "o"),
                                         eval_split="benchmark", splits_dir=str(tmp_path), progress=False))
