"""SavedModel signatures, TFLite conversion (builtins only), parity with Keras, metadata, model card."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from md2tf.deploy import calibration, exporter, formats, tflite, tflite_graph
from md2tf.deploy.inference import ModelInfo, load_predictor
from tests.deploy.conftest import H, W
from tests.deploy.xnnpack_graph import not_delegated, typed_ops

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Ops the exported depth graph may use (all TFLite builtins; GPU-delegate friendly).
EXPECTED_OPS = {"ADD", "CAST", "CONCATENATION", "CONV_2D", "DIV", "ELU", "LOGISTIC", "MAX_POOL_2D",
                "MIRROR_PAD", "MUL", "PAD", "RESHAPE", "RESIZE_NEAREST_NEIGHBOR", "SUB", "TILE",
                "QUANTIZE", "DEQUANTIZE", "REVERSE_V2", "STRIDED_SLICE",
                "DEPTH_TO_SPACE"}  # the TFLite models' upsampling (decoder layout "xnnpack")


def test_saved_model_has_the_documented_signatures(exported):
    loaded = tf.saved_model.load(exported["saved_model"])
    assert set(loaded.signatures) == {"serving_default", "predict_batch", "predict_float",
                                      "predict_encoded"}
    spec = loaded.signatures["serving_default"].structured_input_signature[1]["images"]
    assert spec.shape.as_list() == [1, H, W, 3] and spec.dtype == tf.uint8
    outs = loaded.signatures["serving_default"].structured_outputs
    assert set(outs) == {"disparity", "depth"}


def test_saved_model_reloads_and_matches_keras(exported):
    ref, x = exported["reference"], exported["images"]
    sigs = tf.saved_model.load(exported["saved_model"]).signatures
    batch = sigs["predict_batch"](images=tf.constant(x))
    np.testing.assert_allclose(batch["disparity"].numpy(), ref["disparity"], atol=1e-5)
    np.testing.assert_allclose(batch["depth"].numpy(), ref["depth"], rtol=1e-5)
    flt = sigs["predict_float"](images=tf.constant(x.astype(np.float32) / 255.0))
    np.testing.assert_allclose(flt["disparity"].numpy(), ref["disparity"], atol=1e-5)
    single = sigs["serving_default"](images=tf.constant(x[:1]))
    np.testing.assert_allclose(single["disparity"].numpy(), ref["disparity"][:1], atol=1e-5)


def test_saved_model_stores_each_weight_once(exported):
    """variables/ holds the float32 weights once (~4 bytes a parameter), reloadable in order."""
    model = exported["predictor"].model
    num_params = sum(int(np.prod(v.shape)) for v in model.variables)
    var_dir = os.path.join(exported["saved_model"], "variables")
    size = sum(os.path.getsize(os.path.join(var_dir, f)) for f in os.listdir(var_dir))
    assert 4 * num_params <= size <= 1.1 * 4 * num_params, (size, 4 * num_params)
    stored = [name for name, _ in tf.train.list_variables(os.path.join(var_dir, "variables"))
              if name.endswith("VARIABLE_VALUE")]
    assert len(stored) == len(model.variables)
    loaded = tf.saved_model.load(exported["saved_model"])
    assert len(loaded.variables) == len(model.variables)
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
    for ours, theirs in zip(model.variables, loaded.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_saved_model_encoded_bytes_signature(exported):
    x = exported["images"]
    blobs = []
    for img in x:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    sig = tf.saved_model.load(exported["saved_model"]).signatures["predict_encoded"]
    out = sig(image_bytes=tf.constant(blobs))
    # Lossless PNG at the model size: decoding + same-size resize must give the same answer.
    np.testing.assert_allclose(out["disparity"].numpy(), exported["reference"]["disparity"], atol=1e-4)


def test_tflite_fp32_matches_keras(exported):
    out = tflite.run(exported["content"], exported["images"])
    ref = exported["reference"]
    assert out["disparity"].shape == (2, H, W, 1)
    np.testing.assert_allclose(out["disparity"], ref["disparity"], atol=1e-4)
    np.testing.assert_allclose(out["depth"], ref["depth"], rtol=1e-3)


def test_tflite_uses_builtin_ops_only_and_is_gpu_compatible(exported):
    ops = tflite_graph.check_builtin_only(exported["content"])
    assert "CONV_2D" in ops and "MIRROR_PAD" in ops and "LOGISTIC" in ops
    assert set(ops) <= EXPECTED_OPS, set(ops) - EXPECTED_OPS
    text, gpu_ok = tflite.analyze(exported["content"])
    assert tflite.analyzer_ops(text) == ops
    assert gpu_ok, text


def test_tflite_metadata_round_trip(exported):
    meta = tflite_graph.read_metadata(exported["content"])
    assert ModelInfo.from_dict(json.loads(meta["md2tf_model"])) == exported["info"]


def test_load_predictor_reads_every_export(exported):
    ref = exported["reference"]
    for path in (exported["saved_model"], exported["tflite_fp32"]):
        p = load_predictor(path)
        assert (p.height, p.width, p.metric_scale) == (H, W, 5.4)
        assert p.info == exported["info"]  # the learned K and the metric source included
        out = p.predict(exported["images"])
        np.testing.assert_allclose(out["disparity"], ref["disparity"], atol=1e-4)
        np.testing.assert_allclose(out["scaled_disparity"], ref["scaled_disparity"], rtol=1e-4)
        np.testing.assert_allclose(out["depth"], ref["depth"], rtol=1e-3)


def _flex_saved_model(path):
    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 3], tf.uint8, name="images")])
        def serve(self, images):
            x = tf.cast(images, tf.float32)
            return {"disparity": tf.math.igamma(x + 1.0, x + 2.0)[..., :1], "depth": x[..., :1]}

    m = M()
    tf.saved_model.save(m, path, signatures={"serving_default": m.serve})
    return path


def test_conversion_fails_on_flex_ops(tmp_path):
    path = _flex_saved_model(str(tmp_path / "flex"))
    with pytest.raises(Exception, match="(?i)flex|select|not supported|igamma"):
        tflite.convert(path)


def test_check_builtin_only_rejects_a_flex_model(tmp_path):
    path = _flex_saved_model(str(tmp_path / "flex"))
    converter = tf.lite.TFLiteConverter.from_saved_model(path)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    converter.allow_custom_ops = True  # Igamma is not even on the Flex allowlist: a custom op
    content = converter.convert()
    with pytest.raises(ValueError, match="non-builtin ops.*Igamma"):
        tflite_graph.check_builtin_only(content)


def test_convert_rejects_bad_variant_and_int8_without_data(exported):
    with pytest.raises(ValueError, match="quantization must be one of"):
        tflite.TFLiteOptions("int4")
    with pytest.raises(ValueError, match="representative_images"):
        tflite.convert(exported["saved_model"], tflite.TFLiteOptions("int8"))


def test_export_config_validation():
    from md2tf.config import ExportConfig

    with pytest.raises(ValueError, match="--export_height.*multiple of 32"):
        ExportConfig(checkpoint="run", out_dir="out", height=50)
    with pytest.raises(ValueError, match="--out is required"):
        ExportConfig(checkpoint="run")
    with pytest.raises(ValueError, match="--formats is empty"):
        ExportConfig(checkpoint="run", out_dir="out", formats=("",))
    assert ExportConfig(checkpoint="r", out_dir="o").formats == ("all",)  # the default: every depth format


def _names(selected):
    return tuple(f.name for f in selected)


def test_resolve_formats():
    depth = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")
    assert _names(formats.resolve("all")) == formats.default_formats() == depth
    assert _names(formats.resolve("all,tflite_pose")) == (*depth, "tflite_pose")
    # Registry order, no duplicates.
    assert _names(formats.resolve("tflite_fp32, saved_model,tflite_fp32")) == ("saved_model", "tflite_fp32")
    with pytest.raises(ValueError, match=r"--formats must be .*saved_model.*tflite_pose.*unknown \['onnx'\]"):
        formats.resolve("tflite_fp32,onnx")
    with pytest.raises(ValueError, match="--formats"):
        formats.resolve("")


def test_every_registry_entry_is_complete():
    files = [f.file for f in formats.FORMATS.values()]
    assert len(set(files)) == len(files)  # no two formats write the same file
    for name, f in formats.FORMATS.items():
        assert f.name == name and f.description and f.parity_atol > 0 and callable(f.write)
        assert (f.tflite is not None) == f.file.endswith(".tflite") or f.needs_pose_net


@pytest.mark.slow
@pytest.mark.parametrize("variant,atol", [("tflite_fp16", 1e-2), ("tflite_dynamic", 5e-2),
                                          ("tflite_int8", 1e-1)])
def test_quantized_variants_run_and_stay_close(exported, variant, atol):
    from md2tf.deploy.images import structured_images

    frames = structured_images(8, H, W, seed=2)
    content = tflite.convert(exported["saved_model"], formats.FORMATS[variant].tflite,
                             lambda: iter(frames))
    ops = tflite_graph.check_builtin_only(content)
    if variant == "tflite_int8":  # from the network as trained: MIRROR_PAD, int8 ELU, float head
        assert {"QUANTIZE", "ELU", "MIRROR_PAD"} <= set(ops)
        assert tflite_graph.float_ops(content) == ["ADD", "CAST", "DIV", "LOGISTIC", "MUL"]
    out = tflite.run(content, exported["images"])
    np.testing.assert_allclose(out["disparity"], exported["reference"]["disparity"], atol=atol)
    assert len(content) < 0.6 * len(exported["content"])  # weights stored in 16 or 8 bits


def test_xnnpack_clone_copies_the_weights_and_checks_them(exported, monkeypatch):
    from md2tf.models import layers
    from tests.deploy.standin import tiny_depth_net

    net = exported["predictor"].model.depth_net
    clone, diff = formats.xnnpack_clone(net, H, W)
    assert clone.layout == "xnnpack" and net.layout == "train" and diff <= 1e-5
    assert clone.get_config() == {**net.get_config(), "layout": "xnnpack"}
    for a, b in zip(clone.weights, net.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert formats.xnnpack_clone(clone, H, W) is None  # already in the xnnpack layout
    assert formats.xnnpack_clone(tiny_depth_net(H, W), H, W) is None  # not a DepthNet
    monkeypatch.setattr(layers, "reflect_pad_slices", lambda x, pad=1: layers.zero_pad(x, pad))
    with pytest.raises(RuntimeError, match="xnnpack-layout clone"):  # a wrong padding is caught
        formats.xnnpack_clone(net, H, W)


@pytest.mark.slow
def test_int8_export_runs_the_network_in_int8_inside_xnnpack(exported, tmp_path):
    card = exporter.export_all(exported["predictor"], str(tmp_path), ["tflite_int8"])
    variant = card["variants"]["tflite_int8"]
    entry = variant["tflite_graph"]
    assert entry["layout"] == "xnnpack"
    assert entry["clone_max_abs_diff_disparity"] <= 1e-5
    assert entry["float_ops"] == ["ADD", "CAST", "DIV", "LOGISTIC", "MUL"]  # input cast + head
    assert json.loads((tmp_path / "model_card.json").read_text())["variants"]["tflite_int8"]["tflite_graph"]
    content = (tmp_path / "depth_int8.tflite").read_bytes()
    ops = tflite_graph.check_builtin_only(content)
    assert not {"MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR", "EXP"} & set(ops)
    assert set(variant["ops"]) <= EXPECTED_OPS
    assert typed_ops(content)[("ELU", "int8")] == 10  # one per decoder ConvBlock
    assert not_delegated(content) == {"CAST": 1}  # one XNNPACK partition after the uint8 cast
    out = tflite.run(content, exported["images"])
    np.testing.assert_allclose(out["disparity"], exported["reference"]["disparity"], atol=1e-1)


@pytest.mark.slow
def test_export_all_writes_every_format_and_a_model_card(exported, tmp_path):
    out = tmp_path / "all"
    card = exporter.export_all(exported["predictor"], str(out), "all",
                               evaluate_fn=lambda p: {"height": float(p.height)})
    on_disk = json.loads((out / "model_card.json").read_text())
    assert on_disk["variants"].keys() == card["variants"].keys()
    assert set(card["variants"]) == {"keras", *formats.default_formats()}
    assert sorted(os.listdir(out)) == sorted([formats.FORMATS[n].file for n in formats.default_formats()]
                                             + ["model_card.json"])  # nothing else, no temp files
    for name in formats.default_formats():
        assert card["variants"][name]["parity"]["within_tolerance"] is True, name
    for name in [n for n in formats.default_formats() if formats.FORMATS[n].tflite]:
        v = card["variants"][name]
        assert (out / v["file"]).stat().st_size == v["size_bytes"]
        assert set(v["ops"]) <= EXPECTED_OPS and v["gpu_compatible"] is True
        assert v["accuracy"] == {"height": float(H)}
        # Every variant comes from the XNNPACK-layout clone: no MIRROR_PAD / RESIZE partitions.
        assert v["tflite_graph"]["layout"] == "xnnpack"
        assert not {"MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR"} & set(v["ops"]), (name, v["ops"])
        assert {"STRIDED_SLICE", "DEPTH_TO_SPACE"} <= set(v["ops"]), (name, v["ops"])
    par = {k: card["variants"][k]["parity"]["max_abs_diff_disparity"] for k in formats.default_formats()}
    assert par["saved_model"] <= 1e-5 and par["tflite_fp32"] <= 1e-4 and par["tflite_fp16"] <= 1e-2
    assert card["contract"]["input"]["dtype"] == "uint8"
    assert card["contract"]["outputs"]["depth"]["range"] == pytest.approx([0.54, 540.0])
    assert "structured" in card["int8_calibration"]


@pytest.fixture(scope="module")
def run_dir(exported, tmp_path_factory):
    """A stereo-only run directory holding the fixture's DepthNet (so metric_scale = 5.4)."""
    from md2tf.config import DataConfig, ExperimentConfig, ModelConfig
    from md2tf.models.checkpoint import save_models

    config = ExperimentConfig(data=DataConfig(height=H, width=W, frame_offsets=(0,), use_stereo=True),
                              model=ModelConfig(num_layers=18, init="keras"))
    path = str(tmp_path_factory.mktemp("run"))
    save_models(path, config, exported["predictor"].model.depth_net, step=3)
    return path


