"""Exports one `DepthPredictor` to the requested formats and writes ``model_card.json``, atomically.

Layout of ``out_dir`` (every file is an entry of ``md2tf.deploy.formats.FORMATS``)::

    saved_model/            saved_model      (signatures: see md2tf.deploy.saved_model) + md2tf_model.json
    depth_fp32.tflite       tflite_fp32      (each .tflite embeds ModelInfo as metadata "md2tf_model")
    depth_fp16.tflite       tflite_fp16
    depth_dynamic.tflite    tflite_dynamic
    depth_int8.tflite       tflite_int8
    pose_fp32.tflite        tflite_pose      (optional: pose network for on-device odometry)
    model_card.json

Writing is staged and locked (`md2tf.deploy.staging`): an export never mixes two models,
never leaves a half-written folder and never replaces a non-empty ``out_dir`` without
``overwrite``. int8 calibration frames come from `md2tf.deploy.calibration`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from md2tf.data import datasets, splits
from md2tf.deploy.calibration import calibration_images
from md2tf.deploy.formats import ALL, ExportJob, resolve
from md2tf.deploy.images import structured_images
from md2tf.deploy.inference import KerasPredictor, Predictor, predictor_from_models
from md2tf.deploy.model_card import build_model_card, write_model_card
from md2tf.deploy.staging import Staging, check_out_dir, hold_out_dir
from md2tf.models.checkpoint import load_learned_intrinsics, load_models

logger = logging.getLogger(__name__)

def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _parity(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> dict[str, float]:
    d = np.abs(out["disparity"] - ref["disparity"])
    rel = np.abs(out["depth"] - ref["depth"]) / np.maximum(ref["depth"], 1e-6)
    return {"max_abs_diff_disparity": float(d.max()), "mean_abs_diff_disparity": float(d.mean()),
            "max_rel_diff_depth": float(rel.max())}


def _max_abs_diff(parity: dict[str, Any]) -> float:
    return max(float(v) for k, v in parity.items() if k.startswith("max_abs_diff"))


def export_all(predictor: KerasPredictor | None, out_dir: str, formats: str | Sequence[str] = ALL,
               representative_images: Sequence[np.ndarray] | None = None,
               calibration: str | None = None, source: str = "",
               training_config: dict[str, Any] | None = None,
               evaluate_fn: Callable[[Predictor], dict[str, float]] | None = None,
               parity_images: np.ndarray | None = None, pose_net=None,
               overwrite: bool = False, accuracy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes the requested formats and ``model_card.json`` into ``out_dir`` (atomically).

    Args:
      predictor: a `KerasPredictor` (``predictor_from_models`` or ``load_predictor(checkpoint)``).
      out_dir: output folder; must be absent or empty unless ``overwrite``.
      formats: names of ``md2tf.deploy.formats.FORMATS`` (a list or a comma-separated string;
        ``all`` = every depth format).
      representative_images: uint8 RGB ``[H, W, 3]`` frames at the model size for int8 calibration;
        None = `structured_images` (recorded as such in the card).
      calibration: description of ``representative_images`` for the card.
      source: checkpoint / run directory recorded in the card.
      training_config: ``ExperimentConfig.to_dict()`` recorded in the card.
      evaluate_fn: optional ``predictor -> metrics`` (e.g. abs_rel, a1 via ``md2tf.evaluate``) run on
        every depth format; results go to ``variants[name]["accuracy"]``.
      parity_images: uint8 ``[N, H, W, 3]`` used for parity vs Keras; None = 2 structured frames.
      pose_net: the run's ``PoseNet``; required by formats with ``needs_pose_net``.
      overwrite: replace a non-empty ``out_dir`` as a whole.
      accuracy: the card's ``accuracy`` entry: where ``evaluate_fn`` scores (split, scoring), or
        ``{"skipped": reason}``.

    Returns:
      The model card (also written to ``<out_dir>/model_card.json``). ``variants[name]["parity"]``
      holds the differences from Keras, the format's ``tolerance`` and ``within_tolerance``.

    Raises:
      ValueError: unknown formats, a non-empty ``out_dir`` without ``overwrite`` (at the start or
        at the final rename), another export writing ``out_dir`` (`hold_out_dir`), or a pose format
        without a pose network; nothing is written to ``out_dir`` then.
    """
    selected = resolve(formats)
    check_out_dir(out_dir, overwrite)
    with hold_out_dir(out_dir):
        return _write_export(predictor, out_dir, selected, representative_images, calibration,
                             source, training_config, evaluate_fn, parity_images, pose_net,
                             overwrite, accuracy)


