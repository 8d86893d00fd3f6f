"""tflite/run_tflite.py: stand-alone (numpy + pillow + ai_edge_litert only), images and benchmark."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tflite", "run_tflite.py")
H, W = 32, 64
ALLOWED = {"numpy", "PIL", "ai_edge_litert", "argparse", "json", "os", "struct", "sys", "time",
           "__future__"}


def _load_script():
    spec = importlib.util.spec_from_file_location("run_tflite", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A stand-in depth model exported the md2tf way (SavedModel -> fp32 TFLite with metadata)."""
    from md2tf.deploy import tflite
    from md2tf.deploy.inference import DepthPredictor, ModelInfo
    from md2tf.deploy.saved_model import export_saved_model
    from tests.deploy.standin import tiny_depth_net

    info = ModelInfo(H, W, metric_scale=5.4, depth_units="metres")
    root = tmp_path_factory.mktemp("runner")
    sm = export_saved_model(DepthPredictor(tiny_depth_net(H, W), info), info, str(root / "sm"))
    content = tflite.convert(sm, metadata=info.to_dict())
    path = root / "depth.tflite"
    path.write_bytes(content)
    return {"path": str(path), "content": content, "info": info}


def test_imports_only_numpy_pillow_litert_and_stdlib():
    tree = ast.parse(open(SCRIPT).read())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add(node.module.split(".")[0])
    assert roots <= ALLOWED, roots - ALLOWED
    assert "md2tf" not in roots and "tensorflow" not in roots


def test_metadata_reader_matches_flatbuffer_utils(model):
    from md2tf.deploy import tflite_graph

    runner = _load_script()
    assert runner.read_metadata(model["content"]) == tflite_graph.read_metadata(model["content"])
    assert runner.model_info(model["path"]) == model["info"].to_dict()


def test_images_match_md2tf_predictor(model, tmp_path):
    from md2tf.deploy.inference import load_predictor

    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"nope")
    runner = _load_script()
    rc = runner.main([model["path"], "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    assert rc == 1  # the corrupt file is reported, the good one processed
    ref = load_predictor(model["path"]).predict(img[None])
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a_disparity.npy"), ref["disparity"][0, ..., 0],
                               atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "a_depth.npy"), ref["depth"][0, ..., 0],
                               rtol=1e-5)
    assert np.asarray(Image.open(tmp_path / "out" / "a_disp.png")).shape == (H, W, 3)


def test_an_image_given_twice_is_processed_once(model, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    img = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    for name in ("a.png", "b.png"):
        Image.fromarray(img).save(folder / name)
    runner = _load_script()
    again = os.path.join(str(folder), ".", "a.png")  # another spelling of the same file
    files, duplicates = runner.collect_files([str(folder / "a.png"), str(folder), again])
    assert files == [str(folder / "a.png"), str(folder / "b.png")]
    assert duplicates == [(str(folder / "a.png"), str(folder / "a.png")),
                          (again, str(folder / "a.png"))]
    out = tmp_path / "out"
    capsys.readouterr()
    assert runner.main([model["path"], "--input", str(folder / "a.png"), str(folder / "a.png"),
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(" -> ") == 1 and "same file as" in printed
    assert f"1 image(s) done, 0 failed, 1 duplicate(s) skipped; outputs in {out}" in printed
    assert sorted(os.listdir(out)) == ["a_depth.npy", "a_disp.png", "a_disparity.npy"]


def test_benchmark_reports_both_xnnpack_modes(model, tmp_path):
    out = tmp_path / "bench.json"
    runner = _load_script()
    rc = runner.main([model["path"], "--benchmark", "--threads", "1", "--warmup", "1", "--runs", "3",
                      "--xnnpack", "both", "--json", str(out)])
    assert rc == 0
    results = json.loads(out.read_text())
    assert [r["xnnpack"] for r in results] == [True, False]
    for r in results:
        assert r["input"] == [1, H, W, 3] and r["runs"] == 3
        assert 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]


def test_runs_without_md2tf_on_the_path(model, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", SCRIPT, model["path"], "--benchmark", "--runs", "2",
                           "--warmup", "0"], capture_output=True, text=True, cwd=str(tmp_path),
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "median" in proc.stdout and "metres" in proc.stdout
