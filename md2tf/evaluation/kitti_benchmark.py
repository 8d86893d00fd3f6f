"""KITTI depth-prediction benchmark submission (``--eval_split benchmark``): 16-bit depth PNGs.

The benchmark's test images have no public GT, so nothing is scored: every model's predictions become
``uint16(clip(5.4 / resize(disp, 1216 x 352), 0, 80) * 256)`` PNGs (the stereo scale factor of the
paper's Sec. 4.1 and the KITTI devkit's x256 encoding).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from md2tf.data import splits
from md2tf.data.kitti_layout import image_path
from md2tf.data.splits import read_split
from md2tf.evaluation import metrics
from md2tf.evaluation.sources import (
    DisparitySource,
    kitti_test_images,
    load_predictors,
    open_source,
)
from md2tf.progress import Progress

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

    if not config.output_dir:
        raise ValueError("--eval_split=benchmark writes KITTI submission PNGs: give --output_dir")
    predictors = load_predictors(config.models, config.post_process)  # before the split and images
    split_file = os.path.join(splits.splits_dir(config.data_dir, config.splits_dir),
                              BENCHMARK_SPLIT, "test_files.txt")
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
    sources = [open_source(m, images, count, n, config.batch_size, config.post_process,
                           predictor=predictors.get(m)) for m, n in zip(config.models, names)]
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
