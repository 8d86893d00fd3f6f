"""Exports one `DepthPredictor` to every requested format and writes ``model_card.json``.

Layout of ``out_dir``::

    saved_model/            SavedModel (signatures: see md2tf.deploy.saved_model) + md2tf_model.json
    depth_fp32.tflite       tflite_fp32      (each .tflite embeds ModelInfo as metadata "md2tf_model")
    depth_fp16.tflite       tflite_fp16
    depth_dynamic.tflite    tflite_dynamic
    depth_int8.tflite       tflite_int8
    pose_fp32.tflite        tflite_pose (optional: pose network for on-device odometry, md2tf.deploy.pose)
    model_card.json

Every ``.tflite`` is converted from its own temporary SavedModel of a clone of the depth network
with the decoder's XNNPACK layout (`TFLITE_CLONE_OPTIONS`, same weights, float outputs checked equal;
see `int8_friendly_clone`): reflection padding as slices + concat instead of MIRROR_PAD and nearest
upsampling as DEPTH_TO_SPACE instead of RESIZE_NEAREST_NEIGHBOR. XNNPACK runs neither MIRROR_PAD nor
(in int8) RESIZE_NEAREST_NEIGHBOR, so each of them split the graph into separate delegate partitions
with reference kernels in between: measured at 640x192, 2 threads, the layout makes fp32 1.6x faster
(135 -> 86 ms) and is what lets int8 run whole in XNNPACK. ``tf.nn.elu`` stays;
`md2tf.deploy.tflite.convert` turns it into the int8 ELU builtin and keeps the int8 output head
float. The SavedModel is the network as trained. The card records the graph under
``variants.<tflite variant>.tflite_graph``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from md2tf.deploy import tflite
from md2tf.deploy.images import structured_images
from md2tf.deploy.inference import KerasPredictor, Predictor
from md2tf.deploy.model_card import build_model_card, write_model_card
from md2tf.deploy.saved_model import export_saved_model

FORMATS = ("saved_model",) + tflite.TFLITE_VARIANTS  # the depth model; the default
POSE_FORMAT = "tflite_pose"
ALL_FORMATS = FORMATS + (POSE_FORMAT,)
TFLITE_FILES = {"tflite_fp32": "depth_fp32.tflite", "tflite_fp16": "depth_fp16.tflite",
                "tflite_dynamic": "depth_dynamic.tflite", "tflite_int8": "depth_int8.tflite"}


def parse_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``"saved_model,tflite_fp32"`` (or a list) -> validated tuple; ``all`` = every depth format."""
    items = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    items = [f for f in items if f]
    if items == ["all"]:
        return FORMATS
    bad = [f for f in items if f not in ALL_FORMATS]
    if bad or not items:
        raise ValueError(f"--formats must be a comma-separated subset of {','.join(ALL_FORMATS)} (or all), "
                         f"got {formats!r}")
    return tuple(dict.fromkeys(items))


# DepthNet options of the TFLite exports (md2tf.models.DepthDecoder): the decoder's reflection pads and
# upsamplings as ops XNNPACK runs (in float and int8); ELU as tf.nn.elu, which tflite.convert makes an
# int8 ELU in the int8 variant (the decomposed form's EXP and RELU have no int8 XNNPACK kernels).
TFLITE_CLONE_OPTIONS = {"int8_friendly_pad": True, "int8_friendly_upsample": True,
                        "int8_friendly_elu": False}
_CLONE_ATOL = 1e-5  # float32 disparity difference allowed between the network and its clone


