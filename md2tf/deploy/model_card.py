"""``model_card.json``: what an exported depth model is, how to call it and how faithful each variant is."""

from __future__ import annotations

import json
import os
import platform
from typing import Any

import keras
import tensorflow as tf

from md2tf.deploy.inference import ModelInfo
from md2tf.geometry.depth import disp_to_depth_coefficients
from md2tf.models.encoders import input_normalisation


def io_contract(info: ModelInfo) -> dict[str, Any]:
    """The input/output contract shared by the SavedModel ``serving_default`` signature and TFLite."""
    h, w = info.height, info.width
    a, b = disp_to_depth_coefficients(info.min_depth, info.max_depth)
    mean, std = input_normalisation(info.encoder)
    units = ("metres (depth x metric_scale; metric_scale = real stereo baseline / training baseline)"
             if info.depth_units == "metres" else
             "relative: true depth up to an unknown per-scene scale (median-scale against a reference)")
    return {
        "input": {
            "name": "images", "dtype": "uint8", "shape": [1, h, w, 3], "layout": "NHWC",
            "color": "RGB", "range": [0, 255],
            "normalisation": f"inside the model: x / 255, then the encoder's (x - {mean:g}) / {std:g}",
            "resize": f"resize any frame to {w}x{h} (W x H) before feeding; the model does not crop",
        },
        "outputs": {
            "disparity": {"dtype": "float32", "shape": [1, h, w, 1], "range": [0, 1],
                          "meaning": "sigmoid disparity; larger = nearer"},
            "depth": {"dtype": "float32", "shape": [1, h, w, 1],
                      "range": [info.min_depth * info.metric_scale, info.max_depth * info.metric_scale],
                      "meaning": "metric_scale / (a * disparity + b)",
                      "a": a, "b": b, "units": units},
        },
        "min_depth": info.min_depth,
        "max_depth": info.max_depth,
        "metric_scale": info.metric_scale,
        "depth_units": info.depth_units,
        "flip_post_processing_in_graph": info.post_process,
    }


def build_model_card(info: ModelInfo, source: str, variants: dict[str, dict[str, Any]],
                     calibration: str | None = None,
                     training_config: dict[str, Any] | None = None,
                     accuracy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Assembles the model card.

    Args:
      info: the exported model's `ModelInfo`.
      source: the checkpoint / run directory it was exported from.
      variants: per export format (``saved_model``, ``tflite_fp32``, ...): ``file``, ``size_bytes``,
        ``ops``, ``gpu_compatible``, ``parity`` and optionally ``accuracy``.
      calibration: description of the int8 calibration data, if any.
      training_config: ``ExperimentConfig.to_dict()`` of the run, if known.
      accuracy: where the variants' ``accuracy`` was measured (split, scoring protocol), or
        ``{"skipped": reason}``; None when not asked.
    """
    return {
        "name": "md2tf Monodepth2 depth model",
        "format_version": 1,
        "source": source,
        "model": info.to_dict(),
        "contract": io_contract(info),
        "variants": variants,
        "accuracy": accuracy,
        "int8_calibration": calibration,
        "training_config": training_config,
        "exported_with": {"tensorflow": tf.__version__, "keras": keras.__version__,
                          "python": platform.python_version()},
        "licence_note": ("weights trained by the user; md2tf ships no Niantic weights. Models converted "
                         "from official Monodepth2 checkpoints inherit their non-commercial licence."),
    }


def write_model_card(card: dict[str, Any], out_dir: str) -> str:
    """Writes ``card`` to ``<out_dir>/model_card.json`` and returns the path."""
    path = os.path.join(out_dir, "model_card.json")
    with open(path, "w") as f:
        json.dump(card, f, indent=2, sort_keys=False, default=str)
    return path
