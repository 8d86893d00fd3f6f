"""Rendering of evaluation results: the console table, markdown, JSON, and the failure report."""

from __future__ import annotations

import json
import os

import numpy as np

from md2tf.evaluation import metrics


class EvaluationFailed(RuntimeError):
    """Some model produced non-finite predictions (``--allow_nonfinite`` unset).

    Attributes:
      report: the full console report (table included), to print before the one-line error.
    """

    def __init__(self, message: str, report: str) -> None:
        super().__init__(message)
        self.report = report


def failed_models(results: dict[str, metrics.DepthScores]) -> dict[str, int]:
    """``{model name: number of images with non-finite predictions}`` for the models that failed."""
    return {name: s.num_failed for name, s in results.items() if s.num_failed}


def _number(value: float, width: int, digits: int = 3) -> str:
    return f"{value:{width}.{digits}f}" if np.isfinite(value) else f"{'-':>{width}}"


def format_table(results: dict[str, metrics.DepthScores]) -> str:
    """Console comparison table in the paper's column order, with scaling and NaN/inf counts.

    The median-scaling columns (``med``: median ratio, ``std``: its spread) appear only when some
    model was median-scaled; without scaling (``--eval_stereo``, ``--scaling=none``) they would
    only hold NaN. A model without a ratio in a table that has them shows ``-``. With
    ``--scaling=camera_height`` (where ``med`` is the GT ratio median scaling would have used) three
    more: ``h_scale`` (median camera-height scale), ``h_err`` (median ``|scale / GT ratio - 1|``) and
    ``noground`` (images with too little ground, scaled by ``h_scale``).
    """
    width = max([len(n) for n in results] + [5])
    scaled = any(np.isfinite(s.ratio_median) for s in results.values())
    by_height = any(np.isfinite(s.height_scale_median) for s in results.values())
    header = f"{'model':<{width}} " + " ".join(f"{h:>9}" for h in metrics.METRIC_HEADERS)
    header += f" {'med':>7} {'std':>6}" if scaled else ""
    header += f" {'h_scale':>7} {'h_err':>6} {'noground':>8}" if by_height else ""
    header += f" {'n':>5} {'nonfin':>6}"
    lines = [header, "-" * len(header)]
    for name, s in results.items():
        row = f"{name:<{width}} " + " ".join(f"{s.metrics[m]:9.3f}" for m in metrics.METRIC_NAMES)
        if scaled:
            row += f" {_number(s.ratio_median, 7)} {_number(s.ratio_std, 6)}"
        if by_height:
            row += (f" {_number(s.height_scale_median, 7)} {_number(s.height_scale_error, 6)}"
                    f" {len(s.no_ground_images):8d}")
        row += f" {s.num_scored:5d} {len(s.nonfinite_images):6d}"
        lines.append(row)
    for name, s in results.items():
        if s.nonfinite_images:
            lines.append(f"FAILED {name}: {len(s.nonfinite_images)} of {s.num_images} image(s) have "
                         f"{s.nonfinite_pixels} NaN/inf disparity values; the means cover the other "
                         f"{s.num_scored} (indices {s.nonfinite_images[:10]})")
        if s.no_ground_images:
            lines.append(f"NOTE {name}: {len(s.no_ground_images)} of {s.num_scored} image(s) show too little "
                         "ground for a camera-height scale; they take the median scale "
                         f"{s.height_scale_median:.3f} of the others")
        if s.empty_images:
            lines.append(f"WARNING {name}: {len(s.empty_images)} image(s) without valid ground truth were skipped")
    return "\n".join(lines)


def markdown_table(results: dict[str, metrics.DepthScores]) -> str:
    """A markdown table (header + one row per model)."""
    head = "| model | " + " | ".join(metrics.METRIC_HEADERS) + " |"
    sep = "|---" * (len(metrics.METRIC_HEADERS) + 1) + "|"
    rows = ["| " + name + " | " + " | ".join(f"{s.metrics[m]:.3f}" for m in metrics.METRIC_NAMES) + " |"
            for name, s in results.items()]
    return "\n".join([head, sep, *rows])


def results_to_json(results: dict[str, metrics.DepthScores], options: metrics.ScoringOptions,
                    extra: dict | None = None) -> str:
    """JSON with the options and, per model, metrics, counts and scaling statistics."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    payload = {
        "options": {k: clean(v) for k, v in options.__dict__.items()},
        "metric_order": list(metrics.METRIC_NAMES),
        "models": {name: {k: clean(v) for k, v in s.to_dict().items()} for name, s in results.items()},
    }
    payload["failed_models"] = failed_models(results)
    payload.update(extra or {})
    return json.dumps(payload, indent=2)


def write_outputs(config, table: str, markdown: str, payload: str) -> None:
    if config.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(config.output_json)), exist_ok=True)
        with open(config.output_json, "w") as f:
            f.write(payload)
    if config.output_markdown:
        os.makedirs(os.path.dirname(os.path.abspath(config.output_markdown)), exist_ok=True)
        with open(config.output_markdown, "w") as f:
            f.write(markdown + "\n")
