"""Optional pose-network export (on-device odometry)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from md2tf.deploy import exporter, formats, tflite_graph
from md2tf.deploy.inference import ModelInfo


def _rodrigues_np(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v)
    k = v / (angle + 1e-7)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def test_pose_format_needs_a_pose_net(tmp_path):
    with pytest.raises(ValueError, match="tflite_pose needs a pose network"):
        exporter.export_all(None, str(tmp_path), ["tflite_pose"])
    assert [f.name for f in formats.resolve("tflite_fp32,tflite_pose")] == ["tflite_fp32", "tflite_pose"]


@pytest.mark.slow
def test_pose_export_matches_keras_and_is_rigid(tmp_path):
    import keras

    from md2tf.deploy.pose import export_pose, run_pose
    from md2tf.models import PoseNet

    keras.utils.set_random_seed(1)
    net = PoseNet(18, init="keras").build_for_shape(64, 128)
    entry = export_pose(net, ModelInfo(64, 128), str(tmp_path / "pose_fp32.tflite"))
    assert all(v <= 1e-5 for v in entry["parity"].values()), entry["parity"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose_fp32.tflite"]  # no .part left
    content = (tmp_path / "pose_fp32.tflite").read_bytes()
    assert set(entry["ops"]) == set(tflite_graph.check_builtin_only(content))
    assert json.loads(tflite_graph.read_metadata(content)["md2tf_pose"])["model"] == "pose"
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (1, 64, 128, 3), dtype=np.uint8) for _ in range(2))
    out = run_pose(content, a, b)
    m = out["later_from_earlier"][0].astype(np.float64)
    np.testing.assert_allclose(m[:3, :3], _rodrigues_np(out["axis_angle"][0].astype(np.float64)),
                               atol=1e-6)
    np.testing.assert_allclose(m[:3, 3], out["translation"][0], atol=1e-7)
    np.testing.assert_allclose(m[3], [0, 0, 0, 1])
