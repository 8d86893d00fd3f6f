"""The dataset protocol: what the trainer, the input pipeline and the evaluator ask of a dataset.

A dataset is a small stateless object (one module per dataset, one entry in the registry of
`md2tf.data.datasets`) that answers, for a `DataConfig`:

* `Dataset.check_layout`: is ``data_dir`` there? If not, a one-line `ValueError` that names
  ``--data_dir`` and shows the expected layout (`Dataset.layout`) and where to get the data.
* `Dataset.prepare`: make the data exist (the synthetic world renders itself on first use).
* `Dataset.read`: the decoded samples of ``train``, ``val`` or ``test`` as a ``tf.data`` dataset
  (the one way the input pipeline, `md2tf.data.pipeline.make_dataset`, reads any dataset).
* `Dataset.cameras`: the cameras of the training data (`Sample.camera`), in a fixed (sorted)
  order: a sample's index in it is ``Batch.camera``. `Dataset.start_intrinsics`: each one's K as
  the dataset knows it, the start of ``--intrinsics=learned``.
* `Dataset.first_without_poses`: which sample, if any, lacks known camera poses
  (``--pose_source=gt`` checks this at start-up); `Dataset.first_without_distances` likewise for
  the distances travelled between frames (``--speed_weight``).
* `Dataset.draw_frames`: a seeded random draw of target frames as stored (int8 calibration at
  export reads real frames through it).
* `Dataset.eval_split`: how training-time depth metrics are masked (``eigen``: the Garg crop and
  the 80 m cap of the paper's Sec. 4.1 protocol; anything else: every pixel with ``gt > 0``).
* `Dataset.gt_sources`: the evaluation splits the dataset provides, each with its GT source for
  ``md2tf.export_gt`` (``velodyne``, ``png`` or ``dense``).

`FileDataset` implements the reading half of the protocol for every dataset whose samples are image
files it lists (`FileDataset.list_samples`); `SplitFileDataset` is the one that lists them from
KITTI-style split files (``<splits_dir>/<split>/{train,val,test}_files.txt``). A prepared TFDS
dataset (`md2tf.data.prepared`) implements the same protocol over its stored examples.

The registry is imported before TensorFlow starts (the entry points' start-up checks), so the
reading methods import their TensorFlow code when called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from md2tf.config import DataConfig
from md2tf.data import poses
from md2tf.data.kitti_layout import build_samples, camera_name
from md2tf.data.sample import Sample
from md2tf.data.splits import SplitEntry, read_split, split_file_path, splits_dir

if TYPE_CHECKING:
    import tensorflow as tf

#: Appended to every missing-data error: the run that needs no download.
SYNTHETIC_HINT = ("or start with the built-in synthetic world: python -m md2tf.train "
                  "--flagfile=configs/synthetic.flags --run_dir=runs/synthetic")

SUBSETS = ("train", "val", "test")
#: The subsets whose cameras are listed (`Dataset.cameras`): those a training run reads.
CAMERA_SUBSETS = ("train", "val")


@runtime_checkable
class Dataset(Protocol):
    """What every registered dataset provides (see the module docstring).

    Attributes:
      name: the ``--dataset`` value.
      layout: the expected ``data_dir`` layout, one line (shown when the data is missing).
      eval_split: metric protocol of training-time validation (``eigen`` = Garg crop + depth cap).
      gt_sources: evaluation split name -> GT source (``velodyne``, ``png`` or ``dense``).
    """

    name: str
    layout: str
    eval_split: str
    gt_sources: Mapping[str, str]

    def check_layout(self, config: DataConfig) -> None:
        """Raises `ValueError` (naming ``--data_dir`` and showing `layout`) if the data is missing."""

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """Makes the data exist before training (no-op for datasets read as they are).

        Args:
          config: the data configuration.
          is_chief: whether this process writes; other workers wait up to ``timeout_s`` seconds.
          progress: show a progress bar while data is written (rendered or decoded).
        """

    def read(self, config: DataConfig, subset: str, *, training: bool,
             input_context: tf.distribute.InputContext | None = None, seed: int = 0,
             deterministic: bool = False, skip_corrupt_images: bool = False,
             corrupt_counter: tf.Variable | None = None) -> tf.data.Dataset:
        """The decoded samples of ``subset``, unbatched: `md2tf.data.decoding.finish_sample` dicts.

        Args:
          config: data configuration (frames, size, augmentation).
          subset: ``train``, ``val`` or ``test``.
          training: shuffle (seeded, reshuffled every epoch) and augment; False: a fixed order and
            no augmentation.
          input_context: reads the shard ``input_pipeline_id`` of several input pipelines.
          seed: shuffle / augmentation seed.
          deterministic: keep the element order of the parallel decoding.
          skip_corrupt_images: drop (log and count) samples with a corrupt image file instead of
            failing with an error naming it (datasets read from image files).
          corrupt_counter: int64 scalar ``tf.Variable`` counting dropped samples (optional).

        Raises:
          ValueError, FileNotFoundError: at construction, naming the missing or bad file or flag.
        """

    def cameras(self, config: DataConfig) -> tuple[str, ...]:
        """The cameras of the ``train`` and ``val`` samples, sorted by name: ``Batch.camera`` indexes
        this tuple (a sample of another camera gets -1)."""

    def start_intrinsics(self, config: DataConfig) -> np.ndarray:
        """float32 ``[C, 3, 3]`` normalised K of each of `cameras` as listed (the first sample of
        the camera): the start of ``--intrinsics=learned``."""

    def first_without_poses(self, config: DataConfig, subset: str) -> str | None:
        """The name of a ``subset`` sample without known camera poses, or None when all have them."""

    def first_without_distances(self, config: DataConfig, subset: str) -> str | None:
        """The name of a ``subset`` sample without a known distance to each temporal source
        (`Sample.temporal_distance`), or None when all have them."""

    def rig_baseline_m(self, config: DataConfig) -> float | None:
        """The stereo rig's baseline in metres, or None when the dataset does not know it (no
        stereo pairs, or a rig it cannot measure)."""

    def draw_frames(self, config: DataConfig, subset: str, num: int,
                    seed: int = 0) -> tuple[list[np.ndarray], int]:
        """``min(num, N)`` target frames of ``subset`` drawn at random (seeded), as stored.

        The same seed and dataset always give the same frames in the same order.

        Returns:
          ``(frames, N)``: uint8 RGB ``[h, w, 3]`` frames (the stored size) and the number of
          samples they were drawn from.
        """


def draw(count: int, num: int, seed: int) -> list[int]:
    """``min(num, count)`` distinct indices of ``range(count)`` drawn with
    ``numpy.random.default_rng(seed)``, in drawn order."""
    return [int(i) for i in np.random.default_rng(seed).permutation(count)[:num]]


def load_rgb(path: str) -> np.ndarray:
    """An image file as uint8 RGB ``[h, w, 3]``.

    Raises:
      ValueError: naming the file when it is not a readable image.
    """
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e})") from e


class FileDataset:
    """The reading half of the dataset protocol for datasets of image files listed as `Sample` s.

    Subclasses implement ``list_samples(config, subset) -> list[Sample]``: the validated samples of
    ``subset``, in a fixed order, with the relative camera poses of their temporal sources where
    the dataset has poses (NaN where not).
    """

    def list_samples(self, config: DataConfig, subset: str) -> list[Sample]:
        raise NotImplementedError

    def read(self, config: DataConfig, subset: str, *, training: bool,
             input_context: tf.distribute.InputContext | None = None, seed: int = 0,
             deterministic: bool = False, skip_corrupt_images: bool = False,
             corrupt_counter: tf.Variable | None = None) -> tf.data.Dataset:
        """See `Dataset.read`: `md2tf.data.decoding.read_samples` of `list_samples`."""
        from md2tf.data import decoding  # noqa: PLC0415  (TensorFlow: see the module docstring)

        samples = self.list_samples(config, subset)
        if not samples:
            raise ValueError(f"--dataset={config.dataset}: no {subset} samples to read")
        index = {name: i for i, name in enumerate(self.cameras(config))}
        return decoding.read_samples(samples, config, training=training, input_context=input_context,
                                     seed=seed, deterministic=deterministic,
                                     skip_corrupt_images=skip_corrupt_images,
                                     corrupt_counter=corrupt_counter,
                                     cameras=[index.get(s.camera, -1) for s in samples])

    def _listed_subsets(self, config: DataConfig) -> list[list[Sample]]:
        out = []
        for subset in CAMERA_SUBSETS:
            try:
                out.append(self.list_samples(config, subset))
            except (FileNotFoundError, ValueError):
                if subset == "train":
                    raise
        return out

    def cameras(self, config: DataConfig) -> tuple[str, ...]:
        """See `Dataset.cameras`."""
        return tuple(sorted({s.camera for samples in self._listed_subsets(config) for s in samples}))

    def start_intrinsics(self, config: DataConfig) -> np.ndarray:
        """See `Dataset.start_intrinsics`."""
        first: dict[str, np.ndarray] = {}
        for samples in self._listed_subsets(config):
            for s in samples:
                first.setdefault(s.camera, np.asarray(s.intrinsics, np.float32))
        return np.stack([first[name] for name in sorted(first)])

    def first_without_poses(self, config: DataConfig, subset: str) -> str | None:
        """See `Dataset.first_without_poses`."""
        return next((s.name for s in self.list_samples(config, subset)
                     if not poses.has_poses(s.temporal_source_from_target)), None)

    def first_without_distances(self, config: DataConfig, subset: str) -> str | None:
        """See `Dataset.first_without_distances`."""
        return next((s.name for s in self.list_samples(config, subset)
                     if s.temporal_distance is None or not np.all(np.isfinite(s.temporal_distance))),
                    None)

    def rig_baseline_m(self, config: DataConfig) -> float | None:
        """See `Dataset.rig_baseline_m`: unknown unless a subclass says."""
        del config
        return None

    def draw_frames(self, config: DataConfig, subset: str, num: int,
                    seed: int = 0) -> tuple[list[np.ndarray], int]:
        """See `Dataset.draw_frames`: the drawn samples' target image files, decoded."""
        samples = self.list_samples(config, subset)
        return [load_rgb(samples[i].target) for i in draw(len(samples), num, seed)], len(samples)