def test_load_predictor_from_run_dir_and_prefix(exported, run_dir):
    ref = exported["reference"]
    for path in (run_dir, os.path.join(run_dir, "checkpoints", "ckpt-3")):
        p = load_predictor(path)
        assert (p.height, p.width, p.metric_scale) == (H, W, pytest.approx(5.4))
        assert p.info.depth_units == "metres"
        out = p.predict(exported["images"])
        np.testing.assert_allclose(out["disparity"], ref["disparity"], atol=1e-6)
        np.testing.assert_allclose(out["depth"], ref["depth"], rtol=1e-5)


@pytest.mark.slow
def test_export_cli_end_to_end(exported, run_dir, tmp_path):
    out = tmp_path / "exp"
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-m", "md2tf.export", f"--checkpoint={run_dir}", f"--out={out}",
         "--formats=saved_model,tflite_fp32,tflite_int8", "--calibration=structured",
         "--num_calibration_images=4", "--export_height=96", "--noaccuracy"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["model"]["metric_scale"] == pytest.approx(5.4)
    assert (card["model"]["height"], card["model"]["width"]) == (96, W)  # --export_height override
    assert card["training_config"]["data"]["use_stereo"] is True
    assert card["variants"]["tflite_fp32"]["parity"]["max_abs_diff_disparity"] <= 1e-4
    assert "4 structured" in card["int8_calibration"]
    assert card["accuracy"] == {"skipped": "--noaccuracy"} and "accuracy" not in card["variants"]["keras"]
    p = load_predictor(str(out / "depth_int8.tflite"))
    assert p.metric_scale == pytest.approx(5.4)
    files = sorted(os.listdir(out))
    card_text = (out / "model_card.json").read_text()
    for flag, message in (("--formats=tflite_fp16", "is not empty.*--overwrite"),
                          ("--formats=onnx", "--formats must be.*unknown")):
        again = subprocess.run([sys.executable, "-m", "md2tf.export", f"--checkpoint={run_dir}",
                                f"--out={out}", flag], capture_output=True, text=True, env=env,
                               cwd=REPO, timeout=600)
        assert again.returncode != 0 and re.search(message, again.stderr), again.stderr[-2000:]
        assert sorted(os.listdir(out)) == files and (out / "model_card.json").read_text() == card_text


