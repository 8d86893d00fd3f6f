"""Where evaluated disparities come from: precomputed arrays, exported models or an in-memory network.

A `DisparitySource` yields one ``scaled_disp`` map ``[h, w]`` per test image, at network resolution,
in split order (``disp_to_depth``'s first output, not the raw sigmoid, as the Eigen protocol of the
paper's Sec. 4.1 scores). Implementations:

* `ArraySource` / `npy_source`: precomputed disparities (e.g. the published official ``.npy``, with
  the optional eigen -> benchmark reordering).
* `ModelSource`: any callable ``uint8 [B, H, W, 3] -> scaled_disp [B, H, W, 1]`` over the test images,
  with optional flip post-processing; `predictor_source` wraps ``md2tf.deploy.inference.load_predictor``
  objects (checkpoints, SavedModels, every TFLite variant) and `depth_net_source` an in-memory Keras
  ``DepthNet``.

`open_source` picks the right one from a path; `load_predictors` loads the models first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
import tensorflow as tf

from md2tf.data.kitti_layout import build_samples, image_path, load_test_images
from md2tf.data.splits import read_split
from md2tf.deploy.images import resize_rgb
from md2tf.deploy.inference import Predictor, load_predictor
from md2tf.evaluation import postprocess

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
    """Precomputed disparities ``[N, h, w]`` (or ``[N, h, w, 1]``); ``path``: their file, if any."""

    def __init__(self, name: str, disparities: np.ndarray, path: str = ""):
        disparities = np.asarray(disparities)
        if disparities.ndim == 4 and disparities.shape[-1] == 1:
            disparities = disparities[..., 0]
        if disparities.ndim != 3:
            raise ValueError(
                f"{name}: precomputed disparities must be [N, h, w] or [N, h, w, 1], got shape {disparities.shape}"
            )
        self.name, self.path = name, path
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
    return ArraySource(name or os.path.basename(path), array, path)


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

    entries = read_split(split_file)
    if entries:
        _check_image_ext(data_dir, entries[0], image_ext)
    return (lambda: (image for _, image in load_test_images(data_dir, split_file, image_ext))), len(entries)


def kitti_test_intrinsics(data_dir: str, split_file: str, image_ext: str = ".jpg") -> list[np.ndarray]:
    """The normalised K of every test image of a split file, in split order.

    Each image's rectified projection from its drive's calibration (``calib_cam_to_cam.txt``
    ``P_rect_02/03``, or odometry ``calib.txt`` ``P2/P3``), divided by the image size
    (`md2tf.data.kitti_layout.calib_intrinsics`); the synthetic world writes the same layout.

    Returns:
      N float32 ``[3, 3]`` normalised intrinsics (fx, cx / width; fy, cy / height).

    Raises:
      ValueError: naming the split file and line of a missing image or calibration file.
    """
    entries = read_split(split_file)
    if entries:
        _check_image_ext(data_dir, entries[0], image_ext)
    samples = build_samples(entries, data_dir, temporal_offsets=(), image_ext=image_ext, intrinsics="calib")
    return [np.asarray(s.intrinsics, np.float32) for s in samples]


def _check_image_ext(data_dir: str, entry, image_ext: str) -> None:
    """A missing first test image names ``--data_dir`` / ``--image_ext`` (and the extension that is there)."""
    path = image_path(data_dir, entry, ext=image_ext)
    if os.path.isfile(path):
        return
    other = ".png" if image_ext == ".jpg" else ".jpg"
    if os.path.isfile(image_path(data_dir, entry, ext=other)):
        raise ValueError(f"test image {path} not found but its {other} is there: pass --image_ext={other}")
    raise ValueError(f"test image not found: {path} (--data_dir={data_dir}, --image_ext={image_ext})")


def load_predictors(paths: Sequence[str], post_process: bool = False) -> dict[str, Predictor]:
    """Loads every model among ``paths`` (``.npy`` arrays are not models), keyed by path.

    Evaluation calls this before it looks for ground truth or test images: a run directory without
    a checkpoint or a damaged ``.tflite`` is the problem to report, not what follows from it.

    Raises:
      ValueError, FileNotFoundError: from ``md2tf.deploy.inference.load_predictor``, naming the model.
    """
    return {path: load_predictor(path, post_process=post_process)
            for path in paths if not path.endswith(".npy")}


def open_source(path: str, images: ImageProvider | None, count: int, name: str = "", batch_size: int = 16,
                post_process: bool = False, reorder_ids: np.ndarray | None = None,
                predictor: Predictor | None = None) -> DisparitySource:
    """A `DisparitySource` for a ``.npy``, ``.tflite``, SavedModel, run directory or checkpoint prefix.

    ``predictor``: the model at ``path`` when already loaded (`load_predictors`).
    """
    name = name or os.path.basename(os.path.normpath(path))
    if path.endswith(".npy"):
        return npy_source(path, name, reorder_ids)
    if images is None:
        raise ValueError(f"--models: {path} is a model, which needs --data_dir with the test images")
    if predictor is None:
        predictor = load_predictor(path, post_process=post_process)
    return predictor_source(predictor, images, count, name, batch_size, post_process)
