"""scripts/plot_curves.py: the learning-curve PNG of a --curves run."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_script

pytest.importorskip("matplotlib")  # a dev dependency (setup.cfg)


@pytest.fixture(scope="module")
def plot_curves():
    return load_script("plot_curves")


def _ate(mean: float, changing: float) -> dict:
    return {"ate_mean": mean, "by_motion": {"changing": [changing, 90], "steady": [mean / 2, 4]}}


def _scores(num_rows: int = 4) -> dict:
    rows = [{"step": 98 * (i + 1), "abs_rel": 0.3 - 0.02 * i,
             "pose": {"ate": _ate(0.05 / (i + 1), 0.06 / (i + 1)), "ate_constant_velocity": _ate(0.018, 0.02)}}
            for i in range(num_rows)]
    return {"curves": rows, "mean depth map": {"abs_rel": 0.24}, "pretrain (MS, other drives)": {"abs_rel": 0.28}}


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(image[..., :3].astype(int) - rgb).max(axis=-1) < 30).sum())


def test_plot_draws_both_panels(plot_curves, tmp_path):
    out = str(tmp_path / "curves.png")
    plot_curves.plot(_scores(), out, title="a run")
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (380, 1000, 3)  # figsize (10, 3.8) at 100 dpi
    # matplotlib's first three colours: depth (C0 blue), ATE (C1 orange), speed changes (C2 green)
    for rgb in ((31, 119, 180), (255, 127, 14), (44, 160, 44)):
        assert _pixels_near(image, rgb) > 200, rgb
    # the depth curve lies in the left panel, the odometry curves in the right one
    assert _pixels_near(image[:, :500], (31, 119, 180)) > 200 and _pixels_near(image[:, 500:], (31, 119, 180)) < 20
    assert _pixels_near(image[:, :500], (255, 127, 14)) < 20


def test_scores_without_pose_curves_are_refused_with_the_fix(plot_curves, tmp_path):
    with pytest.raises(ValueError, match="--curves"):
        plot_curves.plot({"trained": {"abs_rel": 0.2}}, str(tmp_path / "x.png"))
    stereo = {"curves": [{"step": 98, "abs_rel": 0.3}]}  # a stereo run's curves have no pose
    with pytest.raises(ValueError, match="no learning curves with pose scores"):
        plot_curves.plot(stereo, str(tmp_path / "x.png"))


def test_a_run_that_stays_far_above_the_guess_is_drawn_and_missing_snippet_kinds_are_skipped(plot_curves, tmp_path):
    scores = _scores()
    for row in scores["curves"]:  # the encoders-only failure: ATE ~0.95 m throughout
        row["pose"]["ate"] = {"ate_mean": 0.95, "by_motion": {"steady": [0.9, 99]}}
        row["pose"]["ate_constant_velocity"] = {"ate_mean": 0.012, "by_motion": {"steady": [0.003, 99]}}
    out = str(tmp_path / "far.png")
    plot_curves.plot(scores, out)
    image = np.asarray(Image.open(out).convert("RGB"))
    right = image[:, 500:]
    assert _pixels_near(right, (255, 127, 14)) > 200  # the pose curve, in range
    assert _pixels_near(right, (44, 160, 44)) < 20  # no speed-change snippets, no such curve
