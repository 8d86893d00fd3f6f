"""TFDS builders of md2tf's datasets: frames pre-resized as the online pipeline, K, stereo side, GT.

One generic builder (`Md2tfBuilder`) turns any dataset of the registry in `md2tf.data.datasets` into
a TFDS dataset; each registered builder below only names its registry entry and its configs:

============================  ==================================  ===============================
TFDS name                     source (``manual_dir``)             configs
============================  ==================================  ===============================
``md2tf_kitti``               KITTI raw root (download_kitti.py)  ``{eigen_zhou,eigen_full,
                                                                  benchmark}_{640x192,1024x320}``
``md2tf_kitti_odom``          KITTI odometry root (``sequences``)  ``odom_{640x192,1024x320}``
``md2tf_synthetic``           none: rendered by the builder       ``320x96``, ``640x192``
``md2tf_folder``              frames + ``intrinsics.json``        ``640x192``, ``1024x320``
============================  ==================================  ===============================

KITTI odometry is its own builder because its download (``manual_dir``) is another tree.

Every example stores (the feature dict is derived from `md2tf.data.sample.Sample`, so a numeric
field added to samples is stored without a change here):

* ``frames``: the target, the temporal neighbours ``-1, +1`` and the stereo partner (where the source
  has one), in `Sample.sources` order, each resized to ``width x height`` exactly as the online
  pipeline (`md2tf.data.decoding.resize_image`: antialiased Lanczos-3, clipped), rounded to uint8 and
  encoded as JPEG (quality 95, no chroma subsampling) or PNG (lossless). One prepared dataset serves
  M, S and MS training: the reader picks the frames a `DataConfig` asks for.
* ``depth_gt``: float32 ``[h, w]`` metres at the raw image size (``[0, 0]`` when unknown): for
  ``train``/``validation`` the online pipeline's training-time GT (dense ``.npy`` or the projected
  lidar scan); for ``test`` the evaluator's GT (`md2tf.evaluation.gt_depth.load_gt_depth`, the maps
  of ``gt_depths.npz``) of the evaluation split (Eigen: projected lidar as the paper's Sec. 4.1;
  ``benchmark``: the annotated PNGs of ``eigen_benchmark``), target frame only, in split-file order.
* ``intrinsics`` (normalised ``[3, 3]`` K), ``side_sign``, ``name`` and any other numeric sample field.

Splits ``train``, ``validation`` (md2tf's ``val``) and, where the config names an evaluation split,
``test``. Examples keep a fixed, seeded order (``disable_shuffling``): training reads shuffle files
and a buffer; evaluation reads in split-file order. The reader side is `md2tf.data.prepared`.

Example::

    import md2tf.tfds.builders, tensorflow_datasets as tfds
    ds = tfds.load("md2tf_synthetic/320x96", split="train", data_dir="/data/tfds")
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from md2tf.config import DataConfig, WorldConfig
from md2tf.data import datasets, decoding, prepared
from md2tf.data.sample import Sample
from md2tf.data.splits import read_split, splits_dir
from md2tf.evaluation import gt_depth

#: (width, height) of the paper's two training resolutions.
RESOLUTIONS = ((640, 192), (1024, 320))
#: Temporal frames stored with every target (the paper's M and MS use -1 and +1).
STORED_OFFSETS = (0, -1, 1)
JPEG_QUALITY = 95
#: Seed of the fixed example order of ``train`` / ``validation``.
ORDER_SEED = 20190
#: Numeric sample fields that only serve to read a file while preparing (not stored).
CONSUMED_FIELDS = ("velo_projection",)
# A camera index is only meaningful against the camera list it was drawn from; prepared datasets
# do not store it (they refuse --intrinsics=learned).
UNSTORED_FIELDS = ("camera",)


def _json_value(value):
    """A `DataConfig` field's value as JSON holds it (nested configs as dicts, tuples as lists)."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return list(value) if isinstance(value, tuple) else value