def _write_export(predictor, out_dir, selected, representative_images, calibration, source,
                  training_config, evaluate_fn, parity_images, pose_net, overwrite,
                  accuracy) -> dict[str, Any]:
    """`export_all` once ``formats`` are resolved and ``out_dir`` is checked and held."""
    needs_pose = [f.name for f in selected if f.needs_pose_net]
    if needs_pose and pose_net is None:
        raise ValueError(f"--formats {','.join(needs_pose)} needs a pose network, but this run has "
                         "none (stereo-only training builds no pose net)")
    info = predictor.info
    if parity_images is None:
        parity_images = np.stack(structured_images(2, info.height, info.width, seed=7))
    ref = predictor.predict(parity_images)
    if representative_images is None and any(f.tflite and f.tflite.quantization == "int8"
                                              for f in selected):
        representative_images = structured_images(16, info.height, info.width, seed=1)
        calibration = calibration or "16 structured random frames (no dataset given)"

    variants: dict[str, dict[str, Any]] = {"keras": {"parity": {"max_abs_diff_disparity": 0.0}}}
    if evaluate_fn is not None:
        variants["keras"]["accuracy"] = evaluate_fn(predictor)
    with Staging(out_dir) as stage:
        job = ExportJob(predictor, stage.work, representative_images, parity_images, pose_net)
        for fmt in selected:
            path = os.path.join(stage.out, fmt.file)
            entry, reader = fmt.write(job, path, fmt)
            entry = {"file": fmt.file, "description": fmt.description, "size_bytes": _size(path),
                     **entry}
            if reader is not None:
                entry["parity"] = _parity(ref, reader.predict(parity_images))
                if evaluate_fn is not None:
                    entry["accuracy"] = evaluate_fn(reader)
            within = _max_abs_diff(entry["parity"]) <= fmt.parity_atol
            entry["parity"] = {**entry["parity"], "tolerance": fmt.parity_atol,
                               "within_tolerance": within}
            variants[fmt.name] = entry
        card = build_model_card(info, source, variants, calibration=calibration,
                                training_config=training_config, accuracy=accuracy)
        write_model_card(card, stage.out)
        stage.commit(overwrite)
    return card


@dataclasses.dataclass(frozen=True)
class AccuracyPlan:
    """Where ``md2tf.export`` scores the exported variants.

    Attributes:
      split: test split folder (``test_files.txt``, ``gt_depths.npz``).
      data_dir: test images root.
      splits_dir: directory holding ``<split>/``.
      stereo: stereo-trained model: scored without median scaling, depth x 5.4 (paper Sec. 4.1).
      image_ext: test image extension (the run's).
      requested: named by ``--accuracy_split`` (errors stop the export) rather than taken from the
        dataset by default (errors skip the scoring, with the reason in the card).
    """

    split: str
    data_dir: str
    splits_dir: str
    stereo: bool
    image_ext: str
    requested: bool

    def describe(self) -> dict[str, Any]:
        """The card's ``accuracy`` entry: split, data and scoring protocol."""
        scoring = ("stereo: no median scaling, depth x 5.4" if self.stereo
                   else "per-image median scaling")
        return {"split": self.split, "data_dir": self.data_dir, "splits_dir": self.splits_dir,
                "scoring": scoring, "metrics": "Eigen protocol (md2tf.evaluate)"}


def accuracy_plan(config, data_config) -> tuple[AccuracyPlan | None, str]:
    """The test split the model card scores on, from the run's dataset; or None and why not.

    ``--accuracy_split`` names the split; otherwise the dataset protocol decides
    (``md2tf.data.datasets``): its ``eval_split`` when that split has ground truth
    (``gt_sources``), else the first split in ``gt_sources``; a dataset without one (a folder of
    video frames) has nothing to score on.

    Args:
      config: the ``ExportConfig``.
      data_config: the run's ``DataConfig`` (dataset, data_dir, splits_dir, stereo, image_ext).

    Returns:
      ``(plan, "")`` or ``(None, reason)``.
    """
    if config.accuracy_split:
        split, requested = config.accuracy_split, True
    elif not config.accuracy:
        return None, "--noaccuracy"
    else:
        dataset = datasets.get_dataset(data_config.dataset)
        sources = dict(dataset.gt_sources)
        split = dataset.eval_split if dataset.eval_split in sources else next(iter(sources), "")
        if not split:
            return None, f"--dataset={data_config.dataset} has no test split with ground truth"
        requested = False
    if config.accuracy_data_dir:
        data_dir, splits_option = config.accuracy_data_dir, config.accuracy_splits_dir
    else:
        data_dir = data_config.data_dir
        splits_option = config.accuracy_splits_dir or data_config.splits_dir
    splits_dir = splits.splits_dir(data_dir, splits_option)
    return AccuracyPlan(split, data_dir, splits_dir, data_config.use_stereo, data_config.image_ext,
                        requested), ""