def test_flip_post_processing_survives_conversion(tmp_path):
    """Post-processing (batch of [x, flip(x)], masks) converts to builtins and matches Keras."""
    from md2tf.deploy.inference import DepthPredictor, KerasPredictor
    from md2tf.deploy.saved_model import export_saved_model
    from tests.deploy.standin import tiny_depth_net

    info = ModelInfo(32, 64, post_process=True)
    predictor = KerasPredictor(DepthPredictor(tiny_depth_net(32, 64), info), info)
    sm = export_saved_model(predictor.model, info, str(tmp_path / "sm"))
    content = tflite.convert(sm)
    assert "REVERSE_V2" in tflite_graph.check_builtin_only(content)
    x = np.random.default_rng(2).integers(0, 256, (2, 32, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(tflite.run(content, x)["disparity"], predictor.predict(x)["disparity"],
                               atol=1e-5)
    assert tflite.analyze(content)[1]  # still GPU-delegate compatible


@pytest.fixture(scope="module")
def synthetic_run(exported, tmp_path_factory):
    """A stereo run on a tiny synthetic-layout world (dense GT maps, no gt_depths.npz yet)."""
    from md2tf.config import DataConfig, ExperimentConfig, ModelConfig
    from md2tf.models.checkpoint import save_models
    from tests.data import fake_kitti

    root = str(tmp_path_factory.mktemp("world"))
    fake_kitti.write_tree(root, frames=3, ext=".png", with_gt=True)
    data = DataConfig(dataset="synthetic", data_dir=root, height=H, width=W, frame_offsets=(0,),
                      use_stereo=True, image_ext=".png")
    config = ExperimentConfig(data=data, model=ModelConfig(num_layers=18, init="keras"))
    path = str(tmp_path_factory.mktemp("synthetic_run"))
    save_models(path, config, exported["predictor"].model.depth_net, step=1)
    return {"run_dir": path, "data": data, "root": root}


def test_export_scores_every_variant_on_the_datasets_test_split_by_default(synthetic_run, tmp_path):
    from md2tf.config import ExportConfig
    from md2tf.evaluation import gt_depth
    from md2tf.evaluation.runner import accuracy_evaluator
    from tests.data import fake_kitti

    gt_path = gt_depth.gt_depths_path(os.path.join(synthetic_run["root"], "splits"), "synthetic")
    assert not os.path.exists(gt_path)
    config = ExportConfig(checkpoint=synthetic_run["run_dir"], out_dir=str(tmp_path / "out"),
                          formats=("saved_model",))
    card = exporter.run_export(config, accuracy_evaluator=accuracy_evaluator)
    # The dataset protocol chose the split and its dense GT; the GT file was exported on the fly.
    assert card["accuracy"]["split"] == "synthetic" and "x 5.4" in card["accuracy"]["scoring"]
    maps = gt_depth.load_gt_depths(gt_path)
    assert len(maps) == 3
    np.testing.assert_array_equal(maps[1][1], np.arange(fake_kitti.RAW_WIDTH, dtype=np.float32) + 1)
    keras_acc = card["variants"]["keras"]["accuracy"]
    saved_acc = card["variants"]["saved_model"]["accuracy"]
    assert 0.0 < keras_acc["abs_rel"] and 0.0 <= keras_acc["a1"] <= 1.0
    for key in ("abs_rel", "rmse", "a1"):  # SavedModel = Keras within 1e-5 in disparity
        assert saved_acc[key] == pytest.approx(keras_acc[key], rel=1e-3, abs=1e-4), key
    assert any(line.startswith("accuracy on ") for line in exporter.summary_lines(card))


def test_accuracy_plan_follows_the_dataset_protocol(synthetic_run):
    from md2tf.config import ExportConfig

    data = synthetic_run["data"]
    config = ExportConfig(checkpoint="run", out_dir="out")
    plan, _ = exporter.accuracy_plan(config, data)
    assert (plan.split, plan.splits_dir, plan.stereo, plan.image_ext, plan.requested) == (
        "synthetic", os.path.join(synthetic_run["root"], "splits"), True, ".png", False)
    kitti, _ = exporter.accuracy_plan(config, dataclasses.replace(data, dataset="kitti"))
    assert kitti.split == "eigen"  # the dataset's eval_split, which has lidar GT
    assert exporter.accuracy_plan(dataclasses.replace(config, accuracy=False), data) == (
        None, "--noaccuracy")
    none, reason = exporter.accuracy_plan(config, dataclasses.replace(data, dataset="folder"))
    assert none is None and "--dataset=folder has no test split" in reason
    asked, _ = exporter.accuracy_plan(
        dataclasses.replace(config, accuracy=False, accuracy_split="eigen_benchmark",
                            accuracy_data_dir="/data/kitti"), data)
    assert (asked.split, asked.data_dir, asked.splits_dir, asked.requested) == (
        "eigen_benchmark", "/data/kitti", "/data/kitti/splits", True)


def test_unreadable_default_split_skips_scoring_but_a_requested_one_fails(synthetic_run, tmp_path):
    from md2tf.evaluation.runner import accuracy_evaluator

    plan = exporter.AccuracyPlan("synthetic", str(tmp_path / "missing"),
                                 str(tmp_path / "missing" / "splits"), True, ".png", False)
    fn, entry = exporter._scored_evaluator(plan, accuracy_evaluator, predictor=None)
    assert fn is None and "test split 'synthetic' unreadable" in entry["skipped"]
    assert "accuracy not scored: test split" in exporter.summary_lines(
        {"variants": {}, "accuracy": entry})[-1]
    with pytest.raises((ValueError, OSError)):
        exporter._scored_evaluator(dataclasses.replace(plan, requested=True), accuracy_evaluator,
                                   predictor=None)


def _frame_ids(frames):
    """(frame index, side) of fake-KITTI frames, read from their constant colour channels."""
    from tests.data import fake_kitti

    ids = []
    for frame in frames:
        r, g = int(frame[..., 0].mean().round()), int(frame[..., 1].mean().round())
        ids.append(((r - 20) // 30, "l" if g == 200 else "r"))
        assert (fake_kitti.frame_colour(*ids[-1])[:2] == [r, g]).all()
    return ids


def test_calibration_frames_are_a_seeded_draw_of_the_training_targets(tmp_path):
    from md2tf.config import DataConfig
    from tests.data import fake_kitti

    root = fake_kitti.write_tree(str(tmp_path / "world"), frames=7, with_gt=False)
    data = DataConfig(dataset="synthetic", data_dir=root, height=32, width=64, image_ext=".png")
    first, desc = calibration.calibration_images("auto", 4, 32, 64, data, seed=0)
    again, _ = calibration.calibration_images("auto", 4, 32, 64, data, seed=0)
    other, _ = calibration.calibration_images("auto", 4, 32, 64, data, seed=1)
    assert desc == "4 of the 10 training frames of dataset=synthetic (drawn with seed 0)"
    assert all(f.shape == (32, 64, 3) and f.dtype == np.uint8 for f in first)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    ids = _frame_ids(first)
    assert len(set(ids)) == 4 and all(1 <= i <= 5 for i, _ in ids)  # distinct training targets
    assert _frame_ids(other) != ids
    # A folder of images: the same seeded draw over its sorted files.
    folder = os.path.join(root, fake_kitti.DRIVE, "image_02", "data")
    pick, text = calibration.calibration_images(folder, 3, 32, 64, seed=5)
    assert text == f"3 images from {folder} (drawn with seed 5)"
    assert [i for i, _ in _frame_ids(pick)] == [i for i, _ in _frame_ids(
        calibration.calibration_images(folder, 3, 32, 64, seed=5)[0])]
    everything, _ = calibration.calibration_images(folder, 50, 32, 64, seed=5)
    assert sorted(i for i, _ in _frame_ids(everything)) == list(range(7))


@pytest.mark.slow
def test_two_int8_exports_of_one_run_are_identical(synthetic_run, tmp_path):
    from md2tf.config import ExportConfig

    contents = []
    for name in ("a", "b"):
        config = ExportConfig(checkpoint=synthetic_run["run_dir"], out_dir=str(tmp_path / name),
                              formats=("tflite_int8",), num_calibration_images=4, accuracy=False)
        card = exporter.run_export(config)
        assert "drawn with seed 0" in card["int8_calibration"]
        contents.append((tmp_path / name / "depth_int8.tflite").read_bytes())
    assert contents[0] == contents[1]
