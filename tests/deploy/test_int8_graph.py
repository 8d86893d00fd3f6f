"""The int8 TFLite graph: int8 ELU fusion, float output head, and a decoder XNNPACK runs whole."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf.deploy import tflite, tflite_graph
from md2tf.deploy.images import structured_images
from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
from md2tf.deploy.saved_model import export_saved_model
from md2tf.models import DepthDecoder
from md2tf.models import layers as L
from tests.deploy.xnnpack_graph import interpreter_ops, not_delegated, typed_ops

lite = pytest.importorskip("ai_edge_litert.interpreter")
SHAPE = [1, 8, 12, 8]


def _convert_default(fn) -> bytes:
    """Full-integer conversion as the converter does it by default (no md2tf changes)."""
    cf = fn.get_concrete_function(tf.TensorSpec(SHAPE, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([cf], fn)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.normal(size=SHAPE).astype(np.float32)]
                                                for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def _run(content: bytes, x: np.ndarray, xnnpack: bool) -> np.ndarray:
    resolver = (lite.OpResolverType.AUTO if xnnpack
                else lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp = lite.Interpreter(model_content=content, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


_K1 = tf.constant(np.random.default_rng(1).normal(size=(3, 3, 8, 8)).astype(np.float32) * 0.3)
_K2 = tf.constant(np.random.default_rng(2).normal(size=(3, 3, 8, 8)).astype(np.float32) * 0.3)


def _conv(x, k):
    return tf.nn.conv2d(x, k, 1, "VALID")


@pytest.mark.parametrize("between", ["none", "reflect_pad_slices", "upsample_depth_to_space"])
def test_fuse_int8_elu_makes_the_elu_int8_with_the_same_values(between):
    move = {"none": lambda t: t, "reflect_pad_slices": L.reflect_pad_slices,
            "upsample_depth_to_space": L.upsample_nearest_2x_depth_to_space}[between]
    fn = tf.function(lambda x: _conv(move(tf.nn.elu(_conv(x, _K1))), _K2))
    content = _convert_default(fn)
    assert typed_ops(content)[("ELU", "float32")] == 1  # what the converter does on its own
    fused, n = tflite_graph.fuse_int8_elu(content)
    assert n == 1
    ops = typed_ops(fused)
    assert ops[("ELU", "int8")] == 1 and ("ELU", "float32") not in ops
    assert ops[("DEQUANTIZE", "float32")] == 1 and ops[("QUANTIZE", "int8")] == 1  # model in / out
    assert not any(dtype == "float32" for (name, dtype) in ops if name not in ("DEQUANTIZE",))
    assert not not_delegated(fused)  # XNNPACK runs the int8 ELU
    x = np.random.default_rng(5).normal(size=SHAPE).astype(np.float32)
    nodes, tensors = interpreter_ops(fused)
    dequantize = next(d for d in nodes if d["op_name"] == "DEQUANTIZE")
    out_scale = tensors[dequantize["inputs"][0]]["quantization"][0]
    for xnnpack in (False, True):  # lookup table == dequantize, ELU, quantize: within one step
        np.testing.assert_allclose(_run(fused, x, xnnpack), _run(content, x, xnnpack),
                                   rtol=0, atol=1.01 * out_scale)


def test_fuse_int8_elu_leaves_an_elu_feeding_a_float_op_or_an_output():
    fn = tf.function(lambda x: tf.nn.elu(_conv(x, _K1)))  # ELU writes the model output
    content = _convert_default(fn)
    assert tflite_graph.fuse_int8_elu(content) == (content, 0)
    fn = tf.function(lambda x: _conv(tf.nn.elu(tf.nn.elu(_conv(x, _K1))), _K2))  # ELU into float ELU
    content = _convert_default(fn)
    assert typed_ops(content)[("ELU", "float32")] == 2
    assert tflite_graph.fuse_int8_elu(content) == (content, 0)


def test_output_head_tensors_are_the_ops_after_the_last_conv():
    fn = tf.function(lambda x: 1.0 / (0.1 + 2.0 * tf.sigmoid(_conv(tf.nn.relu(_conv(x, _K1)), _K2))))
    cf = fn.get_concrete_function(tf.TensorSpec(SHAPE, tf.float32))
    content = tf.lite.TFLiteConverter.from_concrete_functions([cf], fn).convert()
    ops, tensors = interpreter_ops(content)
    after_last_conv = ops[[d["op_name"] for d in ops].index("CONV_2D", 1) + 1:]
    names = sorted(tensors[d["outputs"][0]]["name"] for d in after_last_conv)
    assert [d["op_name"] for d in after_last_conv] == ["LOGISTIC", "MUL", "ADD", "DIV"]
    assert tflite_graph.output_head_tensors(content) == names
    identity = tf.function(lambda x: 2.0 * x)  # no convolution between input and output
    cf = identity.get_concrete_function(tf.TensorSpec(SHAPE, tf.float32))
    assert tflite_graph.output_head_tensors(tf.lite.TFLiteConverter.from_concrete_functions(
        [cf], identity).convert()) == []


class TinyDepthNet(keras.Model):
    """Five 2x2 stride-2 convs (features at strides 2..32) + the real `DepthDecoder` (scale 0)."""

    def __init__(self, **decoder_options):
        super().__init__()
        for k in range(5):
            setattr(self, f"feature_{k}", keras.layers.Conv2D(4, 2, strides=2, activation="relu",
                                                              name=f"feature_{k}"))
        self.decoder = DepthDecoder((4, 4, 4, 4, 4), scales=(0,), init="keras", **decoder_options)

    def call(self, x, training=None):
        features = []
        for k in range(5):
            x = getattr(self, f"feature_{k}")(x)
            features.append(x)
        return self.decoder(features, training=training)


LAYOUTS = {"as_trained": {"layout": "train"}, "int8_layout": {"layout": "xnnpack"}}


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    """``get(layout) -> (int8 content, Keras reference, images)`` for a 64x64 `TinyDepthNet` with the
    decoder as trained or with the int8 layout (same weights); each converted once."""
    height = width = 64
    info = ModelInfo(height, width)
    images = np.random.default_rng(4).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    frames = structured_images(4, height, width, seed=1)
    keras.utils.set_random_seed(1)
    base = TinyDepthNet()
    base(tf.zeros([1, height, width, 3]))
    cache = {}

    def get(layout: str):
        if layout not in cache:
            net = TinyDepthNet(**LAYOUTS[layout])
            net(tf.zeros([1, height, width, 3]))
            net.set_weights(base.get_weights())
            predictor = KerasPredictor(DepthPredictor(net, info), info)
            sm = export_saved_model(predictor.model, info, str(tmp_path_factory.mktemp(layout) / "sm"))
            cache[layout] = (tflite.convert(sm, tflite.TFLiteOptions("int8"), lambda: iter(frames)),
                             predictor.predict(images), images)
        return cache[layout]

    return get


def test_int8_layout_graph_has_no_mirror_pad_and_runs_whole_in_xnnpack(tiny_int8):
    content, ref, images = tiny_int8("int8_layout")
    ops = typed_ops(content)
    assert not {"MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR"} & {name for name, _ in ops}
    assert ops[("ELU", "int8")] == 10 and ops[("DEPTH_TO_SPACE", "int8")] == 5
    assert ops[("STRIDED_SLICE", "int8")] == 4 * 11  # 11 reflection pads (10 ConvBlocks + dispconv_0)
    # Float: the uint8 input's CAST and the head after the last conv (sigmoid, disp_to_depth).
    assert tflite_graph.float_ops(content) == ["ADD", "CAST", "DIV", "LOGISTIC", "MUL"]
    assert not_delegated(content) == {"CAST": 1}
    assert tflite.analyze(content)[1]  # still GPU-delegate compatible
    out = tflite.run(content, images)
    np.testing.assert_allclose(out["disparity"], ref["disparity"], atol=5e-2)


@pytest.mark.slow
def test_int8_layout_does_not_change_the_int8_values(tiny_int8):
    trained, _, images = tiny_int8("as_trained")
    layout, _, _ = tiny_int8("int8_layout")
    assert not_delegated(trained) == {"CAST": 1, "MIRROR_PAD": 11, "RESIZE_NEAREST_NEIGHBOR": 5}
    np.testing.assert_array_equal(tflite.run(layout, images)["disparity"],
                                  tflite.run(trained, images)["disparity"])


def test_int8_conversion_is_reproducible_and_uses_no_deprecated_interpreter(tmp_path):
    """Same calibration frames -> the same bytes; calibration never builds a tf.lite.Interpreter."""
    import warnings

    from tests.deploy.standin import tiny_depth_net

    info = ModelInfo(32, 64)
    sm = export_saved_model(DepthPredictor(tiny_depth_net(32, 64), info), info, str(tmp_path / "sm"))
    frames = structured_images(4, 32, 64, seed=3)
    options = tflite.TFLiteOptions("int8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = tflite.convert(sm, options, lambda: iter(frames))
    assert not [w for w in caught if "tf.lite.Interpreter is deprecated" in str(w.message)]
    assert tflite.convert(sm, options, lambda: iter(frames)) == first
    other = tflite.convert(sm, options, lambda: iter(frames[::-1][:2]))  # other calibration data
    assert other != first
    assert "QUANTIZE" in tflite_graph.check_builtin_only(first)
