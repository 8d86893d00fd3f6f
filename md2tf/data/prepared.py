"""``--dataset=tfds:<name>/<config>``: training and evaluation data read from a prepared TFDS dataset.

A prepared dataset (written by `md2tf.tfds.builders`, e.g. ``python scripts/prepare_tfds.py --name
md2tf_kitti/eigen_zhou_640x192 --manual_dir kitti_data --data_dir tfds_data``) lives in
``<data_dir>/<name>/<config>/<version>/``; ``--data_dir`` is the TFDS data directory. Reading needs
only those files: `PreparedDataset.examples` opens them with ``tfds.builder_from_directory``, sharded
per input pipeline by TFDS (``tfds.ReadConfig(input_context=...)``: by file, so prepare at least as
many shards as workers) and `PreparedDataset.read` decodes the frames the `DataConfig` asks for and
augments them at read time.

`PreparedDataset` implements the whole dataset protocol of `md2tf.data.datasets.base`. The frames
were decoded and resized (Lanczos-3, rounded to uint8) when the dataset was prepared; reading flips
after the resize (with the symmetric Lanczos kernel on pixel centres, flip-then-resize and
resize-then-flip agree to float precision) and applies the same colour jitter, intrinsics, stereo
transform and known poses as the file datasets (`md2tf.data.decoding.finish_sample`). TensorFlow
is imported by the reading methods only: the registry is read before TensorFlow starts.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from md2tf.config import DataConfig
from md2tf.data import poses
from md2tf.data.datasets.base import draw

if TYPE_CHECKING:  # the registry imports this module; TensorFlow only loads when data is read
    import tensorflow as tf

PREFIX = "tfds:"
#: md2tf subset -> TFDS split name.
SPLITS = {"train": "train", "val": "validation", "test": "test"}
#: Version of the stored layout (`md2tf.tfds.builders.Md2tfConfig.settings`).
FORMAT_VERSION = 1
#: The builder's settings, written by TFDS (``tfds.core.MetadataDict``) beside ``dataset_info.json``.
SETTINGS_FILE = "metadata.json"


def parse_name(name: str) -> tuple[str, str]:
    """``"tfds:md2tf_kitti/eigen_zhou_640x192"`` (prefix optional) -> ``("md2tf_kitti", "eigen_zhou_640x192")``.

    Raises:
      ValueError: naming ``--dataset`` unless the name is ``<builder>/<config>``.
    """
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    parts = bare.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"--dataset={name!r}: a prepared dataset is tfds:<builder>/<config>, e.g. "
                         "tfds:md2tf_kitti/eigen_zhou_640x192")
    return parts[0], parts[1]


def prepare_command(name: str, data_dir: str) -> str:
    """The command that prepares ``name`` into ``data_dir`` (for error messages)."""
    builder, config = parse_name(name)
    manual = "" if builder == "md2tf_synthetic" else " --manual_dir <source data>"
    return (f"python scripts/prepare_tfds.py --name {builder}/{config}{manual} "
            f"--data_dir {data_dir or '<tfds data_dir>'}")


def _version_key(path: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in os.path.basename(path).split("."))
    except ValueError:
        return (-1,)


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared TFDS dataset in the dataset registry (`md2tf.data.datasets.get_dataset`).

    Attributes:
      name: the ``--dataset`` value, ``tfds:<builder>/<config>``.
      eval_split: the source dataset's training-time metric protocol (builder ``md2tf_<source>``).
      gt_sources: none (``md2tf.export_gt`` reads the source data).
      layout: the expected ``data_dir`` layout.
    """

    name: str
    eval_split: str = ""
    gt_sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def layout(self) -> str:
        builder, config = parse_name(self.name)
        return f"<data_dir>/{builder}/{config}/<version>/ (a TFDS data directory)"

    def dataset_dir(self, data_dir: str) -> str | None:
        """The newest prepared version folder under ``data_dir``, or None."""
        builder, config = parse_name(self.name)
        root = os.path.expanduser(data_dir or os.path.join("~", "tensorflow_datasets"))
        found = [os.path.dirname(p) for p in
                 glob.glob(os.path.join(root, builder, config, "*", "dataset_info.json"))]
        return max(found, key=_version_key) if found else None

    def check_layout(self, config: DataConfig) -> None:
        """Raises a `ValueError` naming ``--data_dir`` and the prepare command if not prepared, or
        with ``--intrinsics=learned`` (stored examples do not record their camera yet)."""
        if config.intrinsics == "learned":
            raise ValueError(f"--intrinsics=learned is not available with a prepared TFDS dataset "
                             f"(--dataset={self.name}) yet: train from the source files instead")
        if self.dataset_dir(config.data_dir) is None:
            raise ValueError(
                f"--dataset={self.name}: not prepared in --data_dir={config.data_dir!r} (expected "
                f"{self.layout}); prepare it with `{prepare_command(self.name, config.data_dir)}`")

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """Nothing to do at training time (prepared datasets are written by the builders)."""
        del is_chief, timeout_s, progress
        self.check_layout(config)

    def read(self, config: DataConfig, subset: str, *, training: bool,
             input_context: tf.distribute.InputContext | None = None, seed: int = 0,
             deterministic: bool = False, skip_corrupt_images: bool = False,
             corrupt_counter: tf.Variable | None = None) -> tf.data.Dataset:
        """See `md2tf.data.datasets.base.Dataset.read`: the stored examples, decoded (module
        docstring). ``skip_corrupt_images`` does not apply: the frames were checked when stored."""
        from md2tf.data import decoding  # noqa: PLC0415  (TensorFlow: see the module docstring)

        del skip_corrupt_images, corrupt_counter
        indices = self.frame_indices(config, subset)
        ds = self.examples(config, subset, training=training, input_context=input_context, seed=seed)
        if training:
            ds = ds.shuffle(max(config.shuffle_buffer, 1), seed=seed, reshuffle_each_iteration=True)
        pipeline_id = input_context.input_pipeline_id if input_context is not None else 0
        return decoding.read_stored(ds, config, indices, training=training, seed=seed,
                                    pipeline_id=pipeline_id, deterministic=deterministic)

    def cameras(self, config: DataConfig) -> tuple[str, ...]:
        """See `md2tf.data.datasets.base.Dataset.cameras`: one camera (the examples do not record
        theirs), index 0."""
        del config
        return (self.name,)

    def start_intrinsics(self, config: DataConfig) -> np.ndarray:
        """Not available (`check_layout` refuses ``--intrinsics=learned``)."""
        self.check_layout(config)
        raise ValueError(f"--dataset={self.name}: no start intrinsics for --intrinsics=learned")

    def first_without_poses(self, config: DataConfig, subset: str) -> str | None:
        """See `md2tf.data.datasets.base.Dataset.first_without_poses`: a prepared dataset stores
        poses for all of its examples or none, so its first example decides."""
        for example in self.examples(config, subset, training=False).take(1):
            known = poses.has_poses(example["temporal_source_from_target"].numpy())
            return None if known else "example 0"
        return None

    def rig_baseline_m(self, config: DataConfig) -> float | None:
        """See `md2tf.data.datasets.base.Dataset.rig_baseline_m`: not stored with the examples."""
        del config
        return None

    def first_without_distances(self, config: DataConfig, subset: str) -> str | None:
        """See `md2tf.data.datasets.base.Dataset.first_without_distances`: a prepared dataset's
        distances are those of its stored poses."""
        return self.first_without_poses(config, subset)

    def draw_frames(self, config: DataConfig, subset: str, num: int,
                    seed: int = 0) -> tuple[list[np.ndarray], int]:
        """See `md2tf.data.datasets.base.Dataset.draw_frames`: the stored target frames (the
        prepared size) of the drawn examples."""
        import tensorflow as tf  # noqa: PLC0415  (see the module docstring)

        ds = self.examples(config, subset, training=False)
        count = int(ds.cardinality().numpy())
        if count < 0:
            count = int(ds.reduce(0, lambda n, _: n + 1).numpy())
        chosen = draw(count, num, seed)
        stored = {}
        wanted = set(chosen)
        for i, example in enumerate(ds):
            if i in wanted:
                stored[i] = tf.io.decode_image(example["frames"][0], channels=3,
                                               expand_animations=False).numpy()
                if len(stored) == len(wanted):
                    break
        return [stored[i] for i in chosen], count

    def settings(self, config: DataConfig) -> dict:
        """The builder settings stored with the dataset (size, frames, K, image format)."""
        self.check_layout(config)
        path = os.path.join(self.dataset_dir(config.data_dir), SETTINGS_FILE)
        if not os.path.isfile(path):
            raise ValueError(f"{path} is missing: not an md2tf prepared dataset (md2tf.tfds.builders)")
        with open(path) as f:
            settings = json.load(f)
        if settings.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format {settings.get('format_version')}, expected "
                             f"{FORMAT_VERSION}; prepare it again with "
                             f"`{prepare_command(self.name, config.data_dir)}`")
        return settings

    def frame_indices(self, config: DataConfig, subset: str) -> list[int]:
        """Which stored frames make the config's target + sources, checking the config fits.

        Stored frames: the target, the builder's temporal offsets, then the stereo partner (if any);
        ``test`` stores the target only.

        Raises:
          ValueError: naming the flags whose values the prepared dataset cannot serve.
        """
        s = self.settings(config)
        where = f"--dataset={self.name} (in {config.data_dir or '~/tensorflow_datasets'})"
        if (config.height, config.width) != (s["height"], s["width"]):
            raise ValueError(f"--height={config.height} --width={config.width} differ from {where}, "
                             f"prepared at {s['width']}x{s['height']}")
        if config.intrinsics != s["intrinsics"]:
            raise ValueError(f"--intrinsics={config.intrinsics}: {where} stores K from "
                             f"--intrinsics={s['intrinsics']}")
        if subset == "test":
            if config.num_sources:
                raise ValueError(f"{where}: the test split stores only the target frame; read it "
                                 "with --frame_offsets=0 and --nouse_stereo")
            return [0]
        stored = list(s["temporal_offsets"])
        missing = [o for o in config.temporal_offsets if o not in stored]
        if missing or (config.use_stereo and not s["stereo"]):
            have = ",".join(str(o) for o in [0, *stored]) + (" + stereo" if s["stereo"] else "")
            raise ValueError(f"--frame_offsets={','.join(map(str, config.frame_offsets))}"
                             f"{' --use_stereo' if config.use_stereo else ''}: {where} stores "
                             f"frames {have}")
        indices = [0] + [1 + stored.index(o) for o in config.temporal_offsets]
        return indices + ([1 + len(stored)] if config.use_stereo else [])

    def examples(self, config: DataConfig, subset: str, *, training: bool,
                 input_context: tf.distribute.InputContext | None = None,
                 seed: int = 0) -> tf.data.Dataset:
        """The stored examples of ``subset``, frames still encoded (``frames``: string ``[F]``).

        Args:
          config: data configuration (``data_dir`` = the TFDS data directory).
          subset: ``train``, ``val`` or ``test``.
          training: shuffle the file order (seeded, reshuffled every epoch).
          input_context: shards by file across input pipelines (TFDS).
          seed: file shuffle seed.

        Returns:
          A dataset of dicts: ``frames``, ``depth_gt`` (float32 ``[h, w]``, ``[0, 0]`` if unknown),
          ``name`` and the stored numeric sample fields (``intrinsics``, ``side_sign``, ...).
        """
        import tensorflow_datasets as tfds  # noqa: PLC0415  (heavy; only for prepared datasets)

        if subset not in SPLITS:
            raise ValueError(f"split must be train, val or test, got {subset!r}")
        builder = tfds.builder_from_directory(self.dataset_dir(config.data_dir))
        if SPLITS[subset] not in builder.info.splits:
            raise ValueError(f"--dataset={self.name} has no {SPLITS[subset]!r} split "
                             f"(has {sorted(builder.info.splits)})")
        # Evaluation reads one file after the other (split-file order); training interleaves 4.
        read_config = tfds.ReadConfig(
            input_context=input_context, shuffle_seed=int(seed), shuffle_reshuffle_each_iteration=True,
            interleave_cycle_length=4 if training else 1, try_autocache=False, skip_prefetch=True,
            enable_ordering_guard=False)
        return builder.as_dataset(split=SPLITS[subset], shuffle_files=training, read_config=read_config,
                                  decoders={"frames": tfds.decode.SkipDecoding()})

