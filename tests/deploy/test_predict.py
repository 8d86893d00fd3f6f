"""md2tf.predict: any input size, grey/RGBA/EXIF images, GIF frames, corrupt files, CLI end to end."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from md2tf import predict
from md2tf.config import PredictConfig
from md2tf.deploy import prediction
from md2tf.deploy.inference import load_predictor
from md2tf.flags import call_command

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _make_inputs(folder, rng):
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (50, 90, 3), dtype=np.uint8)).save(folder / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8), "L").save(folder / "grey.png")
    Image.fromarray(rng.integers(0, 256, (33, 47, 4), dtype=np.uint8), "RGBA").save(folder / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees: 20x60 stored -> 60x20 displayed
    Image.fromarray(rng.integers(0, 256, (20, 60, 3), dtype=np.uint8)).save(
        folder / "rotated.jpg", exif=exif.tobytes())
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return {"rgb": (50, 90), "grey": (40, 30), "rgba": (33, 47), "rotated": (60, 20)}


def test_predict_folder_with_corrupt_file(exported, tmp_path, rng):
    sizes = _make_inputs(tmp_path / "in", rng)
    predictor = load_predictor(exported["tflite_fp32"])
    summary = prediction.run_predict(predictor, str(tmp_path / "in"), str(tmp_path / "out"),
                                     progress=False)
    assert summary.num_frames == 4
    assert len(summary.failed) == 1 and summary.failed[0][0].endswith("corrupt.jpg")
    assert "1 failure" in summary.lines()[0] and "corrupt.jpg" in summary.lines()[1]
    assert f"wrote 12 file(s) to {tmp_path / 'out'}, " in summary.lines()[0]
    for name, (h, w) in sizes.items():
        disp = np.load(tmp_path / "out" / f"{name}_disp.npy")
        depth = np.load(tmp_path / "out" / f"{name}_depth.npy")
        assert disp.shape == depth.shape == (h, w)
        np.testing.assert_allclose(depth * disp, 5.4, rtol=1e-5)  # metric_scale / scaled disparity
        assert 0.01 <= disp.min() and disp.max() <= 10.0  # within 1/max_depth .. 1/min_depth
        png = np.asarray(Image.open(tmp_path / "out" / f"{name}_disp.png"))
        assert png.shape == (h, w, 3)


def test_predict_image_at_model_size_equals_model_output(exported):
    predictor = load_predictor(exported["tflite_fp32"])
    img = exported["images"][0]
    out = prediction.predict_image(predictor, img)
    np.testing.assert_allclose(out["scaled_disparity"], exported["reference"]["scaled_disparity"][0, ..., 0],
                               rtol=1e-4)


def test_animated_gif_frames(exported, tmp_path, rng):
    frames = [Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "clip.gif", save_all=True, append_images=frames[1:])
    predictor = load_predictor(exported["tflite_fp32"])
    summary = prediction.run_predict(predictor, str(tmp_path / "clip.gif"), str(tmp_path / "out"),
                                     save_color=False, progress=False)
    assert summary.num_frames == 3 and not summary.failed
    assert np.load(tmp_path / "out" / "clip_000002_depth.npy").shape == (24, 40)


def test_list_inputs_errors(tmp_path):
    with pytest.raises(ValueError, match="--input.*does not exist"):
        prediction.list_inputs(str(tmp_path / "nope.png"))
    (tmp_path / "movie.mp4").write_bytes(b"x")  # videos are inputs (tests/deploy/test_predict_video.py)
    assert prediction.list_inputs(str(tmp_path / "movie.mp4")) == [str(tmp_path / "movie.mp4")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        prediction.list_inputs(str(tmp_path / "empty"))


def test_predict_cli_end_to_end(exported, tmp_path, rng):
    _make_inputs(tmp_path / "in", rng)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "md2tf.predict", f"--model={exported['saved_model']}",
         f"--input={tmp_path / 'in'}", f"--out={tmp_path / 'out'}"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]  # one corrupt file -> non-zero exit
    assert "predicted 4 frame(s)" in proc.stdout and "FAILED" in proc.stdout
    assert (tmp_path / "out" / "rotated_disp.png").exists()


def test_out_that_is_a_file_or_unwritable_ends_in_one_line(exported, tmp_path, capsys):
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(tmp_path / "in.png")
    a_file = tmp_path / "out.txt"
    a_file.write_text("not a folder\n")
    for out, message in [(a_file, f"error: --out={a_file} is an existing file, not a directory"),
                         (a_file / "sub", f"error: --out={a_file / 'sub'} is not a writable directory: "
                                          "Not a directory")]:
        assert call_command(predict.main, PredictConfig, [f"--model={exported['tflite_fp32']}",
                                                          f"--input={tmp_path / 'in.png'}",
                                                          f"--out={out}"]) == 2
        err = capsys.readouterr().err
        assert err == message + "\n", err
    assert a_file.read_text() == "not a folder\n"


def test_read_only_out_is_refused_before_any_prediction(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(prediction.tempfile, "TemporaryFile", read_only)
    with pytest.raises(ValueError, match=r"^--out=.*out is not a writable directory: Read-only file system$"):
        prediction.make_out_dir(str(tmp_path / "out"))


def test_an_image_under_an_eighth_of_the_input_size_warns_naming_file_and_size(exported, tmp_path, caplog):
    """The model takes 128x64 (width x height): 16x8 is the smallest image without a warning."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((1, 1, 3), 90, np.uint8)).save(folder / "dot.png")
    Image.fromarray(np.full((8, 16, 3), 90, np.uint8)).save(folder / "small_enough.png")
    Image.fromarray(np.full((40, 15, 3), 90, np.uint8)).save(folder / "narrow.png")
    predictor = load_predictor(exported["tflite_fp32"])
    with caplog.at_level(logging.WARNING, logger=prediction.__name__):
        summary = prediction.run_predict(predictor, str(folder), str(tmp_path / "out"), progress=False)
    assert summary.num_frames == 3 and not summary.failed
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{folder / 'dot.png'} is 1x1 pixels (width x height), under 1/8 of the network's 128x64 input: "
        "its depth is upsampled from very little image",
        f"{folder / 'narrow.png'} is 15x40 pixels (width x height), under 1/8 of the network's 128x64 "
        "input: its depth is upsampled from very little image"]
