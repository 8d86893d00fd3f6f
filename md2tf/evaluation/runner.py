"""Evaluate depth predictions from any model source; comparison tables, JSON and markdown.

A `DisparitySource` yields one ``scaled_disp`` map ``[h, w]`` per test image, at network resolution,
in split order (``disp_to_depth``'s first output, not the raw sigmoid, as the reference protocol scores). Implementations:

* `ArraySource` / `npy_source`: precomputed disparities (e.g. the published official ``.npy``, with
  the optional eigen -> benchmark reordering).
* `ModelSource`: any callable ``uint8 [B, H, W, 3] -> scaled_disp [B, H, W, 1]`` over the test images,
  with optional flip post-processing; `predictor_source` wraps ``md2tf.deploy.inference.load_predictor``
  objects (checkpoints, SavedModels, every TFLite variant) and `depth_net_source` an in-memory Keras
  ``DepthNet``.

`open_source` picks the right one from a path. `evaluate_sources` scores several sources against the
same GT and `format_table` / `markdown_table` / `results_to_json` render the comparison.

The ``benchmark`` split (KITTI depth-prediction test images) has no public GT: `write_benchmark_pngs`
writes the submission PNGs instead (facts 1.5: ``uint16(clip(5.4 / resize(disp, 1216 x 352), 0, 80)
* 256)``) and no scores are computed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from md2tf.evaluation import metrics, postprocess
from md2tf.progress import Progress

ImageProvider = Callable[[], Iterable[np.ndarray]]


class DisparitySource(Protocol):
    """Per-image disparities of one model, in split order."""

    name: str

    def __len__(self) -> int:
        """Number of images (must equal the number of GT maps)."""
        ...

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yields ``[h, w]`` float32 ``scaled_disp`` maps at network resolution."""
        ...


class ArraySource:
    """Precomputed disparities ``[N, h, w]`` (or ``[N, h, w, 1]``)."""

    def __init__(self, name: str, disparities: np.ndarray):
        disparities = np.asarray(disparities)
        if disparities.ndim == 4 and disparities.shape[-1] == 1:
            disparities = disparities[..., 0]
        if disparities.ndim != 3:
            raise ValueError(
                f"{name}: precomputed disparities must be [N, h, w] or [N, h, w, 1], got shape {disparities.shape}"
            )
        self.name = name
        self.disparities = disparities

    def __len__(self) -> int:
        return len(self.disparities)

    def __iter__(self) -> Iterator[np.ndarray]:
        for d in self.disparities:
            yield np.asarray(d, np.float32)


