"""``md2tf.evaluate``'s tasks: Eigen-protocol depth evaluation of several models in one table,
the benchmark submission, odometry ATE, and the accuracy hook of ``md2tf.export``.

Roles live in their own modules: `sources` (where disparities come from), `report` (tables, JSON),
`benchmark` (submission PNGs), `odometry` (ATE); this module ties them to an ``EvalConfig``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from md2tf.config import EvalConfig
from md2tf.data import datasets, splits
from md2tf.evaluation import gt_depth, metrics
from md2tf.evaluation.kitti_benchmark import BENCHMARK_SPLIT, run_benchmark_export
from md2tf.evaluation.odometry_task import run_odometry_evaluation
from md2tf.evaluation.report import (
    EvaluationFailed,
    failed_models,
    format_table,
    markdown_table,
    results_to_json,
    write_outputs,
)
from md2tf.evaluation.sources import (
    ArraySource,
    DisparitySource,
    kitti_test_images,
    kitti_test_intrinsics,
    load_predictors,
    open_source,
    predictor_source,
)
from md2tf.progress import Progress

__all__ = ["EvaluationFailed", "accuracy_evaluator", "evaluate_sources", "run_depth_evaluation",
           "run_evaluation", "scoring_options"]


def scoring_options(config) -> metrics.ScoringOptions:
    """`metrics.ScoringOptions` of an ``EvalConfig`` (``--eval_stereo`` = no scaling, x 5.4)."""
    if config.eval_stereo:
        return metrics.ScoringOptions.stereo(config.eval_split)
    return metrics.ScoringOptions(split=config.eval_split, scaling=config.scaling,
                                  pred_depth_scale_factor=config.pred_depth_scale_factor,
                                  camera_height=config.camera_height)


def scaling_description(config, options: metrics.ScoringOptions) -> str:
    """How predictions were scaled, in words, for the report's first line."""
    if config.eval_stereo:
        return "stereo x5.4, no median scaling"
    if options.scaling == "camera_height":
        return (f"camera-height scaling ({options.camera_height:g} m above a flat ground fitted to each "
                "prediction; images without enough ground take the median scale of the others)")
    return f"{options.scaling} scaling"


def evaluate_sources(gt_depths: Sequence[np.ndarray], sources: Sequence[DisparitySource],
                     options: metrics.ScoringOptions, show_progress: bool = True,
                     intrinsics: Sequence[np.ndarray] | None = None) -> dict[str, metrics.DepthScores]:
    """Scores every source against the same GT (checked for count and layout first).

    ``intrinsics``: the test images' normalised K, for ``scaling="camera_height"``.

    Raises:
      ValueError: if a source's image count differs from the GT count, precomputed maps have another
        aspect ratio than the GT (`metrics.check_aspect_ratio`), or two sources share a name.
    """
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names} (use --names)")
    for source in sources:
        if len(source) != len(gt_depths):
            raise ValueError(
                f"{source.name}: {len(source)} predictions but {len(gt_depths)} ground-truth maps in the split"
            )
        if isinstance(source, ArraySource):  # a file's layout, unlike a model's output, is unknown
            try:
                for i, gt in enumerate(gt_depths):
                    metrics.check_aspect_ratio(i, source.disparities.shape[1:3], np.shape(gt))
            except ValueError as error:
                raise ValueError(f"{source.path or source.name}: {error}") from None
    results = {}
    for source in sources:
        with Progress(len(source), source.name, unit="image", enabled=show_progress) as bar:
            try:
                results[source.name] = metrics.score_predictions(gt_depths, iter(source), options,
                                                                 progress=bar, intrinsics=intrinsics)
            except ValueError as error:
                raise ValueError(f"{source.name}: {error}") from error
    return results


