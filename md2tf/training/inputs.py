"""A training run's data: start-up checks, preparation, the dataset function and input-error messages.

`md2tf.train` checks and prepares the data before it builds a `md2tf.training.trainer.Trainer`; the
trainer reads batches through a `DatasetFn` (`default_dataset_fn`: `md2tf.data.pipeline.make_dataset`)
and turns a failing input pipeline into a `TrainingDataError` whose one line names the cause
(`error_cause`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from md2tf.config import ExperimentConfig
from md2tf.data import datasets, pipeline
from md2tf.data.datasets.folder import default_normalized_intrinsics
from md2tf.training import distribute

#: ``dataset_fn(split, batch_size, training, input_context, seed) -> tf.data.Dataset`` of `Batch`,
#: ``batch_size`` global (split per replica through ``input_context``), one epoch.
DatasetFn = Callable[..., tf.data.Dataset]


class TrainingDataError(ValueError):
    """The input pipeline failed mid-run (e.g. a corrupt image); the message names the cause."""


def check_data_available(config: ExperimentConfig) -> None:
    """Fails early, naming ``--data_dir``, when the dataset's files are missing.

    Raises:
      ValueError: with the dataset's expected layout, where to get it and a pointer to the
        synthetic run (`md2tf.data.datasets.base.Dataset.check_layout`).
    """
    datasets.get_dataset(config.data.dataset).check_layout(config.data)


#: How far ``--stereo_baseline`` may differ from the rig's metres when depth is metric (a relative
#: error; KITTI raw's rectified baselines are 0.532-0.537 m against the nominal 0.54).
STEREO_BASELINE_TOLERANCE = 0.02


def check_poses_available(config: ExperimentConfig) -> None:
    """With ``--pose_source=gt`` or ``rotation``: fails at start-up unless every train and val sample
    has known poses.

    Raises:
      ValueError: one line naming ``--pose_source``, ``--dataset`` and the first sample without
        poses, with where poses can come from.
    """
    if config.train.pose_source == "network":
        return
    for subset in ("train", "val"):
        try:
            missing = datasets.get_dataset(config.data.dataset).first_without_poses(config.data, subset)
        except (FileNotFoundError, ValueError):
            if subset == "train":
                raise
            continue  # no validation split: validation is skipped with a warning later
        if missing is not None:
            raise ValueError(
                f"--pose_source={config.train.pose_source} needs known camera poses, but --dataset={config.data.dataset} "
                f"(--data_dir={config.data.data_dir}) has none for {subset} sample {missing!r}; "
                "poses come with --dataset=synthetic, kitti_odom (poses/NN.txt) or folder (poses.txt "
                "beside the frames), else use --pose_source=network")


def check_distances_available(config: ExperimentConfig) -> None:
    """With ``--speed_weight``: fails at start-up unless every train sample has known distances.

    Raises:
      ValueError: one line naming ``--speed_source``, ``--dataset`` and the first sample without a
        distance, with where distances can come from.
    """
    if not config.loss.speed_weight:
        return
    data = config.data
    if data.speed_source == "file" and data.dataset not in ("folder", "video"):
        raise ValueError(f"--speed_source=file reads speeds.csv beside frame folders or videos "
                         f"(--dataset=folder or video), not --dataset={data.dataset}: use --speed_source=gt")
    missing = datasets.get_dataset(data.dataset).first_without_distances(data, "train")
    if missing is not None:
        where = ("poses.txt or speeds.csv (--speed_source=file) beside the frames" if data.dataset == "folder"
                 else "<video name>.speeds.csv beside the video" if data.dataset == "video"
                 else "poses (synthetic, kitti_odom) or KITTI raw's oxts folder")
        raise ValueError(f"--speed_weight={config.loss.speed_weight:g} needs the distance travelled "
                         f"between frames, but --dataset={data.dataset} (--speed_source={data.speed_source}) "
                         f"has none for train sample {missing!r}; distances come from {where}")


def check_stereo_units(config: ExperimentConfig) -> None:
    """S or MS with a length in metres elsewhere (``--speed_weight``, ``--pose_source=gt``): fails at
    start-up unless ``--stereo_baseline`` is the rig's baseline in metres, where the dataset knows it.

    The stereo warp's translation is ``--stereo_baseline`` (0.1 units in the paper); speeds and
    known poses are metres, so with the paper's 0.1 the two sources would ask for depths 5.4x apart.

    Raises:
      ValueError: one line naming ``--stereo_baseline``, the rig's baseline and what sets metres.
    """
    data = config.data
    metric = ("--speed_weight" if config.loss.speed_weight > 0
              else "--pose_source=gt" if config.train.pose_source == "gt" else "")
    if not (data.use_stereo and metric):
        return
    rig = datasets.get_dataset(data.dataset).rig_baseline_m(data)
    if rig is not None and abs(data.stereo_baseline / rig - 1.0) > STEREO_BASELINE_TOLERANCE:
        raise ValueError(f"{metric} makes depth metres, so the stereo pair must too: "
                         f"--stereo_baseline={data.stereo_baseline:g} is not the rig's {rig:g} m "
                         f"(--dataset={data.dataset}); give --stereo_baseline={rig:g}")


def default_dataset_fn(config: ExperimentConfig, corrupt_counter: tf.Variable) -> DatasetFn:
    def fn(split, batch_size, training, input_context=None, seed=None):
        skip = config.data.skip_corrupt_images and training
        return pipeline.make_dataset(config.data, split, batch_size, training=training,
                                     input_context=input_context, seed=seed or 0,
                                     deterministic=config.train.deterministic,
                                     skip_corrupt_images=skip,
                                     corrupt_counter=corrupt_counter if skip else None)

    def num_batches(split, batch_size, seed=None) -> int:
        """Batches of one pass before corrupt samples are dropped (the filter hides the count)."""
        ds = pipeline.make_dataset(config.data, split, batch_size, training=True, seed=seed or 0)
        return int(ds.cardinality().numpy())

    fn.num_batches = num_batches
    return fn


def learned_cameras(config: ExperimentConfig) -> tuple[tuple[str, ...], np.ndarray]:
    """The cameras of a ``--intrinsics=learned`` run and their start K (`Dataset.cameras`,
    `Dataset.start_intrinsics`; the data must be prepared).

    Returns:
      ``(names, K)``: C camera names in index order and float32 ``[C, 3, 3]`` normalised K.
    """
    dataset = datasets.get_dataset(config.data.dataset)
    names, start = dataset.cameras(config.data), dataset.start_intrinsics(config.data)
    if config.data.intrinsics_start_fov:  # the frames' own aspect ratio, square pixels
        (frame,), _ = dataset.draw_frames(config.data, "train", 1)
        k = default_normalized_intrinsics(*frame.shape[:2], fov_deg=config.data.intrinsics_start_fov)
        start = np.broadcast_to(k, start.shape).astype(np.float32)
    return names, start


def prepare_data(config: ExperimentConfig, timeout_s: float = 3600.0) -> None:
    """Makes the training data exist (the synthetic world renders into ``data_dir`` on first use).

    Only the chief writes; other workers wait up to ``timeout_s`` seconds for it.
    """
    datasets.get_dataset(config.data.dataset).prepare(config.data, is_chief=distribute.is_chief(),
                                                     timeout_s=timeout_s,
                                                     progress=config.train.progress_bar)


def error_cause(error: BaseException) -> str:
    """One line with the cause of an error: for a TF graph error the failing op's own message (e.g.
    ``assertion failed: [corrupt or truncated image file:] [<path>]``), without TF's node listing."""
    text = str(getattr(error, "message", error))
    boilerplate = ("Graph execution error", "Detected at node", "<stack traces", "[[", "File ")
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith(boilerplate)] or [text.strip()]
    cause = lines[0]
    if "assertion failed:" in cause:
        cause = cause[cause.index("assertion failed:"):]
    return " ".join(cause.split(" [Op:")[0].split()) or type(error).__name__
