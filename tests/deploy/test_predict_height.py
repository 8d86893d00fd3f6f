"""md2tf.predict --camera_height: metric depth from the fitted ground, per image and smoothed over video."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from md2tf.data.synthetic import clip as vw
from md2tf.deploy import height_scale, prediction
from md2tf.deploy.inference import ModelInfo

K_NORMALIZED = np.array([[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]])
CAMERA_HEIGHT_M = 1.65
MIN_DEPTH, MAX_DEPTH = 0.1, 100.0


def metric_ground(height: int, width: int) -> np.ndarray:
    """Metres: a flat road 1.65 m below a level camera with K_NORMALIZED (``z = h fy / (v - cy)``),
    infinite above the horizon."""
    fy, cy = K_NORMALIZED[1, 1] * height, K_NORMALIZED[1, 2] * height
    v = np.arange(height, dtype=np.float64)[:, None] * np.ones((1, width))
    with np.errstate(divide="ignore"):
        return np.where(v > cy, CAMERA_HEIGHT_M * fy / (v - cy), np.inf)


class GroundPredictor:
    """A stand-in predictor: the depth of `metric_ground` divided by a factor per call (the model's
    unknown scale), or for a factor of ``None`` a wall 2 m ahead filling the view (no ground)."""

    def __init__(self, height: int, width: int, factors):
        self.height, self.width = height, width
        self.info = ModelInfo(height, width, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH, metric_scale=1.0)
        self.factors, self.calls = list(factors), 0

    def model_depth(self, factor) -> np.ndarray:
        if factor is None:
            return np.full((self.height, self.width), 2.0)
        return np.clip(metric_ground(self.height, self.width) / factor, MIN_DEPTH, MAX_DEPTH)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = []
        for _ in images:
            depth = self.model_depth(self.factors[self.calls % len(self.factors)])
            self.calls += 1
            # The sigmoid whose disp_to_depth is this depth: 1 / depth = 1 / max + (1 / min - 1 / max) s.
            out.append((1.0 / depth - 1.0 / MAX_DEPTH) / (1.0 / MIN_DEPTH - 1.0 / MAX_DEPTH))
        return {"disparity": np.stack(out)[..., None].astype(np.float32)}


def ground_rows(height: int) -> slice:
    """Rows well below the horizon (where the fit looks), for comparing depths."""
    return slice(int(0.7 * height), height)


class TestScaleSmoother:
    def test_constant_scale_comes_out_in_order_half_a_window_late(self):
        smoother = height_scale.ScaleSmoother(window=9)
        released = [smoother.push(i, 2.0) for i in range(6)]
        assert [len(r) for r in released] == [0, 0, 0, 0, 1, 1]
        rest = smoother.finish()
        items = [item for r in released for item, _, _ in r] + [item for item, _, _ in rest]
        assert items == list(range(6))
        assert all(scale == pytest.approx(2.0) and own for r in [*released, rest] for _, scale, own in r)

    def test_one_frame_off_is_outvoted(self):
        smoother = height_scale.ScaleSmoother(window=5)
        scales = [2.0, 2.1, 1.9, 6.0, 2.0, 2.05, 1.95]
        out = [x for i, s in enumerate(scales) for x in smoother.push(i, s)] + smoother.finish()
        assert max(scale for _, scale, _ in out) < 2.1  # the 6.0 never wins a median of 5

    def test_frames_without_ground_take_their_neighbours(self):
        smoother = height_scale.ScaleSmoother(window=3)
        scales = [2.0, 2.0, math.nan, math.nan, math.nan, 4.0, 4.0]
        out = [x for i, s in enumerate(scales) for x in smoother.push(i, s)] + smoother.finish()
        assert [own for _, _, own in out] == [True, True, False, False, False, True, True]
        # Frame 3 has no neighbour with ground: the last smoothed scale before it (frame 2's).
        np.testing.assert_allclose([s for _, s, _ in out], [2, 2, 2, 2, 4, 4, 4])

    def test_a_video_starting_without_ground_waits_for_the_first_scale(self):
        smoother = height_scale.ScaleSmoother(window=3)
        scales = [math.nan] * 4 + [3.0, 3.0]
        out = [x for i, s in enumerate(scales) for x in smoother.push(i, s)] + smoother.finish()
        assert [item for item, _, _ in out] == list(range(6))
        np.testing.assert_allclose([s for _, s, _ in out], 3.0)

    def test_held_frames_are_bounded_and_no_ground_at_all_is_unscaled(self):
        smoother = height_scale.ScaleSmoother(window=3, max_held=2)
        released = [smoother.push(i, math.nan) for i in range(6)]
        assert sum(len(r) for r in released) == 3  # max_held + window // 2 frames wait
        out = [x for r in released for x in r] + smoother.finish()
        assert len(out) == 6 and all(math.isnan(s) and not own for _, s, own in out)

    def test_rejects_an_even_window(self):
        with pytest.raises(ValueError, match="window must be an odd number"):
            height_scale.ScaleSmoother(window=4)


def test_frame_scale_subsamples_wide_frames_exactly():
    """A 1280-wide frame is fitted on every 2nd pixel with K divided by 2: the same scale."""
    depth = np.clip(metric_ground(384, 1280) / 7.0, MIN_DEPTH, MAX_DEPTH)
    scale, fit = height_scale.frame_scale(depth, height_scale.CameraHeight(CAMERA_HEIGHT_M, K_NORMALIZED))
    assert scale == pytest.approx(7.0, rel=1e-3) and fit.num_candidates < 384 * 1280 / 4
    with pytest.raises(ValueError, match=r"--camera_height must be a finite number > 0"):
        height_scale.CameraHeight(0.0, K_NORMALIZED)


def test_images_get_their_own_scale_and_no_ground_stays_unscaled(tmp_path):
    h, w = 96, 320
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a", "b", "c"):  # the predictor ignores the content
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(folder / f"{name}.png")
    predictor = GroundPredictor(h, w, [2.0, 8.0, None])  # a, b: scales 2 and 8; c: a wall
    camera = height_scale.CameraHeight(CAMERA_HEIGHT_M, K_NORMALIZED)
    summary = prediction.run_predict(predictor, str(folder), str(tmp_path / "out"), progress=False,
                                     camera_height=camera, intrinsics=K_NORMALIZED)
    rows = ground_rows(h)
    for name in ("a", "b"):
        depth = np.load(tmp_path / "out" / f"{name}_depth.npy")
        np.testing.assert_allclose(depth[rows], metric_ground(h, w)[rows], rtol=0.01)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "c_depth.npy"), 2.0, rtol=1e-4)  # as predicted
    assert summary.scales == pytest.approx([2.0, 8.0], rel=0.01)
    assert summary.unscaled == ["c"] and summary.no_ground == 1 and summary.filled == 0
    lines = summary.lines()
    assert "in metres from a camera height of 1.65 m: median scale 5 over 2 frame(s); 1 frame(s) had " \
           "too little ground visible" in lines[1]
    assert lines[2] == ("  WARNING c: too little ground visible for the camera-height scale; its depth is "
                        "left unscaled (the model's units)")


def test_video_scale_is_smoothed_and_frames_without_ground_are_filled(tmp_path):
    frames = vw.render_clip()[:12]
    path = str(tmp_path / "drive.mp4")
    vw.write_clip(path, frames)
    factors = [2.5] * 6 + [None, None] + [2.5] * 4  # a truck fills the view in frames 6 and 7
    predictor = GroundPredictor(vw.HEIGHT, vw.WIDTH, factors)
    camera = height_scale.CameraHeight(CAMERA_HEIGHT_M, K_NORMALIZED)
    summary = prediction.run_predict(predictor, path, str(tmp_path / "out"), progress=False,
                                     save_frames=True, camera_height=camera)
    assert summary.num_frames == 12 and summary.video_frames == 12  # no frame lost to the delay
    rows = ground_rows(vw.HEIGHT)
    for index in range(12):
        depth = np.load(tmp_path / "out" / f"drive_{index:06d}_depth.npy")
        if factors[index] is None:  # the neighbours' scale: the wall's 2 model units x 2.5
            np.testing.assert_allclose(depth, 5.0, rtol=0.01)
        else:
            np.testing.assert_allclose(depth[rows], metric_ground(vw.HEIGHT, vw.WIDTH)[rows], rtol=0.01)
    assert len(summary.scales) == 12 and summary.no_ground == 2 and summary.filled == 2
    assert not summary.unscaled
    line = next(x for x in summary.lines() if "camera height" in x)
    assert line.startswith("  depth (.npy, .ply) in metres from a camera height of 1.65 m: median scale 2.5")
    assert line.endswith("12 frame(s); 2 frame(s) had too little ground visible (scale from neighbouring "
                         "frames for 2)")


def test_predict_command_with_camera_height(tmp_path, capsys, monkeypatch):
    """The flags path, with the stand-in in place of a loaded model."""
    from md2tf import predict
    from md2tf.config import PredictConfig
    from md2tf.deploy import inference
    from md2tf.flags import call_command

    h, w = 96, 320
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / "frame.png")
    monkeypatch.setattr(inference, "load_predictor", lambda *a, **k: GroundPredictor(h, w, [4.0]))
    argv = ["--model=standin", f"--input={tmp_path / 'frame.png'}", f"--out={tmp_path / 'out'}",
            "--camera_height=1.65", "--nosave_color"]
    assert call_command(predict.main, PredictConfig, argv) == 2  # no intrinsics.json beside the input
    assert "error: --camera_height needs the camera intrinsics" in capsys.readouterr().err
    (tmp_path / "intrinsics.json").write_text(json.dumps({"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5}))
    assert call_command(predict.main, PredictConfig, argv) == 0
    out = capsys.readouterr().out
    assert f"the camera-height scale with the intrinsics of {tmp_path / 'intrinsics.json'}" in out
    assert "metres from a camera height of 1.65 m: median scale 4 over 1 frame(s)" in out
    depth = np.load(tmp_path / "out" / "frame_depth.npy")
    np.testing.assert_allclose(depth[ground_rows(h)], metric_ground(h, w)[ground_rows(h)], rtol=0.01)
    with pytest.raises(ValueError, match=r"^--camera_height must be >= 0 metres \(0 = off\), got -1.0$"):
        PredictConfig(model="m", input="i", out_dir="o", camera_height=-1.0)