def run_export(config, accuracy_evaluator: Callable[..., Callable[[Predictor], dict[str, float]]]
               | None = None) -> dict[str, Any]:
    """``python -m md2tf.export`` as a function: loads ``config.checkpoint`` and exports it.

    The formats and ``--out`` are checked, and ``--out`` is held (`hold_out_dir`) until the export
    ends, before anything is loaded. Unless ``--noaccuracy``, every variant is scored on the test
    split of `accuracy_plan` (a missing ``gt_depths.npz`` is exported first); the Keras model is
    scored before any conversion, and when the dataset's own split cannot be scored (data or split
    files missing) the card records why and the export goes on.

    Args:
      config: an ``md2tf.config.ExportConfig``.
      accuracy_evaluator: ``(data_dir, split, splits_dir, stereo=, image_ext=, export_missing_gt=)
        -> (predictor -> metrics)``; ``md2tf.export`` passes
        ``md2tf.evaluation.runner.accuracy_evaluator`` (deploy itself never imports evaluation).
        None = no scoring (an error if ``--accuracy_split`` asks for it).

    Returns:
      The model card.
    """
    selected = resolve(config.formats)
    check_out_dir(config.out_dir, config.overwrite)
    if config.accuracy_split and accuracy_evaluator is None:
        raise ValueError("--accuracy_split needs an accuracy evaluator "
                         "(md2tf.evaluation.runner.accuracy_evaluator)")
    with hold_out_dir(config.out_dir):  # before loading: a second export fails at once
        return _load_and_export(config, selected, accuracy_evaluator)


def _load_and_export(config, selected, accuracy_evaluator) -> dict[str, Any]:
    """`run_export` once its checks passed and ``--out`` is held."""
    want_pose = any(f.needs_pose_net for f in selected)
    experiment, depth_net, pose_net = load_models(config.checkpoint, load_pose_net=want_pose)
    if config.height or config.width:  # fully convolutional: any multiple of 32 works
        data = dataclasses.replace(experiment.data, height=config.height or experiment.data.height,
                                   width=config.width or experiment.data.width)
        experiment = dataclasses.replace(experiment, data=data)
    predictor = predictor_from_models(experiment, depth_net, post_process=config.post_process,
                                      metric_scale=config.metric_scale or None,
                                      real_baseline_m=config.real_baseline_m,
                                      learned_intrinsics=load_learned_intrinsics(config.checkpoint))
    reps, desc = None, None
    if any(f.tflite and f.tflite.quantization == "int8" for f in selected):
        reps, desc = calibration_images(config.calibration, config.num_calibration_images,
                                        predictor.height, predictor.width, experiment.data,
                                        seed=config.calibration_seed)
    plan, reason = accuracy_plan(config, experiment.data)
    if plan is not None and accuracy_evaluator is None:
        plan, reason = None, "no accuracy evaluator given"
    evaluate_fn, accuracy = None, {"skipped": reason}
    if plan is not None:
        evaluate_fn, accuracy = _scored_evaluator(plan, accuracy_evaluator, predictor)
    parity = np.stack(reps[:4]) if reps else None  # real frames when calibration found some
    return _write_export(predictor, config.out_dir, selected, reps, desc, config.checkpoint,
                         experiment.to_dict(), evaluate_fn, parity, pose_net, config.overwrite,
                         accuracy)


def _scored_evaluator(plan: AccuracyPlan, accuracy_evaluator, predictor: KerasPredictor):
    """``(evaluate_fn, card entry)``: the evaluator, already run once on the Keras ``predictor``.

    Scoring the Keras model first finds missing images or GT before any conversion. A default
    plan that fails gives ``(None, {"skipped": reason})``; a requested one raises.
    """
    logger.info("scoring every variant on %s/%s (%s; --noaccuracy skips)", plan.splits_dir,
                plan.split, plan.describe()["scoring"])
    try:
        evaluate = accuracy_evaluator(plan.data_dir, plan.split, plan.splits_dir, stereo=plan.stereo,
                                      image_ext=plan.image_ext, export_missing_gt=True)
        keras_scores = evaluate(predictor)
    except (ValueError, OSError) as e:
        if plan.requested:
            raise
        reason = f"test split {plan.split!r} unreadable: {e}"
        logger.warning("accuracy skipped: %s", reason)
        return None, {**plan.describe(), "skipped": reason}
    return (lambda p: keras_scores if p is predictor else evaluate(p)), plan.describe()


def summary_lines(card: dict[str, Any]) -> list[str]:
    """Human-readable one line per exported format (size, parity, GPU compatibility)."""
    lines = []
    for name, v in card["variants"].items():
        if "file" not in v:
            continue
        size = v.get("size_bytes", 0) / 1e6
        par = _max_abs_diff(v["parity"])
        gpu = v.get("gpu_compatible", "")
        line = f"{name:15s} {v['file']:22s} {size:8.2f} MB  max|diff| {par:.2e}  gpu {gpu}"
        if not v["parity"].get("within_tolerance", True):
            line += f"  ABOVE TOLERANCE {v['parity']['tolerance']:.0e}"
        if "accuracy" in v:
            line += f"  abs_rel {v['accuracy']['abs_rel']:.4f}  a1 {v['accuracy']['a1']:.4f}"
        lines.append(line)
    accuracy = card.get("accuracy") or {}
    if accuracy.get("skipped"):
        lines.append(f"accuracy not scored: {accuracy['skipped']}")
    elif accuracy:
        lines.append(f"accuracy on {accuracy['splits_dir']}/{accuracy['split']} "
                     f"({accuracy['scoring']})")
    return lines
