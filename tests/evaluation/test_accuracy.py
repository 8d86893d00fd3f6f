"""Per-variant accuracy in the model card: `accuracy_evaluator` on a tiny fake KITTI test split."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.deploy.inference import ModelInfo
from md2tf.evaluation import gt_depth
from md2tf.evaluation.runner import accuracy_evaluator
from tests.data import fake_kitti


class _ConstantPredictor:
    """Predictor stand-in: a fixed scaled disparity map whatever the image."""

    def __init__(self, scaled: np.ndarray):
        self.info = ModelInfo(32, 64)
        self.height, self.width, self.metric_scale = 32, 64, 1.0
        self.scaled = scaled.astype(np.float32)

    def predict(self, images):
        assert images.shape[1:] == (32, 64, 3) and images.dtype == np.uint8
        n = len(images)
        return {"scaled_disparity": np.repeat(self.scaled[None, ..., None], n, axis=0)}


@pytest.fixture
def split(tmp_path):
    root = str(tmp_path / "kitti")
    fake_kitti.write_tree(root, frames=3, with_gt=False)
    gts = [np.full((fake_kitti.RAW_HEIGHT, fake_kitti.RAW_WIDTH), 10.0, np.float32)] * 3
    gt_depth.save_gt_depths(f"{root}/splits/synthetic/gt_depths.npz", gts)
    return root


def test_constant_depth_after_median_scaling_is_perfect(split):
    evaluate = accuracy_evaluator(split, "synthetic", image_ext=".png")
    scores = evaluate(_ConstantPredictor(np.full((32, 64), 0.3)))
    assert scores["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert scores["a1"] == pytest.approx(1.0)


def test_wrong_structure_is_penalised(split):
    evaluate = accuracy_evaluator(split, "synthetic", image_ext=".png")
    scaled = np.full((32, 64), 0.2)
    scaled[:, 32:] = 0.6  # right half 3x nearer than the flat GT says
    scores = evaluate(_ConstantPredictor(scaled))
    assert scores["abs_rel"] > 0.1 and scores["a1"] < 0.9
    # Stereo scoring: no median scaling, depth x 5.4 against GT 10: 5.4 / 0.3 = 18 -> abs_rel 0.8.
    stereo = accuracy_evaluator(split, "synthetic", stereo=True, image_ext=".png")
    assert stereo(_ConstantPredictor(np.full((32, 64), 0.3)))["abs_rel"] == pytest.approx(0.8, rel=1e-4)