@dataclasses.dataclass(eq=False)
class Md2tfConfig(tfds.core.BuilderConfig):
    """A builder config: how the samples are listed and how frames are stored.

    Attributes:
      data: `DataConfig` fields (every field but ``data_dir``, which is the ``manual_dir`` or the
        rendered world): ``dataset`` (registry name), ``split``, ``height``, ``width``,
        ``frame_offsets``, ``use_stereo``, ``intrinsics``, ``image_ext`` (of the source files) and,
        for the synthetic world, ``synthetic`` (a `WorldConfig`).
      test_split: split folder whose ``test_files.txt`` becomes the ``test`` split, with the GT
        source the registry declares for it (``""`` = no test split).
      image_format: stored frames, ``"jpeg"`` or ``"png"``.
    """

    data: dict = dataclasses.field(default_factory=dict)
    test_split: str = ""
    image_format: str = "jpeg"

    def data_config(self, data_dir: str = "") -> DataConfig:
        """The `DataConfig` the samples are listed with (``data_dir`` = the source root)."""
        return DataConfig(**{**self.data, "data_dir": data_dir})

    def settings(self) -> dict:
        """What `md2tf.data.prepared` checks a reader's `DataConfig` against (``metadata.json``)."""
        data = self.data_config()
        return {
            "format_version": prepared.FORMAT_VERSION,
            "source": data.dataset,
            "height": data.height,
            "width": data.width,
            "temporal_offsets": list(data.temporal_offsets),
            "stereo": data.use_stereo,
            "intrinsics": data.intrinsics,
            "image_format": self.image_format,
            "test_split": self.test_split,
            "data": {k: _json_value(v) for k, v in self.data.items()},
        }


def _sample_spec(num_sources: int) -> dict[str, tf.TensorSpec]:
    dummy = Sample(target="", sources=("",) * num_sources, intrinsics=np.eye(3, dtype=np.float32),
                   side_sign=1.0, depth_gt="", name="")
    return decoding.samples_to_dataset([dummy], num_temporal=num_sources).element_spec


def carried_fields(num_sources: int) -> dict[str, tuple[tuple[int | None, ...], tf.DType]]:
    """The numeric per-sample fields stored as they are, with their shapes and dtypes.

    Derived from `md2tf.data.decoding.samples_to_dataset` (string fields are file paths, read while
    preparing). A dimension that changes with the number of source frames is left unknown, since
    ``test`` examples keep only the target.

    Args:
      num_sources: source frames of the training examples.

    Returns:
      ``{field: (shape, dtype)}``.
    """
    spec, other = _sample_spec(max(num_sources, 1)), _sample_spec(max(num_sources, 1) + 1)
    fields = {}
    for key, s in spec.items():
        if s.dtype == tf.string or key in CONSUMED_FIELDS + UNSTORED_FIELDS:
            continue
        shape = tuple(d if d == e else None for d, e in zip(s.shape, other[key].shape))
        fields[key] = (shape, s.dtype)
    return fields


def _encode_frame(image: tf.Tensor, height: int, width: int, image_format: str) -> tf.Tensor:
    pixels = tf.cast(tf.round(decoding.resize_image(image, height, width) * 255.0), tf.uint8)
    if image_format == "png":
        return tf.io.encode_png(pixels)
    return tf.io.encode_jpeg(pixels, quality=JPEG_QUALITY, chroma_downsampling=False)


def _training_gt(element: dict, raw_shape: tf.Tensor) -> tf.Tensor:
    """The online pipeline's training-time GT at the raw size (dense ``.npy``, else lidar), or [0, 0]."""
    gt_path, velo_path = element["depth_gt"], element["velodyne"]

    def dense():
        return decoding.decode_npy_float32(tf.io.read_file(gt_path), raw_shape[0], raw_shape[1],
                                           gt_path)

    def lidar():
        return decoding.velodyne_depth_map(tf.io.read_file(velo_path), element["velo_projection"],
                                           raw_shape[0], raw_shape[1])

    def none():
        return tf.zeros([0, 0], tf.float32)

    return tf.cond(tf.strings.length(gt_path) > 0, dense,
                   lambda: tf.cond(tf.strings.length(velo_path) > 0, lidar, none))


