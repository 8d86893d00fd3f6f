"""Optional on-device odometry: the pose network as a SavedModel / fp32 TFLite model (builtin ops only).

Contract (``serving_default``):
  * inputs ``earlier`` and ``later``: uint8 RGB ``[1, H, W, 3]`` each (consecutive frames, normalised
    inside: / 255, then the pose encoder's (x - 0.45) / 0.225 for ResNet, (x - 0.5) / 0.5 for
    MobileNetV3);
  * outputs ``axis_angle`` ``[1, 3]`` (radians), ``translation`` ``[1, 3]`` (training units; x
    ``metric_scale`` for metres on stereo-trained models) and ``later_from_earlier`` ``[1, 4, 4]``, the
    rigid transform mapping points in the earlier camera's frame into the later camera's frame
    (``md2tf.geometry.pose_to_matrix(axis_angle, translation, invert=False)``). Chain
    ``inverse(later_from_earlier)`` products to get a trajectory.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from md2tf.deploy import tflite, tflite_graph
from md2tf.deploy.inference import ModelInfo
from md2tf.deploy.saved_model import export_archive
from md2tf.geometry import pose_to_matrix

POSE_OUTPUTS = ("axis_angle", "translation", "later_from_earlier")


def make_pose_predictor(pose_net):
    """Wraps a ``PoseNet`` into a Keras model: ``(earlier, later)`` uint8 ``[B, H, W, 3]`` -> outputs."""
    class PosePredictor(keras.Model):
        def __init__(self, net, **kwargs):
            super().__init__(**kwargs)
            self.pose_net = net

        def call(self, earlier, later):
            pair = tf.concat([tf.cast(earlier, tf.float32), tf.cast(later, tf.float32)], -1) / 255.0
            axis_angle, translation = self.pose_net(pair, training=False)
            return {"axis_angle": axis_angle, "translation": translation,
                    "later_from_earlier": pose_to_matrix(axis_angle, translation, invert=False)}

    return PosePredictor(pose_net, name="pose_predictor")


def export_pose(pose_net, info: ModelInfo, path: str,
                test_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Writes the fp32 ``.tflite`` pose model to ``path`` (via a temporary SavedModel).

    Args:
      pose_net: a restored ``PoseNet``.
      info: the depth model's `ModelInfo` (size and metric scale are shared).
      path: the ``.tflite`` file to write (written atomically, `tflite.write_atomic`).
      test_pairs: uint8 ``([N, H, W, 3], [N, H, W, 3])`` for the parity check; None = random frames.

    Returns:
      Card entry ``{"size_bytes", "ops", "gpu_compatible", "parity", "contract"}``.
    """
    h, w = info.height, info.width
    model = make_pose_predictor(pose_net)
    zeros = tf.zeros([1, h, w, 3], tf.uint8)
    model(zeros, zeros)
    spec = [tf.TensorSpec([1, h, w, 3], tf.uint8, name="earlier"),
            tf.TensorSpec([1, h, w, 3], tf.uint8, name="later")]
    with tempfile.TemporaryDirectory() as tmp:
        archive = export_archive(model)
        archive.add_endpoint("serving_default", lambda earlier, later: model(earlier, later),
                             input_signature=spec)
        archive.write_out(os.path.join(tmp, "pose"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(os.path.join(tmp, "pose"),
                                                             signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        with tflite.native_stderr_held_back():
            content = converter.convert()
    meta = {**info.to_dict(), "model": "pose", "outputs": list(POSE_OUTPUTS),
            "pose_encoder": getattr(pose_net, "encoder_name", "resnet")}
    content = tflite_graph.add_metadata(content, {"md2tf_pose": json.dumps(meta).encode()})
    tflite_graph.check_builtin_only(content)
    tflite.write_atomic(path, content)
    if test_pairs is None:
        rng = np.random.default_rng(3)
        test_pairs = (rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8),
                      rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8))
    ref = {k: v.numpy() for k, v in model(*test_pairs).items()}
    got = run_pose(content, *test_pairs)
    text, gpu_ok = tflite.analyze(content)
    return {"size_bytes": len(content), "ops": tflite.analyzer_ops(text),
            "gpu_compatible": gpu_ok,
            "parity": {f"max_abs_diff_{k}": float(np.abs(got[k] - ref[k]).max()) for k in POSE_OUTPUTS},
            "contract": __doc__.split("Contract (``serving_default``):")[1].strip()}


def run_pose(content: bytes, earlier: np.ndarray, later: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a pose ``.tflite`` on uint8 frame pairs ``[N, H, W, 3]`` each, one pair at a time."""
    runner = tflite.make_interpreter(content).get_signature_runner("serving_default")
    outs = [runner(earlier=e[None], later=lt[None]) for e, lt in zip(earlier, later)]
    return {k: np.concatenate([o[k] for o in outs], axis=0) for k in POSE_OUTPUTS}