def int8_friendly_clone(depth_net, height: int, width: int) -> tuple[Any, float] | None:
    """A copy of ``depth_net`` with `TFLITE_CLONE_OPTIONS` and the same weights, verified equal.

    The clone is ``type(depth_net).from_config(config | TFLITE_CLONE_OPTIONS)``, built at
    ``[1, height, width, 3]``, given ``depth_net.get_weights()`` and checked on one random float image
    in [0, 1]: every output scale must match ``depth_net``'s within 1e-5.

    Args:
      depth_net: a built ``md2tf.models.DepthNet`` (any model with a ``get_config`` holding
        ``int8_friendly_elu`` and attributes named like every key of `TFLITE_CLONE_OPTIONS`).
      height, width: input size used to build and check the clone.

    Returns:
      ``(clone, max_abs_diff)``, or None when ``depth_net`` lacks these options or already has
      `TFLITE_CLONE_OPTIONS` (nothing to clone).

    Raises:
      RuntimeError: the clone's outputs differ from ``depth_net``'s.
    """
    import tensorflow as tf  # noqa: PLC0415

    try:
        config = depth_net.get_config()
    except (NotImplementedError, TypeError):  # a subclassed stand-in without a config
        return None
    if "int8_friendly_elu" not in config or not all(hasattr(depth_net, k) for k in TFLITE_CLONE_OPTIONS):
        return None
    if all(getattr(depth_net, k) == v for k, v in TFLITE_CLONE_OPTIONS.items()):
        return None
    clone = type(depth_net).from_config({**config, **TFLITE_CLONE_OPTIONS})
    clone.build_for_shape(height, width)
    clone.set_weights(depth_net.get_weights())
    x = tf.random.stateless_uniform([1, height, width, 3], seed=(11, 12))
    diff = max(float(tf.reduce_max(tf.abs(a - b)))
               for a, b in zip(depth_net(x, training=False), clone(x, training=False), strict=True))
    if not diff <= _CLONE_ATOL:
        raise RuntimeError(f"int8 clone of {depth_net.name!r} differs from it by {diff:.3g} "
                           f"(> {_CLONE_ATOL}); refusing to export TFLite from it")
    return clone, diff


def tflite_saved_model(predictor: KerasPredictor, default_dir: str,
                       work_dir: str) -> tuple[str, dict[str, Any]]:
    """The SavedModel every TFLite variant is converted from, and a description for the model card.

    Exports `int8_friendly_clone` of ``predictor``'s depth network to ``<work_dir>/saved_model_tflite``;
    falls back to ``default_dir`` (the SavedModel of the network as trained) when there is nothing to
    clone. Used by `export_all` and by ``scripts/bench/infer.py``, so the benchmark times the graph
    users get.

    Args:
      predictor: the `KerasPredictor` being exported.
      default_dir: SavedModel of ``predictor.model`` (already written).
      work_dir: scratch directory for the clone's SavedModel.

    Returns:
      ``(saved_model_dir, entry)``; ``entry["source"]`` says which network was converted and
      ``entry["clone_max_abs_diff_disparity"]`` how far the clone's float outputs are from it.
    """
    from md2tf.deploy.inference import make_depth_predictor  # noqa: PLC0415

    info = predictor.info
    net = predictor.model.depth_net
    cloned = int8_friendly_clone(net, info.height, info.width)
    if cloned is None:
        options = {k: getattr(net, k) for k in TFLITE_CLONE_OPTIONS if hasattr(net, k)}
        return default_dir, {"source": "the depth network as trained", "options": options}
    clone, diff = cloned
    sm_dir = export_saved_model(make_depth_predictor(clone, info), info,
                                os.path.join(work_dir, "saved_model_tflite"))
    return sm_dir, {"source": "clone of the depth network, same weights",
                    "options": dict(TFLITE_CLONE_OPTIONS), "clone_max_abs_diff_disparity": diff}