def npy_source(path: str, name: str = "", reorder_ids: np.ndarray | None = None) -> ArraySource:
    """Loads a ``.npy`` of ``scaled_disp`` maps ``[N, h, w]``.

    Args:
      path: the ``.npy`` file.
      name: display name (default: the file name).
      reorder_ids: optional ``[M]`` int indices selecting/reordering the images (e.g.
        ``splits/benchmark/eigen_to_benchmark_ids.npy`` to score eigen predictions on eigen_benchmark).

    Raises:
      ValueError: if the file is missing, has the wrong rank or an index is out of range.
    """
    if not os.path.isfile(path):
        raise ValueError(f"--models: disparity file not found: {path}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:  # object arrays / pickles: never unpickled
        raise ValueError(f"--models: {path} is not a plain numeric .npy array ({error})") from None
    if reorder_ids is not None:
        reorder_ids = np.asarray(reorder_ids).astype(np.int64).ravel()
        if reorder_ids.size and (reorder_ids.min() < 0 or reorder_ids.max() >= len(array)):
            raise ValueError(f"{path}: reorder ids reach {reorder_ids.max()} but the file has {len(array)} maps")
        array = array[reorder_ids]
    return ArraySource(name or os.path.basename(path), array)


class ModelSource:
    """Runs a prediction function over the test images in batches.

    Args:
      name: display name.
      predict_scaled: ``uint8 [B, H, W, 3] -> scaled_disp [B, H, W, 1]`` (or ``[B, H, W]``).
      height, width: network input size; images are resized to it with Lanczos (as the reference).
      images: callable returning a fresh iterable of uint8 ``[H_i, W_i, 3]`` RGB test images.
      count: number of test images.
      batch_size: images per call (the reference uses 16).
      post_process: flip post-processing (the function is called on ``2B`` images).
    """

    def __init__(self, name: str, predict_scaled, height: int, width: int, images: ImageProvider,
                 count: int, batch_size: int = 16, post_process: bool = False):
        if batch_size < 1:
            raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
        self.name, self.predict_scaled = name, predict_scaled
        self.height, self.width = height, width
        self.images, self.count = images, count
        self.batch_size, self.post_process = batch_size, post_process

    def __len__(self) -> int:
        return self.count

    def _run(self, batch: list[np.ndarray]) -> np.ndarray:
        x = np.stack(batch)
        if self.post_process:
            out = postprocess.post_process_batch(lambda b: _as_nhw1(self.predict_scaled(b)), x)
        else:
            out = _as_nhw1(self.predict_scaled(x))
        if out.shape[:3] != (len(batch), self.height, self.width):
            raise ValueError(
                f"{self.name}: prediction has shape {out.shape}, expected [{len(batch)}, {self.height}, "
                f"{self.width}, 1]"
            )
        return out[..., 0]

    def __iter__(self) -> Iterator[np.ndarray]:
        from md2tf.deploy.images import resize_rgb  # noqa: PLC0415

        batch = []
        for image in self.images():
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise ValueError(f"{self.name}: test images must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
            batch.append(resize_rgb(image, self.height, self.width))
            if len(batch) == self.batch_size:
                yield from self._run(batch)
                batch = []
        if batch:
            yield from self._run(batch)


def _as_nhw1(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x[..., None] if x.ndim == 3 else x


def predictor_source(predictor, images: ImageProvider, count: int, name: str, batch_size: int = 16,
                     post_process: bool = False) -> ModelSource:
    """Wraps a ``load_predictor`` object (``.height``, ``.width``, ``.info``, ``.predict``).

    Flip post-processing is applied here only if the export does not already bake it in.
    """
    baked = bool(getattr(getattr(predictor, "info", None), "post_process", False))

    def predict_scaled(x: np.ndarray) -> np.ndarray:
        return predictor.predict(x)["scaled_disparity"]

    return ModelSource(name, predict_scaled, predictor.height, predictor.width, images, count, batch_size,
                       post_process and not baked)


def depth_net_source(depth_net, height: int, width: int, images: ImageProvider, count: int, name: str,
                     batch_size: int = 16, post_process: bool = False) -> ModelSource:
    """Wraps an in-memory depth network (``images [B,H,W,3] in [0,1] -> (sigmoid disp scale 0, ...)``).

    The scaled disparity comes from the network's own ``disp_to_depth`` (``md2tf.models.DepthNet``),
    so it uses the depth range the network was trained with.
    """
    import tensorflow as tf  # noqa: PLC0415

    @tf.function(reduce_retracing=True)
    def run(x):
        disp = depth_net(tf.cast(x, tf.float32) / 255.0, training=False)[0]
        return depth_net.disp_to_depth(disp)[0]

    return ModelSource(name, lambda x: run(x).numpy(), height, width, images, count, batch_size, post_process)


def kitti_test_images(data_dir: str, split_file: str, image_ext: str = ".jpg") -> tuple[ImageProvider, int]:
    """The test images of a split file (KITTI raw layout) and their count.

    Returns:
      ``(provider, count)``: ``provider()`` yields uint8 ``[H, W, 3]`` RGB images in split order.
    """
    from md2tf.data.kitti import load_test_images  # noqa: PLC0415
    from md2tf.data.splits import read_split  # noqa: PLC0415

    count = len(read_split(split_file))
    return (lambda: (image for _, image in load_test_images(data_dir, split_file, image_ext))), count


def open_source(path: str, images: ImageProvider | None, count: int, name: str = "", batch_size: int = 16,
                post_process: bool = False, reorder_ids: np.ndarray | None = None) -> DisparitySource:
    """A `DisparitySource` for a ``.npy``, ``.tflite``, SavedModel, run directory or checkpoint prefix."""
    name = name or os.path.basename(os.path.normpath(path))
    if path.endswith(".npy"):
        return npy_source(path, name, reorder_ids)
    if images is None:
        raise ValueError(f"--models: {path} is a model, which needs --data_dir with the test images")
    from md2tf.deploy.inference import load_predictor  # noqa: PLC0415

    predictor = load_predictor(path, post_process=post_process)
    return predictor_source(predictor, images, count, name, batch_size, post_process)


def evaluate_sources(gt_depths: Sequence[np.ndarray], sources: Sequence[DisparitySource],
                     options: metrics.ScoringOptions, show_progress: bool = True) -> dict[str, metrics.DepthScores]:
    """Scores every source against the same GT (checked for count first).

    Raises:
      ValueError: if a source's image count differs from the GT count, or two sources share a name.
    """
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names} (use --names)")
    for source in sources:
        if len(source) != len(gt_depths):
            raise ValueError(
                f"{source.name}: {len(source)} predictions but {len(gt_depths)} ground-truth maps in the split"
            )
    results = {}
    for source in sources:
        with Progress(len(source), source.name, unit="image", enabled=show_progress) as bar:
            try:
                results[source.name] = metrics.score_predictions(gt_depths, iter(source), options,
                                                                 progress=bar)
            except ValueError as error:
                raise ValueError(f"{source.name}: {error}") from error
    return results


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


def format_table(results: dict[str, metrics.DepthScores]) -> str:
    """Console comparison table in the paper's column order, with scaling and NaN/inf counts."""
    width = max([len(n) for n in results] + [5])
    header = f"{'model':<{width}} " + " ".join(f"{h:>9}" for h in metrics.METRIC_HEADERS)
    header += f" {'med':>7} {'std':>6} {'n':>5} {'nonfin':>6}"
    lines = [header, "-" * len(header)]
    for name, s in results.items():
        row = f"{name:<{width}} " + " ".join(f"{s.metrics[m]:9.3f}" for m in metrics.METRIC_NAMES)
        row += f" {s.ratio_median:7.3f} {s.ratio_std:6.3f} {s.num_scored:5d} {len(s.nonfinite_images):6d}"
        lines.append(row)
    for name, s in results.items():
        if s.nonfinite_images:
            lines.append(f"FAILED {name}: {len(s.nonfinite_images)} of {s.num_images} image(s) have "
                         f"{s.nonfinite_pixels} NaN/inf disparity values; the means cover the other "
                         f"{s.num_scored} (indices {s.nonfinite_images[:10]})")
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


# --- entry point logic (called by md2tf.evaluate) -------------------------------------------------


def scoring_options(config) -> metrics.ScoringOptions:
    """`metrics.ScoringOptions` of an ``EvalConfig`` (``--eval_stereo`` = no scaling, x 5.4)."""
    if config.eval_stereo:
        return metrics.ScoringOptions.stereo(config.eval_split)
    return metrics.ScoringOptions(split=config.eval_split, scaling=config.scaling,
                                  pred_depth_scale_factor=config.pred_depth_scale_factor)


def _write_outputs(config, table: str, markdown: str, payload: str) -> None:
    if config.output_json:
        os.makedirs(os.path.dirname(os.path.abspath(config.output_json)), exist_ok=True)
        with open(config.output_json, "w") as f:
            f.write(payload)
    if config.output_markdown:
        os.makedirs(os.path.dirname(os.path.abspath(config.output_markdown)), exist_ok=True)
        with open(config.output_markdown, "w") as f:
            f.write(markdown + "\n")


def run_depth_evaluation(config) -> str:
    """Depth evaluation of every ``config.models`` entry; returns the console report."""
    from md2tf.evaluation import gt_depth  # noqa: PLC0415

    splits_dir = config.resolved_splits_dir
    gt_path = config.gt_path or gt_depth.gt_depths_path(splits_dir, config.eval_split)
    gts = gt_depth.load_gt_depths(gt_path, config.eval_split, splits_dir)
    options = scoring_options(config)
    needs_images = any(not m.endswith(".npy") for m in config.models)
    images, count = None, len(gts)
    if needs_images:
        if not config.data_dir:
            raise ValueError("--data_dir is required to run models on the test images")
        split_file = os.path.join(splits_dir, config.eval_split, "test_files.txt")
        images, count = kitti_test_images(config.data_dir, split_file, config.image_ext)
    reorder = None
    if config.eval_eigen_to_benchmark:
        ids_path = os.path.join(splits_dir, "benchmark", "eigen_to_benchmark_ids.npy")
        if not os.path.isfile(ids_path):
            raise ValueError(f"--eval_eigen_to_benchmark needs {ids_path}")
        reorder = np.load(ids_path, allow_pickle=False)
    names = config.names or tuple("" for _ in config.models)
    sources = [open_source(m, images, count, n, config.batch_size, config.post_process, reorder)
               for m, n in zip(config.models, names)]
    results = evaluate_sources(gts, sources, options, config.progress)
    table = format_table(results)
    markdown = markdown_table(results)
    _write_outputs(config, table, markdown,
                   results_to_json(results, options, {"task": "depth", "gt_path": gt_path,
                                                      "post_process": config.post_process}))
    scaling = "stereo x5.4, no median scaling" if config.eval_stereo else f"{options.scaling} scaling"
    report = f"{config.eval_split}: {len(gts)} images, {scaling}\n{table}\n\n{markdown}"
    failed = failed_models(results)
    if failed and not config.allow_nonfinite:
        counts = ", ".join(f"{name}: {n} of {len(gts)}" for name, n in failed.items())
        raise EvaluationFailed(f"non-finite predictions ({counts} images); the metrics above exclude "
                               "them. Pass --allow_nonfinite to accept this", report)
    return report


# --- KITTI depth benchmark submission (eval_split "benchmark") ------------------------------------

BENCHMARK_SPLIT = "benchmark"
#: Size of the KITTI depth-prediction benchmark images (rows, columns).
BENCHMARK_HEIGHT, BENCHMARK_WIDTH = 352, 1216
#: The reference always converts with the stereo scale (metres for stereo-trained models).
BENCHMARK_DEPTH_SCALE = 5.4
BENCHMARK_MAX_DEPTH = 80.0
#: PNG value = depth in metres x 256 (KITTI depth devkit convention).
BENCHMARK_PNG_SCALE = 256.0

_BENCHMARK_LAYOUT = (
    "the benchmark split's test_files.txt lists '<folder> <index>' lines (e.g. 'image 0') that point to "
    "<data_dir>/<folder>/<index:010d><image_ext>: give --data_dir=<KITTI depth_selection>/"
    "test_depth_prediction_anonymous and --image_ext=.png (the benchmark ships PNGs), or evaluate a "
    ".npy of precomputed disparities"
)


def benchmark_depth_png(disp: np.ndarray) -> tuple[np.ndarray, int]:
    """One ``scaled_disp`` map -> the KITTI benchmark's 16-bit depth PNG values.

    ``uint16(clip(5.4 / resize(disp, 352 x 1216), 0, 80) * 256)`` with `metrics.resize_disparity`
    (bilinear, half-pixel centres, as ``cv2.resize``). Zero disparity gives 80 m; NaN gives 0
    (invalid in the devkit) and is counted.

    Args:
      disp: ``[h, w]`` or ``[h, w, 1]`` scaled disparity at network resolution.

    Returns:
      ``(png, num_nonfinite)``: uint16 ``[352, 1216]`` (depth in metres x 256) and the number of NaN
      depth pixels set to 0.
    """
    resized = metrics.resize_disparity(disp, BENCHMARK_HEIGHT, BENCHMARK_WIDTH)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = BENCHMARK_DEPTH_SCALE / resized.astype(np.float32)
    depth = np.clip(depth, 0.0, BENCHMARK_MAX_DEPTH)
    nan = np.isnan(depth)
    depth[nan] = 0.0
    return (depth * BENCHMARK_PNG_SCALE).astype(np.uint16), int(nan.sum())


def write_benchmark_pngs(source: DisparitySource, out_dir: str, file_names: Sequence[str] | None = None,
                         show_progress: bool = True) -> tuple[list[str], int]:
    """Writes one benchmark PNG per prediction of ``source`` (16-bit grayscale, PIL).

    Args:
      source: the predictions, in split order.
      out_dir: created if needed.
      file_names: one name per prediction (default ``{i:010d}.png``, as the reference).

    Returns:
      ``(paths, nonfinite_pixels)``.

    Raises:
      ValueError: if ``file_names`` and the source disagree in length.
    """
    from PIL import Image  # noqa: PLC0415

    count = len(source)
    names = list(file_names) if file_names is not None else [f"{i:010d}.png" for i in range(count)]
    if len(names) != count:
        raise ValueError(f"{source.name}: {count} predictions but {len(names)} test images in the split")
    os.makedirs(out_dir, exist_ok=True)
    bar = Progress(count, source.name, unit="image", enabled=show_progress)
    paths, nonfinite, written = [], 0, 0
    for i, disp in enumerate(source):
        if i >= count:
            raise ValueError(f"{source.name}: more predictions than the {count} test images")
        png, bad = benchmark_depth_png(disp)
        nonfinite += bad
        path = os.path.join(out_dir, names[i])
        Image.fromarray(png).save(path)
        paths.append(path)
        written += 1
        bar(i)
    bar.close()
    if written != count:
        raise ValueError(f"{source.name}: {written} predictions but {count} test images in the split")
    return paths, nonfinite


def benchmark_file_names(entries) -> list[str]:
    """PNG names for split entries: the image's own ``{index:010d}.png`` for ``'<folder> <index>'``
    lines (the benchmark's file names), else ``{i:010d}.png`` in split order (the reference's)."""
    if entries and all(e.kind == "benchmark" for e in entries):
        names = [f"{e.frame_index:010d}.png" for e in entries]
        if len(set(names)) == len(names):
            return names
    return [f"{i:010d}.png" for i in range(len(entries))]


def run_benchmark_export(config) -> str:
    """``--eval_split benchmark``: writes ``<output_dir>/<model name>/*.png`` per model; no scores.

    Raises:
      ValueError: without ``--output_dir``, without the split file, or when a model needs test images
        that are missing (naming the expected benchmark layout).
    """
    from md2tf.data.kitti import image_path  # noqa: PLC0415
    from md2tf.data.splits import read_split  # noqa: PLC0415

    if not config.output_dir:
        raise ValueError("--eval_split=benchmark writes KITTI submission PNGs: give --output_dir")
    split_file = os.path.join(config.resolved_splits_dir, BENCHMARK_SPLIT, "test_files.txt")
    if not os.path.isfile(split_file):
        raise ValueError(f"--eval_split=benchmark needs {split_file} (the official splits/benchmark folder; "
                         "set --splits_dir)")
    entries = read_split(split_file)
    if not entries:
        raise ValueError(f"{split_file}: no test images")
    images, count = None, len(entries)
    if any(not m.endswith(".npy") for m in config.models):
        if not config.data_dir:
            raise ValueError(f"--data_dir is required to run models on the benchmark images: {_BENCHMARK_LAYOUT}")
        paths = [image_path(config.data_dir, e, ext=config.image_ext) for e in entries]
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"{split_file}: {len(missing)} of {len(paths)} test images missing, e.g. "
                             f"{missing[0]}; {_BENCHMARK_LAYOUT}")
        images, count = kitti_test_images(config.data_dir, split_file, config.image_ext)
    names = config.names or tuple("" for _ in config.models)
    sources = [open_source(m, images, count, n, config.batch_size, config.post_process)
               for m, n in zip(config.models, names)]
    if len({s.name for s in sources}) != len(sources):
        raise ValueError(f"model names must be unique, got {[s.name for s in sources]} (use --names)")
    file_names = benchmark_file_names(entries)
    lines = [f"benchmark: {count} images -> 16-bit PNGs (depth = 5.4 / disp, clipped to 80 m, x 256), "
             "no scores"]
    for source in sources:
        out_dir = os.path.join(config.output_dir, source.name)
        paths, nonfinite = write_benchmark_pngs(source, out_dir, file_names, config.progress)
        lines.append(f"{source.name}: {len(paths)} PNGs in {out_dir}")
        if nonfinite:
            lines.append(f"WARNING {source.name}: {nonfinite} NaN depth pixels written as 0 (invalid)")
    return "\n".join(lines)


def _odometry_files(config) -> tuple[str, str]:
    splits_dir = config.resolved_splits_dir
    split_file, poses_file = config.split_file, config.poses_file
    if config.eval_split.startswith("odom_") and config.eval_split[5:].isdigit():
        seq = int(config.eval_split[5:])
        split_file = split_file or os.path.join(splits_dir, "odom", f"test_files_{seq:02d}.txt")
        poses_file = poses_file or os.path.join(config.data_dir, "poses", f"{seq:02d}.txt")
    if not split_file or not poses_file:
        raise ValueError(f"--eval_split {config.eval_split!r} is not odom_NN: give --split_file and --poses_file")
    return split_file, poses_file


def odometry_frames(data_dir: str, split_file: str, height: int, width: int, image_ext: str = ".jpg"):
    """Frame indices and a generator of float ``[H, W, 3]`` images: every split line, then the frame
    after the last line (each line is the first frame of a pair, as the reference's ``[0, 1]`` pairs)."""
    from md2tf.data.kitti import image_path  # noqa: PLC0415
    from md2tf.data.splits import read_split  # noqa: PLC0415
    from md2tf.deploy.images import load_image_rgb, resize_rgb  # noqa: PLC0415

    entries = read_split(split_file)
    if not entries:
        raise ValueError(f"{split_file}: no frames")
    paths = [image_path(data_dir, e, ext=image_ext) for e in entries]
    paths.append(image_path(data_dir, entries[-1], offset=1, ext=image_ext))
    indices = [e.frame_index for e in entries] + [entries[-1].frame_index + 1]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{split_file}: {len(missing)} image(s) missing, e.g. {missing[0]}")

    def frames():
        for p in paths:
            yield resize_rgb(load_image_rgb(p), height, width).astype(np.float32) / 255.0

    return np.asarray(indices), frames


def run_odometry_evaluation(config) -> str:
    """ATE of the pose network of every ``config.models`` run; returns the console report."""
    from md2tf.evaluation import odometry  # noqa: PLC0415
    from md2tf.models.checkpoint import load_models  # noqa: PLC0415

    split_file, poses_file = _odometry_files(config)
    gt_poses = odometry.read_kitti_poses(poses_file)
    results = {}
    names = config.names or tuple(os.path.basename(os.path.normpath(m)) for m in config.models)
    for model_path, name in zip(config.models, names):
        experiment, _, pose_net = load_models(model_path)
        if pose_net is None:
            raise ValueError(f"--models {model_path}: this run has no pose network (stereo-only training)")
        indices, frames = odometry_frames(config.data_dir, split_file, experiment.data.height,
                                          experiment.data.width, config.image_ext)
        if indices.max() >= len(gt_poses):
            raise ValueError(f"{poses_file} has {len(gt_poses)} poses but {split_file} needs frame {indices.max()}")

        def pose_fn(pairs, net=pose_net):
            axis_angle, translation = net(pairs, training=False)
            return axis_angle, translation

        with Progress(len(indices) - 1, name, unit="pair", enabled=config.progress) as bar:
            pred = odometry.predict_relative_poses(pose_fn, frames(), config.batch_size, progress=bar)
        results[name] = odometry.score_odometry(gt_poses[indices], pred, config.snippet_length)
    lines = [f"{'model':<20} {'ATE mean':>10} {'ATE std':>10} {'snippets':>9}"]
    lines += [f"{n:<20} {s.ate_mean:10.4f} {s.ate_std:10.4f} {s.num_snippets:9d}" for n, s in results.items()]
    markdown = "| model | ATE |\n|---|---|\n" + "\n".join(
        f"| {n} | {s.ate_mean:.3f} ± {s.ate_std:.3f} |" for n, s in results.items())
    payload = json.dumps({"task": "odometry", "split_file": split_file, "poses_file": poses_file,
                          "models": {n: s.to_dict() for n, s in results.items()}}, indent=2)
    _write_outputs(config, "\n".join(lines), markdown, payload)
    return "\n".join(lines) + "\n\n" + markdown


def run_evaluation(config) -> str:
    """Runs the task of an ``md2tf.config.EvalConfig``; returns the console report."""
    if config.task == "odometry":
        return run_odometry_evaluation(config)
    if config.eval_split == BENCHMARK_SPLIT:
        return run_benchmark_export(config)
    return run_depth_evaluation(config)


def accuracy_evaluator(data_dir: str, split: str, splits_dir: str = "", stereo: bool = False,
                       image_ext: str = ".jpg", batch_size: int = 16) -> Callable[..., dict[str, float]]:
    """``predictor -> {abs_rel, sq_rel, rmse, rmse_log, a1, a2, a3}`` on a test split (md2tf.evaluate).

    Args:
      data_dir: dataset root (KITTI raw layout; the synthetic world uses the same layout).
      split: split folder with ``test_files.txt`` and ``gt_depths.npz`` (``eigen``, ``synthetic``, ...).
      splits_dir: directory of split folders; empty = ``<data_dir>/splits``.
      stereo: score as a stereo-trained model (no median scaling, depth x 5.4), else median scaling.
      image_ext: test image extension.
      batch_size: images per forward pass (TFLite runs them one by one).
    """
    from md2tf.config import EvalConfig  # noqa: PLC0415
    from md2tf.evaluation import gt_depth  # noqa: PLC0415

    config = EvalConfig(models=("export",), eval_split=split, data_dir=data_dir, splits_dir=splits_dir,
                        eval_stereo=stereo, image_ext=image_ext, batch_size=batch_size,
                        progress=False)
    resolved = config.resolved_splits_dir
    gts = gt_depth.load_gt_depths(gt_depth.gt_depths_path(resolved, split), split, resolved)
    options = scoring_options(config)
    images, count = kitti_test_images(data_dir, os.path.join(resolved, split, "test_files.txt"),
                                      image_ext)

    def evaluate(predictor) -> dict[str, float]:
        source = predictor_source(predictor, images, count, "export", batch_size)
        scores = evaluate_sources(gts, [source], options, show_progress=False)["export"]
        return {k: float(v) for k, v in scores.metrics.items()}

    return evaluate
