"""DepthPredictor graph, ModelInfo and Predictor contracts (stand-in network, no conversion)."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.deploy import inference
from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
from tests.conftest import tol
from tests.deploy.standin import tiny_depth_net

H, W = 32, 64


def _np_depth(disp, min_depth, max_depth, scale):
    return scale / (1.0 / max_depth + (1.0 / min_depth - 1.0 / max_depth) * disp)


@pytest.fixture(scope="module")
def net():
    return tiny_depth_net(H, W)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)


def test_outputs_follow_disp_to_depth_and_metric_scale(net, images):
    info = ModelInfo(H, W, min_depth=0.5, max_depth=50.0, metric_scale=5.4, depth_units="metres")
    out = DepthPredictor(net, info)(images)
    disp = net(images.astype(np.float32) / 255.0)[0].numpy()
    np.testing.assert_allclose(out["disparity"].numpy(), disp, **tol())
    np.testing.assert_allclose(out["depth"].numpy(), _np_depth(disp, 0.5, 50.0, 5.4), rtol=1e-5)
    assert out["depth"].shape == (2, H, W, 1)


def test_post_process_matches_numpy_reference(net, images):
    info = ModelInfo(H, W, post_process=True)
    got = DepthPredictor(net, info)(images)["disparity"].numpy()
    x = images.astype(np.float32) / 255.0
    d = net(x)[0].numpy()
    d_flip = net(x[:, :, ::-1].copy())[0].numpy()[:, :, ::-1]
    ramp = np.linspace(0.0, 1.0, W)
    left = np.where(ramp < 0.05, 1.0, np.where(ramp > 0.10, 0.0, 1.0 - 20.0 * (ramp - 0.05)))
    left, right = left[None, None, :, None], left[::-1][None, None, :, None]
    ref = right * d + left * d_flip + (1.0 - left - right) * 0.5 * (d + d_flip)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # The leftmost column comes entirely from the flipped pass, the rightmost from the plain one.
    np.testing.assert_allclose(got[:, :, 0], d_flip[:, :, 0], atol=1e-6)
    np.testing.assert_allclose(got[:, :, -1], d[:, :, -1], atol=1e-6)


def test_keras_predictor_returns_consistent_numpy(net, images):
    info = ModelInfo(H, W, metric_scale=2.0, depth_units="metres")
    out = KerasPredictor(DepthPredictor(net, info), info).predict(images)
    assert set(out) == {"disparity", "scaled_disparity", "depth"}
    for v in out.values():
        assert v.shape == (2, H, W, 1) and v.dtype == np.float32
    np.testing.assert_allclose(out["scaled_disparity"], 0.01 + (10.0 - 0.01) * out["disparity"], rtol=1e-6)
    np.testing.assert_allclose(out["depth"] * out["scaled_disparity"], 2.0, rtol=1e-5)


@pytest.mark.parametrize("shape,dtype,pattern", [
    ((1, H, W + 32, 3), np.uint8, r"uint8 \[B, 32, 64, 3\].*shape"),
    ((1, H, W, 4), np.uint8, r"uint8 \[B, 32, 64, 3\].*shape"),
    ((1, H, W, 3), np.float32, r"uint8 \[B, 32, 64, 3\].*dtype"),
])
def test_predict_rejects_bad_images(net, shape, dtype, pattern):
    info = ModelInfo(H, W)
    p = KerasPredictor(DepthPredictor(net, info), info)
    with pytest.raises(ValueError, match=pattern):
        p.predict(np.zeros(shape, dtype))


@pytest.mark.parametrize("stereo,baseline,real,expected", [
    (True, 0.1, 0.54, 5.4), (False, 0.1, 0.54, 1.0), (True, 0.54, 0.54, 1.0), (True, 0.2, 0.5, 2.5)])
def test_metric_scale_for(stereo, baseline, real, expected):
    assert inference.metric_scale_for(stereo, baseline, real) == pytest.approx(expected)


@pytest.mark.parametrize("kwargs,pattern", [
    ({"height": 0, "width": 64}, "height/width"),
    ({"height": 32, "width": 64, "min_depth": 10.0, "max_depth": 1.0}, "min_depth"),
    ({"height": 32, "width": 64, "metric_scale": 0.0}, "metric_scale"),
    ({"height": 32, "width": 64, "depth_units": "feet"}, "depth_units"),
])
def test_model_info_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ModelInfo(**kwargs)


def test_predictor_from_models_takes_the_depth_range_from_the_network(net, images):
    from md2tf.config import DataConfig, ExperimentConfig

    net.min_depth, net.max_depth = 0.5, 50.0  # the DepthNet attributes
    try:
        p = inference.predictor_from_models(ExperimentConfig(data=DataConfig(height=H, width=W)), net)
    finally:
        del net.min_depth, net.max_depth
    assert (p.info.min_depth, p.info.max_depth) == (0.5, 50.0)
    out = p.predict(images)
    np.testing.assert_allclose(out["depth"], _np_depth(out["disparity"], 0.5, 50.0, 1.0), rtol=1e-5)


def test_model_card_contract_states_the_same_conversion():
    from md2tf.deploy.model_card import io_contract

    info = ModelInfo(H, W, min_depth=0.2, max_depth=80.0, metric_scale=5.4, depth_units="metres")
    depth = io_contract(info)["outputs"]["depth"]
    disp = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    # A consumer without md2tf computes depth from the card's numbers alone.
    from_card = info.metric_scale / (depth["a"] * disp + depth["b"])
    np.testing.assert_allclose(from_card, info.disp_to_depth(disp)[1], rtol=1e-6)
    np.testing.assert_allclose(depth["range"], [0.2 * 5.4, 80.0 * 5.4])


def test_model_info_dict_round_trip():
    info = ModelInfo(64, 128, 0.2, 80.0, 5.4, "metres", True, 50)
    assert ModelInfo.from_dict({**info.to_dict(), "extra": 1}) == info


def test_load_predictor_rejects_unknown_paths(tmp_path):
    with pytest.raises(ValueError, match="--model.*does not exist"):
        inference.load_predictor(str(tmp_path / "missing.tflite"))
    with pytest.raises(ValueError, match="--model.*not a .tflite file, SavedModel"):
        inference.load_predictor(str(tmp_path / "nothing_here"))


@pytest.mark.parametrize("changes, units, says", [
    ({}, "relative", ""),
    ({"data": {"use_stereo": True, "frame_offsets": (0,)}}, "metres", "stereo baseline: depth x 5.4"),
    ({"data": {"speed_source": "gt"}, "loss": {"speed_weight": 0.1}}, "metres",
     "speed supervision: distances travelled between frames from --speed_source=gt"),
    ({"train": {"pose_source": "gt"}}, "metres", "known camera poses"),
])
def test_model_info_says_whether_and_how_depth_is_metric(changes, units, says):
    """The model card's ``depth_units`` and ``metric_source`` follow what training knew in metres."""
    import dataclasses

    from md2tf.config import ExperimentConfig
    from md2tf.deploy.inference import metric_scale_for, metric_source_for

    config = ExperimentConfig()
    parts = {name: dataclasses.replace(getattr(config, name), **fields) for name, fields in changes.items()}
    config = dataclasses.replace(config, **parts)
    scale = metric_scale_for(config.data.use_stereo, config.data.stereo_baseline)
    got_units, source = metric_source_for(config, scale)
    assert got_units == units and source.startswith(says)
    info = ModelInfo(32, 64, metric_scale=scale, depth_units=got_units, metric_source=source)
    assert ModelInfo.from_dict(info.to_dict()) == info
