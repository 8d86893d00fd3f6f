"""The DepthNet inference path converts to TFLite with builtin ops only and matches Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import models

# Every op the ResNet18 DepthNet may lower to (no Flex, no custom ops).
ALLOWED_OPS = {
    "ADD", "CONCATENATION", "CONV_2D", "ELU", "LOGISTIC", "MAX_POOL_2D", "MIRROR_PAD", "MUL", "PAD",
    "RESIZE_NEAREST_NEIGHBOR", "SUB", "RESHAPE", "QUANTIZE", "DEQUANTIZE",
}


@pytest.mark.slow
def test_depth_net_converts_with_builtins_only(tmp_path):
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    height, width = 64, 128
    net = models.DepthNet(18, scales=(0,)).build_for_shape(height, width)
    spec = keras.InputSpec(shape=(1, height, width, 3), dtype="float32")
    net.export(str(tmp_path / "sm"), format="tf_saved_model", input_signature=[spec], verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    blob = converter.convert()

    resolver = interpreter_mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    plain = interpreter_mod.Interpreter(model_content=blob, experimental_op_resolver_type=resolver)
    ops = {d["op_name"] for d in plain._get_ops_details()}
    assert ops <= ALLOWED_OPS, ops - ALLOWED_OPS
    assert {"MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR", "ELU", "CONV_2D", "LOGISTIC"} <= ops

    interp = interpreter_mod.Interpreter(model_content=blob)
    interp.allocate_tensors()
    x = np.random.default_rng(0).uniform(size=(1, height, width, 3)).astype(np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    out = interp.get_output_details()
    assert len(out) == 1 and tuple(out[0]["shape"]) == (1, height, width, 1)
    np.testing.assert_allclose(interp.get_tensor(out[0]["index"]), net(x)[0].numpy(), atol=1e-5)
