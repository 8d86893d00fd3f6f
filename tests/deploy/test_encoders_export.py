"""The MobileNetV3 encoders through export, the model card and prediction, like ResNet18.

The slow tests convert every TFLite variant (fp32, fp16, dynamic, int8, and the fp32 pose model) of a
64x128 network with random weights whose BatchNorm statistics come from one batch of frames (Keras'
initial moving variance 1 shrinks MobileNetV3's activations to ~1e-8 in inference mode, far from a
trained network's ranges), and check builtin-only op lists, int8 hard-swish / squeeze-excite and
parity with Keras.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.config import DataConfig, ExperimentConfig, ModelConfig
from md2tf.deploy import exporter, tflite, tflite_graph
from md2tf.deploy.images import structured_images
from md2tf.deploy.inference import ModelInfo, load_predictor, predictor_from_models
from md2tf.deploy.model_card import io_contract
from md2tf.models.checkpoint import save_models
from tests.deploy.xnnpack_graph import not_delegated, typed_ops

H, W = 64, 128
MOBILENETS = ("mobilenet_v3_large", "mobilenet_v3_small")
#: Ops every MobileNetV3 TFLite variant may contain (no Flex, no custom op): the ResNet set without
#: MAX_POOL_2D, plus DEPTHWISE_CONV_2D, HARD_SWISH and MEAN (squeeze-excite's global pool).
MOBILENET_OPS = {"ADD", "CAST", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DIV",
                 "ELU", "HARD_SWISH", "LOGISTIC", "MEAN", "MUL", "STRIDED_SLICE", "SUB", "QUANTIZE",
                 "DEQUANTIZE"}
#: Hard-swish activations of each trunk (stem, blocks, conv_1).
HARD_SWISH = {"mobilenet_v3_large": 20, "mobilenet_v3_small": 18}


def test_model_info_and_card_record_the_encoder():
    info = ModelInfo(H, W, encoder="mobilenet_v3_small")
    assert ModelInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    old = {k: v for k, v in info.to_dict().items() if k != "encoder"}  # metadata of older exports
    assert ModelInfo.from_dict(old).encoder == "resnet"
    with pytest.raises(ValueError, match="encoder must be one of"):
        ModelInfo(H, W, encoder="mobilenet")
    assert "(x - 0.5) / 0.5" in io_contract(info)["input"]["normalisation"]
    assert "(x - 0.45) / 0.225" in io_contract(ModelInfo(H, W))["input"]["normalisation"]


def test_load_predictor_reads_a_mobilenet_run(tmp_path):
    config = ExperimentConfig(data=DataConfig(height=H, width=W, frame_offsets=(0,), use_stereo=True),
                              model=ModelConfig(encoder="mobilenet_v3_small", scales=(0,)))
    depth_net, _ = models.build(config.model, use_pose_net=False)
    save_models(str(tmp_path), config, depth_net, step=2)
    p = load_predictor(str(tmp_path))
    assert p.info.encoder == "mobilenet_v3_small" and (p.height, p.width) == (H, W)
    images = np.stack(structured_images(2, H, W, seed=3))
    ref = predictor_from_models(config, depth_net).predict(images)
    out = p.predict(images)
    np.testing.assert_allclose(out["disparity"], ref["disparity"], atol=1e-6)
    assert out["depth"].shape == (2, H, W, 1)


def calibrate_batchnorm(net: keras.Model, images: np.ndarray) -> None:
    """Sets every BN layer's moving statistics to those of one training-mode pass over ``images``
    (uint8 ``[N, H, W, C]``), so inference sees activation ranges of a trained network's order."""
    bns = [layer for layer in net._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0  # moving statistic := this batch's
    net(tf.constant(images, tf.float32) / 255.0, training=True)
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum


@pytest.mark.slow  # ~1 min per encoder: SavedModel, 4 depth + 1 pose TFLite conversions
@pytest.mark.parametrize("encoder", MOBILENETS)
def test_mobilenet_exports_every_tflite_variant_with_builtin_ops(tmp_path, encoder):
    keras.utils.set_random_seed(0)
    config = ExperimentConfig(data=DataConfig(height=H, width=W),
                              model=ModelConfig(encoder=encoder, pose_encoder=encoder))
    depth_net, pose_net = models.build(config.model)
    frames = np.stack(structured_images(8, H, W, seed=1))
    calibrate_batchnorm(depth_net, frames)
    calibrate_batchnorm(pose_net, np.concatenate([frames[:-1], frames[1:]], -1))
    predictor = predictor_from_models(config, depth_net)
    card = exporter.export_all(predictor, str(tmp_path / "out"), "all,tflite_pose", pose_net=pose_net,
                               training_config=config.to_dict())
    assert card["model"]["encoder"] == encoder
    assert "(x - 0.5) / 0.5" in card["contract"]["input"]["normalisation"]
    images = np.stack(structured_images(3, H, W, seed=7))
    ref = predictor.predict(images)["disparity"]
    errors = {}
    for name in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8", "tflite_pose"):
        variant = card["variants"][name]
        content = (tmp_path / "out" / variant["file"]).read_bytes()
        ops = tflite_graph.check_builtin_only(content)  # no Flex, no custom op
        assert {"HARD_SWISH", "MEAN", "DEPTHWISE_CONV_2D"} <= set(ops), (name, ops)
        if name == "tflite_pose":  # + the pose head and pose_to_matrix
            assert variant["parity"]["max_abs_diff_translation"] < 1e-4
            continue
        assert set(ops) <= MOBILENET_OPS and set(variant["ops"]) == set(ops), (name, ops)
        errors[name] = np.abs(tflite.run(content, images)["disparity"] - ref)
    # Random weights amplify rounding: the bounds are the measured errors (64x128) with a margin.
    assert errors["tflite_fp32"].max() < 1e-4 and errors["tflite_fp16"].max() < 1e-2
    assert errors["tflite_dynamic"].mean() < 0.03 and errors["tflite_int8"].mean() < 0.08, {
        k: (float(v.mean()), float(v.max())) for k, v in errors.items()}

    # Full integer: hard-swish and squeeze-excite (MEAN, 1x1 convs, hard-sigmoid MUL) stay int8;
    # only the input cast and the depth head are float. XNNPACK runs everything but the cast and
    # int8 HARD_SWISH (LiteRT 2.3 has no XNNPACK int8 hard-swish).
    int8 = (tmp_path / "out" / card["variants"]["tflite_int8"]["file"]).read_bytes()
    typed = typed_ops(int8)
    assert typed[("HARD_SWISH", "int8")] == HARD_SWISH[encoder] and ("HARD_SWISH", "float32") not in typed
    assert typed[("MEAN", "int8")] > 0 and ("MEAN", "float32") not in typed
    assert typed[("DEPTHWISE_CONV_2D", "int8")] > 0
    assert tflite_graph.float_ops(int8) == ["ADD", "CAST", "DIV", "LOGISTIC", "MUL"]  # input + head
    assert not_delegated(int8) == {"CAST": 1, "HARD_SWISH": HARD_SWISH[encoder]}
    fp32 = (tmp_path / "out" / card["variants"]["tflite_fp32"]["file"]).read_bytes()
    assert not_delegated(fp32) == {"CAST": 1}  # float HARD_SWISH runs in XNNPACK
    assert load_predictor(str(tmp_path / "out" / "depth_int8.tflite")).info.encoder == encoder


@pytest.mark.slow  # ~30 s each: SavedModel and 4 depth TFLite conversions
@pytest.mark.parametrize("encoder, decoder", [
    ("mobilenet_v3_small_minimalistic", (8, 16, 32, 64, 128)),  # the phone-class network
    ("mobilenet_v3_large_minimalistic", (16, 32, 64, 128, 256)),
])
def test_minimalistic_networks_run_whole_in_xnnpack_int8(tmp_path, encoder, decoder):
    """Minimalistic trunks: no HARD_SWISH, no squeeze-excite MEAN, so the full-integer graph runs in
    XNNPACK but for the input cast; the card records the architecture."""
    keras.utils.set_random_seed(0)
    config = ExperimentConfig(data=DataConfig(height=H, width=W, frame_offsets=(0,), use_stereo=True),
                              model=ModelConfig(encoder=encoder, decoder_channels=decoder))
    depth_net, _ = models.build(config.model, use_pose_net=False)
    calibrate_batchnorm(depth_net, np.stack(structured_images(8, H, W, seed=1)))
    predictor = predictor_from_models(config, depth_net)
    assert predictor.info.decoder_channels == decoder
    card = exporter.export_all(predictor, str(tmp_path / "out"), "all", training_config=config.to_dict())
    assert card["model"]["encoder"] == encoder
    assert tuple(card["model"]["decoder_channels"]) == decoder
    images = np.stack(structured_images(3, H, W, seed=7))
    ref = predictor.predict(images)["disparity"]
    for name in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        content = (tmp_path / "out" / card["variants"][name]["file"]).read_bytes()
        ops = set(tflite_graph.check_builtin_only(content))
        assert ops <= MOBILENET_OPS - {"HARD_SWISH", "MEAN"} and "DEPTHWISE_CONV_2D" in ops, (name, ops)
        error = np.abs(tflite.run(content, images)["disparity"] - ref)
        assert error.mean() < (1e-5 if name == "tflite_fp32" else 0.03), (name, float(error.mean()))
        if name in ("tflite_fp32", "tflite_int8"):  # int8 too: the whole graph runs in XNNPACK
            assert not_delegated(content) == {"CAST": 1}, name
    restored = load_predictor(str(tmp_path / "out" / card["variants"]["tflite_int8"]["file"]))
    assert restored.info.decoder_channels == decoder
