"""md2tf.predict on video files (depth video, frames, stride) and coloured .ply point clouds."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from md2tf.data import video_io
from md2tf.data.synthetic import clip as vw
from md2tf.deploy import pointcloud, prediction
from md2tf.deploy.inference import ModelInfo


class GreyPredictor:
    """A stand-in predictor: sigmoid disparity = the grey level (deterministic, any content)."""

    height, width = 32, 64
    info = ModelInfo(32, 64, min_depth=0.1, max_depth=100.0, metric_scale=1.0)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        grey = images.astype(np.float32).mean(axis=-1, keepdims=True) / 255.0
        return {"disparity": np.clip(grey, 0.05, 0.95)}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_clip")
    frames = vw.render_clip()[:12]
    path = str(root / "drive.mp4")
    vw.write_clip(path, frames)
    return {"frames": frames, "path": path, "dir": root}


def test_video_gives_a_side_by_side_depth_video(clip, tmp_path):
    summary = prediction.run_predict(GreyPredictor(), clip["path"], str(tmp_path / "out"),
                                     progress=False, frame_stride=2)
    out = tmp_path / "out" / "drive_depth.mp4"
    assert not summary.failed and summary.num_frames == 6 and summary.video_frames == 6
    assert summary.written == [str(out)] and "drive_depth.mp4" in summary.lines()[1]
    info = video_io.probe(str(out))
    assert (info.num_frames, info.height, info.width, info.fps) == (6, vw.HEIGHT, 2 * vw.WIDTH, vw.FPS / 2)
    (_, first), = list(video_io.read_frames(str(out), max_frames=1))
    left = first[:, :vw.WIDTH].astype(float)
    assert np.abs(left - clip["frames"][0]).mean() < 8.0  # the input on the left
    res = prediction.predict_image(GreyPredictor(), clip["frames"][0])
    right = prediction.colorize(res["scaled_disparity"]).astype(float)
    assert np.abs(first[:, vw.WIDTH:] - right).mean() < 8.0  # its coloured disparity on the right


def test_max_frames_and_per_frame_files(clip, tmp_path):
    summary = prediction.run_predict(GreyPredictor(), clip["path"], str(tmp_path / "out"),
                                     progress=False, frame_stride=3, max_frames=2, save_frames=True,
                                     video_out=str(tmp_path / "v.mkv"))
    assert summary.num_frames == 2 and video_io.probe(str(tmp_path / "v.mkv")).num_frames in (0, 2)
    assert len(list(video_io.read_frames(str(tmp_path / "v.mkv")))) == 2
    for index in (0, 3):
        depth = np.load(tmp_path / "out" / f"drive_{index:06d}_depth.npy")
        assert depth.shape == (vw.HEIGHT, vw.WIDTH)
        assert Image.open(tmp_path / "out" / f"drive_{index:06d}_disp.png").size == (vw.WIDTH, vw.HEIGHT)


def test_ply_round_trip_equals_numpy_backprojection(tmp_path, rng):
    h, w = 5, 7
    depth = rng.uniform(1.0, 20.0, (h, w)).astype(np.float32)
    depth[0, 0], depth[1, 2] = 0.0, np.inf  # left out
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    K_normalized = np.array([[0.58, 0, 0.45], [0, 1.92, 0.55], [0, 0, 1]], np.float32)
    count = pointcloud.write_depth_ply(str(tmp_path / "f.ply"), depth, image, K_normalized)
    points, colors = pointcloud.read_ply(str(tmp_path / "f.ply"))
    fx, cx, fy, cy = 0.58 * w, 0.45 * w, 1.92 * h, 0.55 * h
    v, u = np.mgrid[0:h, 0:w]
    valid = np.isfinite(depth) & (depth > 0)
    z = depth[valid]
    expected = np.stack([(u[valid] - cx) / fx * z, (v[valid] - cy) / fy * z, z], axis=-1)
    assert count == h * w - 2 == len(points)
    np.testing.assert_allclose(points, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(colors, image[valid])
    header = (tmp_path / "f.ply").read_bytes()[:200].decode("ascii", "replace")
    assert "format binary_little_endian 1.0" in header and f"element vertex {count}" in header


def test_point_cloud_per_frame_with_intrinsics_beside_the_video(clip, tmp_path):
    (clip["dir"] / "intrinsics.json").write_text(json.dumps(
        {"fx": 92.0, "fy": 123.0, "cx": 79.5, "cy": 31.5, "units": "pixels"}))
    K, source = prediction.point_cloud_intrinsics(clip["path"])
    assert source == str(clip["dir"] / "intrinsics.json")
    np.testing.assert_allclose(K[:2], [[92.0 / vw.WIDTH, 0, 79.5 / vw.WIDTH],
                                       [0, 123.0 / vw.HEIGHT, 31.5 / vw.HEIGHT]], rtol=1e-6)
    prediction.run_predict(GreyPredictor(), clip["path"], str(tmp_path / "out"), progress=False,
                           max_frames=2, intrinsics=K)
    points, colors = pointcloud.read_ply(str(tmp_path / "out" / "drive_000001.ply"))
    assert points.shape == (vw.HEIGHT * vw.WIDTH, 3) and np.all(points[:, 2] > 0)
    (clip["dir"] / "intrinsics.json").unlink()
    with pytest.raises(ValueError, match="--point_cloud needs the camera intrinsics.*--intrinsics_file"):
        prediction.point_cloud_intrinsics(clip["path"])
    # Without a file, the K the model learned in training (one camera's), as given.
    K, source = prediction.point_cloud_intrinsics(clip["path"], learned={"clip": (0.7, 2.3, 0.55, 0.45)})
    np.testing.assert_allclose(K, [[0.7, 0, 0.55], [0, 2.3, 0.45], [0, 0, 1]], rtol=1e-6)
    assert source == "the K the model learned in training"
    with pytest.raises(ValueError, match="the model learned 2 cameras' K"):
        prediction.point_cloud_intrinsics(clip["path"], learned={"a": (1, 1, 0.5, 0.5), "b": (1, 1, 0.5, 0.5)})


def test_broken_video_is_a_named_failure(tmp_path):
    (tmp_path / "movie.mp4").write_bytes(b"x")
    summary = prediction.run_predict(GreyPredictor(), str(tmp_path / "movie.mp4"), str(tmp_path / "out"),
                                     progress=False)
    assert summary.num_frames == 0 and "cannot open video" in summary.failed[0][1]
    assert not os.path.exists(tmp_path / "out" / "movie_depth.mp4")


def test_predict_command_on_video_with_point_clouds(exported, clip, tmp_path, capsys):
    """The flags path: ``md2tf.predict --input=clip.mp4 --frame_stride --point_cloud --intrinsics_file``."""
    from md2tf import predict
    from md2tf.config import PredictConfig
    from md2tf.flags import call_command

    camera = clip["dir"] / "camera.json"
    camera.write_text(json.dumps({"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5}))
    argv = [f"--model={exported['tflite_fp32']}", f"--input={clip['path']}", f"--out={tmp_path / 'out'}",
            "--frame_stride=4", "--point_cloud"]
    assert call_command(predict.main, PredictConfig, [*argv, f"--intrinsics_file={camera}"]) == 0
    assert "depth video (3 frames" in capsys.readouterr().out
    assert video_io.probe(str(tmp_path / "out" / "drive_depth.mp4")).num_frames == 3
    for index in (0, 4, 8):
        points, _ = pointcloud.read_ply(str(tmp_path / "out" / f"drive_{index:06d}.ply"))
        assert points.shape == (vw.HEIGHT * vw.WIDTH, 3)
    # No intrinsics.json beside the clip: the K the model learned in training (the test export has one).
    assert call_command(predict.main, PredictConfig, argv) == 0
    assert "point clouds with the intrinsics of the K the model learned in training" in capsys.readouterr().out


def test_depth_units_line_says_what_is_metric_and_how():
    from md2tf.deploy.inference import ModelInfo

    relative = ModelInfo(32, 64)
    speed = ModelInfo(32, 64, depth_units="metres", metric_source="speed supervision: distances ...")
    assert "relative" in prediction.depth_units_line(relative) and "--camera_height" in prediction.depth_units_line(relative)
    assert prediction.depth_units_line(speed) == ("  depth units: metres, from the training's speed "
                                                  "supervision: distances ...")
    assert "camera height of 1.65 m (the model itself: relative)" in prediction.depth_units_line(relative, 1.65)