class Md2tfBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Generic builder over one registry dataset; subclasses set ``BUILDER_CONFIGS`` (and, for
    downloaded data, ``MANUAL_DOWNLOAD_INSTRUCTIONS``)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: pre-resized frames, K, stereo side, GT depth."}
    BUILDER_CONFIGS: list[Md2tfConfig] = []

    def _info(self) -> tfds.core.DatasetInfo:
        config: Md2tfConfig = self.builder_config
        data = config.data_config()
        if config.image_format not in ("jpeg", "png"):
            raise ValueError(f"image_format must be 'jpeg' or 'png', got {config.image_format!r}")
        features = {
            "frames": tfds.features.Sequence(tfds.features.Image(
                shape=(data.height, data.width, 3), encoding_format=config.image_format)),
            "depth_gt": tfds.features.Tensor(shape=(None, None), dtype=np.float32,
                                             encoding=tfds.features.Encoding.ZLIB),
            "name": tfds.features.Text(),
        }
        for key, (shape, dtype) in carried_fields(data.num_sources).items():
            features[key] = tfds.features.Tensor(shape=shape, dtype=dtype.as_numpy_dtype)
        return tfds.core.DatasetInfo(
            builder=self,
            description=(f"md2tf {data.dataset} split {data.split!r} at {data.width}x{data.height}: "
                         "pre-resized frames, K, stereo side and GT depth (md2tf.tfds.builders)."),
            features=tfds.features.FeaturesDict(features),
            metadata=tfds.core.MetadataDict(config.settings()),
            disable_shuffling=True,  # the generation order: evaluation reads split-file order
            homepage="https://arxiv.org/abs/1806.01260",
        )

    def _source_dir(self, dl_manager: tfds.download.DownloadManager) -> str:
        """The registry dataset's ``data_dir``: the manual download."""
        return os.fspath(dl_manager.manual_dir)

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        config: Md2tfConfig = self.builder_config
        data = config.data_config(self._source_dir(dl_manager))
        source = datasets.get_dataset(data.dataset)
        source.check_layout(data)
        source.prepare(data, is_chief=True)
        splits = {prepared.SPLITS[s]: self._generate_examples(data, s) for s in ("train", "val")}
        if config.test_split:
            splits["test"] = self._generate_test_examples(data, config.test_split)
        return splits

    def _examples(self, data: DataConfig, samples: list[Sample], num_frames: int,
                  training_gt: bool) -> Iterator[tuple[Sample, dict]]:
        """(sample, example) pairs: frames resized and encoded in a parallel tf.data map."""
        carried = carried_fields(data.num_sources)
        image_format = self.builder_config.image_format

        def encode(element):
            paths = tf.concat([element["target"][None], element["sources"]], axis=0)
            frames, raw_shape = [], None
            for i in range(num_frames):
                contents, _ = decoding.read_image_bytes(paths[i], data.image_ext)
                image = decoding.decode_image(contents, data.image_ext)
                raw_shape = tf.shape(image) if i == 0 else raw_shape
                frames.append(_encode_frame(image, data.height, data.width, image_format))
            out = {"frames": tf.stack(frames),
                   "depth_gt": _training_gt(element, raw_shape) if training_gt
                   else tf.zeros([0, 0], tf.float32)}
            out.update({k: element[k] for k in carried})
            return out

        ds = decoding.samples_to_dataset(samples, len(data.temporal_offsets))
        ds = ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        for sample, example in zip(samples, ds.as_numpy_iterator(), strict=True):
            example["frames"] = list(example["frames"])
            example["name"] = sample.name
            yield sample, example

    def _generate_examples(self, data: DataConfig, subset: str) -> Iterator[tuple[int, dict]]:
        samples = datasets.get_dataset(data.dataset).list_samples(data, subset)
        order = np.random.default_rng(ORDER_SEED).permutation(len(samples))
        samples = [samples[i] for i in order]
        for index, (_, example) in enumerate(self._examples(data, samples, 1 + data.num_sources,
                                                            training_gt=True)):
            yield index, example

    def _generate_test_examples(self, data: DataConfig, test_split: str
                                ) -> Iterator[tuple[int, dict]]:
        """The evaluation split: target frames with the evaluator's GT, in split-file order."""
        source = datasets.gt_source_for_split(test_split)
        if source is None:
            raise ValueError(f"test_split={test_split!r}: no registered dataset declares its GT source")
        # Listed with the stereo partner (every raw frame has one) so that the config is valid; only
        # the target is stored.
        test = dataclasses.replace(data, split=test_split, frame_offsets=(0,), use_stereo=True)
        samples = datasets.get_dataset(data.dataset).list_samples(test, "test")
        lines = read_split(os.path.join(splits_dir(data.data_dir, data.splits_dir), test_split,
                                        "test_files.txt"), kind="raw")
        if len(lines) != len(samples):
            raise ValueError(f"{test_split}/test_files.txt: {len(lines)} lines but {len(samples)} samples")
        for index, (_, example) in enumerate(self._examples(test, samples, 1, training_gt=False)):
            example["depth_gt"] = gt_depth.load_gt_depth(data.data_dir, lines[index], source)
            yield index, example


def _configs(splits: dict[str, str], data: dict, image_format: str = "jpeg") -> list[Md2tfConfig]:
    """``<split>_<W>x<H>`` configs for every training split (-> its test split) and resolution."""
    return [Md2tfConfig(name=f"{split}_{w}x{h}", test_split=test, image_format=image_format,
                        description=f"split {split} at {w}x{h}",
                        data={**data, "split": split, "width": w, "height": h})
            for split, test in splits.items() for w, h in RESOLUTIONS]


_KITTI_DATA = {"frame_offsets": STORED_OFFSETS, "use_stereo": True, "intrinsics": "fixed",
               "image_ext": ".jpg"}
_KITTI_INSTRUCTIONS = ("Download KITTI raw with `python scripts/download_kitti.py --data_dir DIR "
                       "--convert_jpeg` (about 175 GB, with the split files in DIR/splits) and pass "
                       "DIR as manual_dir (scripts/prepare_tfds.py --manual_dir DIR).")