def run_depth_evaluation(config) -> str:
    """Depth evaluation of every ``config.models`` entry; returns the console report."""

    # Models first: a missing checkpoint or a damaged model is the problem to report, not the GT
    # or test images it would be scored on.
    predictors = load_predictors(config.models, config.post_process)
    splits_dir = splits.splits_dir(config.data_dir, config.splits_dir)
    gt_path = config.gt_path or gt_depth.gt_depths_path(splits_dir, config.eval_split)
    if not config.gt_path and not os.path.isfile(gt_path):
        _export_missing_gt(config, splits_dir, gt_path)
    gts = gt_depth.load_gt_depths(gt_path, config.eval_split, splits_dir)
    options = scoring_options(config)
    needs_images = any(not m.endswith(".npy") for m in config.models)
    images, count, intrinsics = None, len(gts), None
    split_file = os.path.join(splits_dir, config.eval_split, "test_files.txt")
    if needs_images:
        if not config.data_dir:
            raise ValueError("--data_dir is required to run models on the test images")
        images, count = kitti_test_images(config.data_dir, split_file, config.image_ext)
    if options.scaling == "camera_height":
        if not config.data_dir:
            raise ValueError("--scaling=camera_height needs --data_dir (the test images' calibration)")
        intrinsics = kitti_test_intrinsics(config.data_dir, split_file, config.image_ext)
    reorder = None
    if config.eval_eigen_to_benchmark:
        ids_path = os.path.join(splits_dir, "benchmark", "eigen_to_benchmark_ids.npy")
        if not os.path.isfile(ids_path):
            raise ValueError(f"--eval_eigen_to_benchmark needs {ids_path}")
        reorder = np.load(ids_path, allow_pickle=False)
    names = config.names or tuple("" for _ in config.models)
    sources = [open_source(m, images, count, n, config.batch_size, config.post_process, reorder,
                           predictors.get(m)) for m, n in zip(config.models, names)]
    results = evaluate_sources(gts, sources, options, config.progress, intrinsics)
    table = format_table(results)
    markdown = markdown_table(results)
    write_outputs(config, table, markdown,
                   results_to_json(results, options, {"task": "depth", "gt_path": gt_path,
                                                      "post_process": config.post_process}))
    report = (f"{config.eval_split}: {len(gts)} images, {scaling_description(config, options)}\n{table}"
              f"\n\n{markdown}")
    failed = failed_models(results)
    if failed and not config.allow_nonfinite:
        counts = ", ".join(f"{name}: {n} of {len(gts)}" for name, n in failed.items())
        raise EvaluationFailed(f"non-finite predictions ({counts} images); the metrics above exclude "
                               "them. Pass --allow_nonfinite to accept this", report)
    return report


def _export_missing_gt(config, splits_dir: str, gt_path: str) -> None:
    """Writes the split's missing ``gt_depths.npz`` (the GT source its dataset declares), with a note."""
    split_file = os.path.join(splits_dir, config.eval_split, "test_files.txt")
    source = datasets.gt_source_for_split(config.eval_split)
    if source and config.data_dir and os.path.isfile(split_file):
        command = gt_depth.export_command(config.eval_split, config.data_dir, config.splits_dir, source)
        print(f"note: {gt_path} is missing: writing it from the {source} ground truth (once; the same "
              f"as `{command}`)", file=sys.stderr, flush=True)
        count = len(splits.read_split(split_file, kind="raw"))
        with Progress(count, f"GT {config.eval_split}", unit="map", enabled=config.progress) as bar:
            gt_depth.export_missing_gt_depths(config.eval_split, config.data_dir, splits_dir, gt_path,
                                              progress=bar)
    # Otherwise load_gt_depths names the missing file and the command that creates it.


def run_evaluation(config) -> str:
    """Runs the task of an ``md2tf.config.EvalConfig``; returns the console report."""
    if config.task == "odometry":
        return run_odometry_evaluation(config)
    if config.eval_split == BENCHMARK_SPLIT:
        return run_benchmark_export(config)
    return run_depth_evaluation(config)


def accuracy_evaluator(data_dir: str, split: str, splits_dir: str = "", stereo: bool = False,
                       image_ext: str = ".jpg", batch_size: int = 16,
                       export_missing_gt: bool = False) -> Callable[..., dict[str, float]]:
    """``predictor -> {abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3}`` on a test split (md2tf.evaluate).

    Args:
      data_dir: dataset root (KITTI raw layout; the synthetic world uses the same layout).
      split: split folder with ``test_files.txt`` and ``gt_depths.npz`` (``eigen``, ``synthetic``, ...).
      splits_dir: directory of split folders; empty = ``<data_dir>/splits``.
      stereo: score as a stereo-trained model (no median scaling, depth x 5.4), else median scaling.
      image_ext: test image extension.
      batch_size: images per forward pass (TFLite runs them one by one).
      export_missing_gt: write a missing ``gt_depths.npz`` first (the GT source the dataset declares
        for ``split``), with a note.

    Raises:
      ValueError: missing split file or GT (naming the command that creates it).
    """

    config = EvalConfig(models=("export",), eval_split=split, data_dir=data_dir, splits_dir=splits_dir,
                        eval_stereo=stereo, image_ext=image_ext, batch_size=batch_size,
                        progress=False)
    resolved = splits.splits_dir(config.data_dir, config.splits_dir)
    gt_path = gt_depth.gt_depths_path(resolved, split)
    if export_missing_gt and not os.path.isfile(gt_path):
        _export_missing_gt(config, resolved, gt_path)
    gts = gt_depth.load_gt_depths(gt_path, split, resolved)
    options = scoring_options(config)
    images, count = kitti_test_images(data_dir, os.path.join(resolved, split, "test_files.txt"),
                                      image_ext)

    def evaluate(predictor) -> dict[str, float]:
        source = predictor_source(predictor, images, count, "export", batch_size)
        scores = evaluate_sources(gts, [source], options, show_progress=False)["export"]
        return {k: float(v) for k, v in scores.metrics.items()}

    return evaluate