def _dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _parity(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> dict[str, float]:
    d = np.abs(out["disparity"] - ref["disparity"])
    rel = np.abs(out["depth"] - ref["depth"]) / np.maximum(ref["depth"], 1e-6)
    return {"max_abs_diff_disparity": float(d.max()), "mean_abs_diff_disparity": float(d.mean()),
            "max_rel_diff_depth": float(rel.max())}


def export_all(predictor: KerasPredictor, out_dir: str, formats: Sequence[str] = FORMATS,
               representative_images: Sequence[np.ndarray] | None = None,
               calibration: str | None = None, source: str = "",
               training_config: dict[str, Any] | None = None,
               evaluate_fn: Callable[[Predictor], dict[str, float]] | None = None,
               parity_images: np.ndarray | None = None, pose_net=None) -> dict[str, Any]:
    """Writes the requested formats and ``model_card.json`` into ``out_dir``.

    Args:
      predictor: a `KerasPredictor` (``predictor_from_models`` or ``load_predictor(checkpoint)``).
      out_dir: output directory (created; an existing SavedModel in it is an error).
      formats: subset of `FORMATS`.
      representative_images: uint8 RGB ``[H, W, 3]`` frames at the model size for int8 calibration;
        None = `structured_images` (recorded as such in the card).
      calibration: description of ``representative_images`` for the card.
      source: checkpoint / run directory recorded in the card.
      training_config: ``ExperimentConfig.to_dict()`` recorded in the card.
      evaluate_fn: optional ``predictor -> metrics`` (e.g. abs_rel, a1 via ``md2tf.evaluate``) run on
        every variant; results go to ``variants[name]["accuracy"]``.
      parity_images: uint8 ``[N, H, W, 3]`` used for parity vs Keras; None = 2 structured frames.
      pose_net: the run's ``PoseNet``; required for the ``tflite_pose`` format.

    Returns:
      The model card (also written to ``<out_dir>/model_card.json``).
    """
    from md2tf.deploy.inference import SavedModelPredictor, TFLitePredictor  # noqa: PLC0415

    formats = parse_formats(formats)
    if POSE_FORMAT in formats and pose_net is None:
        raise ValueError("--formats tflite_pose needs a pose network, but this run has none "
                         "(stereo-only training builds no pose net)")
    info = predictor.info
    os.makedirs(out_dir, exist_ok=True)
    if parity_images is None:
        parity_images = np.stack(structured_images(2, info.height, info.width, seed=7))
    ref = predictor.predict(parity_images)
    if representative_images is None and "tflite_int8" in formats:
        representative_images = structured_images(16, info.height, info.width, seed=1)
        calibration = calibration or "16 structured random frames (no dataset given)"

    variants: dict[str, dict[str, Any]] = {"keras": {"parity": {"max_abs_diff_disparity": 0.0}}}
    if evaluate_fn is not None:
        variants["keras"]["accuracy"] = evaluate_fn(predictor)

    keep_saved_model = "saved_model" in formats
    tmp_root = tempfile.mkdtemp()
    tflite_source = None
    sm_dir = os.path.join(out_dir if keep_saved_model else tmp_root, "saved_model")
    try:
        export_saved_model(predictor.model, info, sm_dir)
        if keep_saved_model:
            loaded = SavedModelPredictor(sm_dir)
            variants["saved_model"] = {
                "file": "saved_model", "size_bytes": _dir_size(sm_dir),
                "signatures": sorted(loaded.loaded.signatures.keys()),
                "parity": _parity(ref, loaded.predict(parity_images))}
            if evaluate_fn is not None:
                variants["saved_model"]["accuracy"] = evaluate_fn(loaded)
        for variant in formats:
            if variant == "saved_model":
                continue
            if variant == POSE_FORMAT:
                from md2tf.deploy.pose import export_pose  # noqa: PLC0415

                pairs = (parity_images[:-1], parity_images[1:]) if len(parity_images) > 1 else None
                variants[variant] = export_pose(pose_net, info, out_dir, pairs)
                continue
            if tflite_source is None:  # one clone SavedModel serves every TFLite variant
                tflite_source = tflite_saved_model(predictor, sm_dir, tmp_root)
            source_dir, graph = tflite_source
            extra = {"tflite_graph": dict(graph)}
            reps = None
            if variant == "tflite_int8":
                reps = lambda: iter(representative_images)  # noqa: E731
            content = tflite.convert(source_dir, variant, reps, metadata=info.to_dict())
            if variant == "tflite_int8":
                extra["tflite_graph"]["float_ops"] = tflite.float_ops(content)
            path = os.path.join(out_dir, TFLITE_FILES[variant])
            with open(path, "wb") as f:
                f.write(content)
            tflite.check_builtin_only(content)
            text, gpu_ok = tflite.analyze(content)
            tp = TFLitePredictor(path)
            variants[variant] = {
                "file": TFLITE_FILES[variant], "size_bytes": len(content),
                "ops": tflite.analyzer_ops(text),
                "gpu_compatible": gpu_ok, "parity": _parity(ref, tp.predict(parity_images)), **extra}
            if not gpu_ok:
                variants[variant]["gpu_warnings"] = [ln.strip() for ln in text.splitlines()
                                                     if "GPU" in ln][:20]
            if evaluate_fn is not None:
                variants[variant]["accuracy"] = evaluate_fn(tp)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    card = build_model_card(info, source, variants, calibration=calibration,
                            training_config=training_config)
    write_model_card(card, out_dir)
    return card


def calibration_images(source: str, num: int, height: int, width: int,
                       data_config=None) -> tuple[list[np.ndarray], str]:
    """uint8 RGB frames ``[height, width, 3]`` for int8 calibration, and a description for the card.

    Args:
      source: ``auto`` (the run's training data via ``md2tf.data.pipeline.make_dataset`` when
        ``data_config`` is readable, else structured frames), ``structured``, or a folder of images.
      num: number of frames.
      height, width: model input size.
      data_config: the run's ``DataConfig`` (used by ``auto``).
    """
    from md2tf.deploy.images import list_images, load_image_rgb, resize_rgb  # noqa: PLC0415

    if source not in ("auto", "structured"):
        files = list_images(source)[:num]
        if not files:
            raise ValueError(f"--calibration: no images found in {source!r}")
        frames = [resize_rgb(load_image_rgb(f), height, width) for f in files]
        return frames, f"{len(frames)} images from {source}"
    if source == "auto" and data_config is not None:
        try:
            import dataclasses  # noqa: PLC0415

            from md2tf.data.pipeline import make_dataset  # noqa: PLC0415

            cfg = dataclasses.replace(data_config, height=height, width=width)
            ds = make_dataset(cfg, split="train", batch_size=1, training=False)
            frames = [np.clip(np.round(b.target_aug[0].numpy() * 255.0), 0, 255).astype(np.uint8)
                      for b in ds.take(num)]
            if frames:
                return frames, (f"{len(frames)} training frames of dataset={cfg.dataset} "
                                f"split={cfg.split}")
        except Exception as e:  # noqa: BLE001  (fall back, but say why in the card)
            reason = f"training data unreadable ({type(e).__name__}: {e})"
        else:
            reason = "training data empty"
        return (structured_images(num, height, width, seed=1),
                f"{num} structured random frames; {reason}")
    return structured_images(num, height, width, seed=1), f"{num} structured random frames"


def run_export(config, accuracy_evaluator: Callable[..., Callable[[Predictor], dict[str, float]]]
               | None = None) -> dict[str, Any]:
    """``python -m md2tf.export`` as a function: loads ``config.checkpoint`` and exports it.

    Args:
      config: an ``md2tf.config.ExportConfig``.
      accuracy_evaluator: ``(data_dir, split, splits_dir, stereo=, image_ext=) -> (predictor ->
        metrics)``, needed when ``config.accuracy_split`` is set; ``md2tf.export`` passes
        ``md2tf.evaluation.runner.accuracy_evaluator`` (deploy itself never imports evaluation).

    Returns:
      The model card.
    """
    from md2tf.deploy.inference import predictor_from_models  # noqa: PLC0415
    from md2tf.models.checkpoint import load_models  # noqa: PLC0415

    want_pose = POSE_FORMAT in config.formats
    experiment, depth_net, pose_net = load_models(config.checkpoint, load_pose_net=want_pose)
    if config.height or config.width:  # fully convolutional: any multiple of 32 works
        import dataclasses  # noqa: PLC0415

        data = dataclasses.replace(experiment.data, height=config.height or experiment.data.height,
                                   width=config.width or experiment.data.width)
        experiment = dataclasses.replace(experiment, data=data)
    predictor = predictor_from_models(experiment, depth_net, post_process=config.post_process,
                                      metric_scale=config.metric_scale or None,
                                      real_baseline_m=config.real_baseline_m)
    reps, desc = None, None
    if "tflite_int8" in config.formats:
        reps, desc = calibration_images(config.calibration, config.num_calibration_images,
                                        predictor.height, predictor.width, experiment.data)
    evaluate_fn = None
    if config.accuracy_split:
        if accuracy_evaluator is None:
            raise ValueError("--accuracy_split needs an accuracy evaluator "
                             "(md2tf.evaluation.runner.accuracy_evaluator)")
        evaluate_fn = accuracy_evaluator(config.accuracy_data_dir or experiment.data.data_dir,
                                         config.accuracy_split, config.accuracy_splits_dir,
                                         stereo=experiment.data.use_stereo,
                                         image_ext=experiment.data.image_ext)
    parity = np.stack(reps[:4]) if reps else None  # real frames when calibration found some
    return export_all(predictor, config.out_dir, config.formats, representative_images=reps,
                      calibration=desc, source=config.checkpoint,
                      training_config=experiment.to_dict(), evaluate_fn=evaluate_fn,
                      parity_images=parity, pose_net=pose_net)


def summary_lines(card: dict[str, Any]) -> list[str]:
    """Human-readable one line per exported variant (size, parity, GPU compatibility)."""
    lines = []
    for name, v in card["variants"].items():
        if "file" not in v:
            continue
        size = v.get("size_bytes", 0) / 1e6
        par = v["parity"]["max_abs_diff_disparity"]
        gpu = v.get("gpu_compatible", "")
        line = f"{name:15s} {v['file']:22s} {size:8.2f} MB  max|d disp| {par:.2e}  gpu {gpu}"
        if "accuracy" in v:
            line += f"  abs_rel {v['accuracy']['abs_rel']:.4f}  a1 {v['accuracy']['a1']:.4f}"
        lines.append(line)
    return lines