class Md2tfKitti(Md2tfBuilder):
    """KITTI raw (paper Sec. 4): Eigen-Zhou, Eigen full and the depth benchmark's training split."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = _KITTI_INSTRUCTIONS
    BUILDER_CONFIGS = _configs({"eigen_zhou": "eigen", "eigen_full": "eigen",
                                "benchmark": "eigen_benchmark"}, {"dataset": "kitti", **_KITTI_DATA})


class Md2tfKittiOdom(Md2tfBuilder):
    """KITTI odometry sequences, split ``odom`` (no depth GT; odometry is scored on poses)."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Download the KITTI odometry colour images and calibration "
                                    "(cvlibs.net) with the split files (scripts/download_kitti.py "
                                    "--splits_only) and pass the folder holding sequences/ as manual_dir.")
    BUILDER_CONFIGS = _configs({"odom": ""}, {"dataset": "kitti_odom", **_KITTI_DATA})


class Md2tfFolder(Md2tfBuilder):
    """Your own video: a folder of frames (or of clips) with ``intrinsics.json``, monocular."""

    MANUAL_DOWNLOAD_INSTRUCTIONS = ("Pass the frame folder (md2tf/data/datasets/folder.py: frames "
                                    "sorted by name + intrinsics.json) as manual_dir.")
    BUILDER_CONFIGS = [Md2tfConfig(name=f"{w}x{h}", description=f"frames at {w}x{h}",
                                   data={"dataset": "folder", "frame_offsets": STORED_OFFSETS,
                                         "use_stereo": False, "width": w, "height": h})
                       for w, h in RESOLUTIONS]


class Md2tfSynthetic(Md2tfBuilder):
    """The built-in synthetic world, rendered by the builder (deterministic per config and seed)."""

    BUILDER_CONFIGS = [
        Md2tfConfig(  # = configs/synthetic.flags: a 96x320 world, lossless frames
            name="320x96", test_split="synthetic", image_format="png",
            description="4 drives x 100 frames rendered at 96x320, seed 0",
            data={"dataset": "synthetic", "split": "synthetic", "height": 96, "width": 320,
                  "frame_offsets": STORED_OFFSETS, "use_stereo": True, "intrinsics": "calib",
                  "image_ext": ".png", "synthetic": WorldConfig(drives=4, frames=100, seed=0)}),
        Md2tfConfig(  # KITTI-sized JPEGs resized to the paper's 640x192, as KITTI itself
            name="640x192", test_split="synthetic",
            description="4 drives x 100 frames rendered at 375x1242, seed 0",
            data={"dataset": "synthetic", "split": "synthetic", "height": 192, "width": 640,
                  "frame_offsets": STORED_OFFSETS, "use_stereo": True, "intrinsics": "calib",
                  "image_ext": ".jpg",
                  "synthetic": WorldConfig(drives=4, frames=100, height=375, width=1242, seed=0)}),
    ]

    def _source_dir(self, dl_manager: tfds.download.DownloadManager) -> str:
        """A temporary folder the world is rendered into (removed with the builder)."""
        del dl_manager
        world = tempfile.mkdtemp(prefix="md2tf_synthetic_world_")
        weakref.finalize(self, shutil.rmtree, world, True)
        return world


def get_builder(name: str, data_dir: str, **overrides) -> Md2tfBuilder:
    """The builder ``<builder>/<config>`` (e.g. ``md2tf_kitti/eigen_zhou_640x192``).

    Args:
      name: a registered builder and config name (a ``tfds:`` prefix is accepted).
      data_dir: the TFDS data directory to prepare into.
      **overrides: `DataConfig` fields replacing the config's (e.g. ``image_ext=".png"`` for PNG
        sources; the prepared content does not depend on it apart from JPEG artefacts).

    Raises:
      ValueError: naming the registered builders or configs, for an unknown name.
    """
    builder_name, config_name = prepared.parse_name(name)
    classes = {cls.name: cls for cls in (Md2tfKitti, Md2tfKittiOdom, Md2tfSynthetic, Md2tfFolder)}
    if builder_name not in classes:
        raise ValueError(f"unknown builder {builder_name!r}; md2tf registers {sorted(classes)}")
    cls = classes[builder_name]
    configs = {c.name: c for c in cls.BUILDER_CONFIGS}
    if config_name not in configs:
        raise ValueError(f"unknown config {config_name!r} of {builder_name}; one of {sorted(configs)}")
    config = configs[config_name]
    if overrides:
        config = dataclasses.replace(config, data={**config.data, **overrides})
    return cls(config=config, data_dir=data_dir)