def missing_data_error(config: DataConfig, layout: str, how_to_get: str) -> ValueError:
    """The one-line error of a missing ``data_dir``: the flag, the expected layout, where to get it."""
    return ValueError(
        f"--data_dir={config.data_dir!r} does not exist (--dataset={config.dataset}). Expected layout: "
        f"{layout}. {how_to_get}, {SYNTHETIC_HINT}")


def check_subset(subset: str) -> None:
    """`ValueError` unless ``subset`` is ``train``, ``val`` or ``test``."""
    if subset not in SUBSETS:
        raise ValueError(f"split must be train, val or test, got {subset!r}")


@dataclass(frozen=True)
class SplitFileDataset(FileDataset):
    """A dataset whose samples are the lines of KITTI-style split files under ``splits_dir``.

    Attributes:
      name: the ``--dataset`` value.
      layout: the expected ``data_dir`` layout (one line).
      how_to_get: where the data comes from (``Download ...``), shown when it is missing.
      default_split: the split folder read when ``--split`` is empty (the dataset's own split).
      missing_split_hint: how to get the split files, shown when one is missing.
      eval_split: metric protocol of training-time validation.
      gt_sources: evaluation split -> GT source.
      poses: where the layout keeps camera poses for ``--pose_source=gt``
        (`md2tf.data.kitti_layout.POSE_LAYOUTS`: ``none``, ``drive`` or ``odometry``).
      baseline_m: the stereo rig's baseline in metres (`rig_baseline_m`), None if unknown.
    """

    name: str
    layout: str
    how_to_get: str
    default_split: str = ""
    missing_split_hint: str = "get the split files with `python scripts/download_kitti.py --splits_only`"
    eval_split: str = ""
    gt_sources: Mapping[str, str] = field(default_factory=dict)
    poses: str = "none"
    baseline_m: float | None = None

    def rig_baseline_m(self, config: DataConfig) -> float | None:
        """See `Dataset.rig_baseline_m`: `baseline_m`."""
        del config
        return self.baseline_m

    def split_name(self, config: DataConfig) -> str:
        """The split folder: ``config.split``, or `default_split` when ``--split`` is empty.

        Raises:
          ValueError: naming ``--split`` when both are empty.
        """
        name = config.split or self.default_split
        if not name:
            raise ValueError(f"--dataset={self.name} has no split of its own: give --split")
        return name

    def check_layout(self, config: DataConfig) -> None:
        """See `Dataset.check_layout`."""
        if not config.data_dir or not os.path.isdir(config.data_dir):
            raise missing_data_error(config, self.layout, self.how_to_get)

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """Nothing to do: the files are read as they are."""
        del config, is_chief, timeout_s, progress

    def usable_entries(self, config: DataConfig, entries: list[SplitEntry]) -> list[SplitEntry]:
        """The split lines to build samples from: all of them (a missing image is an error)."""
        del config
        return entries

    def _split_path(self, config: DataConfig, subset: str) -> str:
        return split_file_path(splits_dir(config.data_dir, config.splits_dir), self.split_name(config),
                               subset)

    def cameras(self, config: DataConfig) -> tuple[str, ...]:
        """See `Dataset.cameras`: from the split lines (`camera_name`), no file is opened but them."""
        names = set()
        for subset in CAMERA_SUBSETS:
            path = self._split_path(config, subset)
            if os.path.isfile(path):
                names |= {camera_name(e) for e in read_split(path)}
        return tuple(sorted(names))

    def list_samples(self, config: DataConfig, subset: str) -> list[Sample]:
        """One validated `Sample` per line (of `usable_entries`) of ``<splits_dir>/<split>/<subset>_files.txt``.

        Raises:
          ValueError: an empty ``data_dir``, a bad subset, or (from the reader) a malformed split
            line or a missing file, naming the split file, the line and the path.
          FileNotFoundError: if the split file does not exist (with `missing_split_hint`).
        """
        if not config.data_dir:
            raise ValueError("--data_dir is empty: give the dataset root directory")
        check_subset(subset)
        path = split_file_path(splits_dir(config.data_dir, config.splits_dir), self.split_name(config),
                               subset)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"split file not found: {path} ({self.missing_split_hint})")
        return build_samples(self.usable_entries(config, read_split(path)), config.data_dir,
                             temporal_offsets=config.temporal_offsets, use_stereo=config.use_stereo,
                             image_ext=config.image_ext, intrinsics=config.intrinsics,
                             poses=self.poses, oxts_speeds=self.oxts_speeds(config))

    def oxts_speeds(self, config: DataConfig) -> bool:
        """Whether distances come from KITTI raw's oxts: ``--speed_source=gt`` on a layout without
        camera poses."""
        return config.speed_source == "gt" and self.poses == "none"
