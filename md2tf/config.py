"""Frozen, validated configuration objects: the one place where every setting is written.

Each field of the dataclasses below is declared with :func:`setting`: its type, its default (the
paper's, Monodepth2 ICCV 2019 Sec. 4, where the paper has one), its help text and, where needed,
the allowed choices and older or paper-style flag names. ``md2tf.flags`` generates the command-line
flags of each entry point from these fields by one rule (`flag_name`: the field's name, prefixed for a
config nested below a command's sub-configs: ``--synthetic_drives``), so a new option is one field
here. Every ``__post_init__`` checks invariants, so a bad combination fails at start-up with
a message naming the flag, not hours into training; ``<run_dir>/config.json`` (``to_dict``) replays a
run by itself (``from_dict``).

This module must not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A setting or a combination of settings is invalid; the message names the flag."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def setting(default: Any = dataclasses.MISSING, help: str = "", *, choices: tuple | None = None,  # noqa: A002
            aliases: tuple[str, ...] = (), unprefixed_aliases: tuple[str, ...] = (),
            finite: bool = True, resumable: bool = False) -> Any:
    """Declares one config field: default, help text, allowed choices and flag aliases.

    Args:
      default: the default value (immutable: tuples, not lists).
      help: one-line help text shown by ``--help``.
      choices: allowed values (an enum flag); checked in ``__post_init__``.
      aliases: other flag names that set this field (the paper's / earlier names); named by the
        same rule as the field (`flag_name`), so a nested config's aliases get its prefix too.
      unprefixed_aliases: flag names taken as written, never prefixed: the names the fields of a
        nested config had before they were nested (``--frame_stride`` for ``video.frame_stride``).
      finite: float fields only: reject NaN and infinities (default True).
      resumable: a resumed run may take another value than the run's ``config.json`` (how long and
        how fast it trains, what it logs and saves, where files are). Default False: a change is
        taken to alter the networks, the data or the objective and stops the resume
        (`changed_settings`).
    """
    return field(default=default, metadata={"help": help, "choices": choices, "aliases": aliases,
                                            "unprefixed_aliases": unprefixed_aliases,
                                            "finite": finite, "resumable": resumable})


@dataclass(frozen=True)
class SettingChange:
    """One setting whose value differs between two configs (`changed_settings`).

    Attributes:
      name: the setting's flag name (`flag_name`: ``height`` for ``--height``, ``synthetic_drives``
        for ``data.synthetic.drives``).
      recorded: the value in the first config (e.g. a run's ``config.json``).
      now: the value in the second config.
      resumable: whether the field is declared ``setting(..., resumable=True)``.
    """

    name: str
    recorded: Any
    now: Any
    resumable: bool


def flag_name(path: tuple[str, ...], name: str) -> str:
    """The flag of field (or alias) ``name`` of the config reached from a command's config by ``path``.

    The one naming rule of every command's flags: the fields of the command's config and of its
    direct sub-configs are flags of their own name; a config nested deeper adds the names of the
    fields that nest it below the first level as a prefix.

    Args:
      path: the field names leading from the command's config to the field's config: ``()`` for the
        command's own fields, ``("data",)`` for ``DataConfig``'s in training, ``("data",
        "synthetic")`` for the synthetic world's in training, ``("world",)`` in the generator.

    Returns:
      ``height`` for ``(("data",), "height")``, ``synthetic_drives`` for ``(("data", "synthetic"),
      "drives")``, ``drives`` for ``(("world",), "drives")``.
    """
    return "_".join((*path[1:], name))


def changed_settings(recorded: Any, now: Any, path: tuple[str, ...] = ()) -> list[SettingChange]:
    """The fields, nested configs flattened in declaration order, whose values differ.

    Args:
      recorded, now: two instances of one config dataclass (a command's config).
      path: where they are nested in the command's config (`flag_name`); ``()`` for the command's.

    Returns:
      One `SettingChange` per differing field, named by its flag, with its ``resumable`` declaration.
    """
    changes = []
    for f in dataclasses.fields(recorded):
        a, b = getattr(recorded, f.name), getattr(now, f.name)
        if dataclasses.is_dataclass(a):
            changes += changed_settings(a, b, (*path, f.name))
        elif a != b:
            changes.append(SettingChange(flag_name(path, f.name), a, b,
                                         f.metadata.get("resumable", False)))
    return changes


def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved type}`` of a config dataclass (annotations are strings here)."""
    return typing.get_type_hints(cls)


def _validate_fields(config: Any) -> None:
    """Checks the declared choices and finiteness of every field of ``config``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        flag = " / ".join(f"--{n}" for n in (f.name, *f.metadata.get("aliases", ())))
        choices = f.metadata.get("choices")
        if choices is not None:
            values = value if isinstance(value, tuple) else (value,)
            bad = [v for v in values if v not in choices]
            _check(not bad, f"{flag} must be one of {', '.join(map(str, choices))}; got {value!r}")
        if f.metadata.get("finite", True) and isinstance(value, float):
            _check(math.isfinite(value), f"{flag} must be a finite number, got {value}")


class ConfigBase:
    """Base of the config dataclasses: generic field checks, then the class's own ``validate``."""

    def __post_init__(self) -> None:
        _validate_fields(self)
        self.validate()

    def validate(self) -> None:
        """Cross-field invariants of the concrete config (override)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Any:
        """Inverse of ``to_dict`` (see `config_from_dict`)."""
        return config_from_dict(cls, values)


def config_from_dict(cls: type, values: dict) -> Any:
    """Rebuilds a config dataclass from ``to_dict`` output: JSON lists become tuples, nested configs
    are rebuilt; an unknown key is an error naming it.
    """
    types = field_types(cls)
    unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
    _check(not unknown, f"unknown {cls.__name__} keys in config: {sorted(unknown)}")
    kwargs = {}
    for name, value in values.items():
        kind = types[name]
        if dataclasses.is_dataclass(kind):
            value = config_from_dict(kind, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


#: The depth network's output range ``(min_depth, max_depth)`` in training units (paper Sec. 4: 0.1
#: and 100): `ModelConfig`'s defaults, and the range of a network built without a config.
DEPTH_RANGE = (0.1, 100.0)


#: The depth decoder's channels at scales 0..4 (paper Table 5): `ModelConfig.decoder_channels`' default.
DECODER_CHANNELS = (16, 32, 64, 128, 256)


def check_depth_range(min_depth: float, max_depth: float, names: str = "min_depth < max_depth") -> None:
    """Raises `ConfigError` (a ValueError) unless ``0 < min_depth < max_depth``.

    Args:
      min_depth, max_depth: the range.
      names: how the message names them (e.g. ``--min_depth < --max_depth``).
    """
    _check(0 < min_depth < max_depth, f"need 0 < {names}, got {min_depth}, {max_depth}")


#: The KITTI rig (Geiger et al., IJRR 2013) the synthetic world copies by default: stereo baseline
#: and camera height above the road, in metres.
KITTI_BASELINE_M = 0.54
KITTI_CAMERA_HEIGHT_M = 1.65
#: Octaves of the synthetic world's value-noise texture (0.3 cycles/m, x2.5 per octave: up to 29
#: cycles/m).
NOISE_OCTAVES = 6


@dataclass(frozen=True)
class WorldConfig(ConfigBase):
    """The built-in synthetic world (`md2tf.data.synthetic`): every setting that changes its files.

    Nested as ``DataConfig.synthetic`` (training flags ``--synthetic_drives``, ...) and as the
    generator's ``world`` (``python -m md2tf.data.synthetic --drives``, ...). The image size and
    format may be left open (0, ""): `resolved` fills them in before rendering, and the world on
    disk records the resolved values.
    """

    drives: int = setting(4, "Number of drives (sequences), rendered on first use.")
    frames: int = setting(100, "Frames per drive (>= 3: targets need both neighbours).")
    height: int = setting(0, "Image height in pixels; 0 = the network input height in training, "
                          "KITTI's 375 for python -m md2tf.data.synthetic.")
    width: int = setting(0, "Image width in pixels; 0 = the network input width in training, KITTI's "
                         "1242 for python -m md2tf.data.synthetic.")
    seed: int = setting(0, "Master seed: the world is a deterministic function of these settings, and "
                        "another seed gives other drives (e.g. to pretrain on data disjoint from the "
                        "test drive).")
    ext: str = setting("", "Image format: png (lossless) or jpg (quality 92, 4:2:0 like KITTI's JPEGs "
                       "as the paper used them); empty = --image_ext in training, png for python -m "
                       "md2tf.data.synthetic.", choices=("", "png", "jpg"))
    date: str = setting("2019_10_27", "The <date> folder name (YYYY_MM_DD).")
    baseline: float = setting(KITTI_BASELINE_M, "Stereo baseline in metres (camera 03 is +baseline "
                              "along x of camera 02).")
    camera_height: float = setting(KITTI_CAMERA_HEIGHT_M, "Height of the cameras above the ground in "
                                   "metres.")
    lidar_beams: int = setting(64, "Number of lidar beams (64 like the HDL-64E).")
    lidar_azimuth_step_deg: float = setting(0.2, "Horizontal angular step of the lidar in degrees.")
    lidar: bool = setting(True, "Write velodyne_points (off: none).")
    odometry: bool = setting(True, "Also write a KITTI odometry view (odometry/sequences, symlinks) and "
                             "the synthetic_odom split.")
    texture_contrast: float = setting(1.0, "Amplitude of every surface's noise texture (0 = untextured "
                                      "albedo, road markings, slabs and windows stay; 2 = twice the "
                                      "contrast).")
    texture_octaves: int = setting(NOISE_OCTAVES, "Octaves of every surface's noise texture, from 0.3 "
                                   "cycles/m up, x2.5 each (6 = up to 29 cycles/m, fine detail at every "
                                   "distance; 2 = up to 0.75 cycles/m, only blotches of a metre and more).")
    speed_variation: float = setting(0.0, "Smooth fluctuation of the vehicle's speed as a fraction of it "
                                     "(0 = piecewise-constant cruising speeds with ramps and stops; 0.2 = "
                                     "up to +-20 %, over periods of 2-6 s as in traffic).")
    fov_deg: float = setting(0.0, "Horizontal field of view of the cameras in degrees, square pixels "
                             "(fx = fy = W / (2 tan(fov / 2))); 0 = KITTI's camera resized to the image "
                             "(about 81 degrees, fy from KITTI's aspect ratio).")
    principal_offset_x: float = setting(0.0, "Principal point's offset from the image centre along x, "
                                        "as a fraction of the width (0 = centred).")
    principal_offset_y: float = setting(0.0, "Principal point's offset from the image centre along y, "
                                        "as a fraction of the height (0 = centred).")
    pitch_deg: float = setting(0.0, "Amplitude in degrees of the vehicle's pitching (suspension over "
                               "bumps and when braking, periods of 1-3 s); 0 = the cameras only yaw. "
                               "Pitch makes a camera's fy observable to --intrinsics=learned.")
    pan_deg: float = setting(0.0, "Amplitude in degrees of the camera's panning about the vertical, on "
                             "top of the vehicle's heading (a handheld or head-mounted camera; periods of "
                             "1-3 s); 0 = the camera looks along the heading. Rotation between frames is "
                             "what determines the focal length for --intrinsics=learned.")

    def validate(self) -> None:
        # Flags are named as in python -m md2tf.data.synthetic; md2tf.flags prefixes them for
        # the commands where the world is nested deeper (--drives -> --synthetic_drives).
        _check(self.drives >= 1, f"--drives must be >= 1, got {self.drives}")
        _check(self.frames >= 3, f"--frames must be >= 3 (targets need both neighbours), got {self.frames}")
        _check(self.height == 0 or self.height >= 8,
               f"--height must be 0 (the default size) or >= 8, got {self.height}")
        _check(self.width == 0 or self.width >= 8,
               f"--width must be 0 (the default size) or >= 8, got {self.width}")
        _check(len(self.date) == 10 and self.date[4] == "_" and self.date[7] == "_",
               f"--date must look like YYYY_MM_DD, got {self.date!r}")
        _check(self.baseline > 0, f"--baseline must be > 0 metres, got {self.baseline}")
        _check(self.camera_height > 0.2, f"--camera_height must be > 0.2 metres, got {self.camera_height}")
        _check(self.lidar_beams >= 1, f"--lidar_beams must be >= 1, got {self.lidar_beams}")
        _check(self.lidar_azimuth_step_deg > 0,
               f"--lidar_azimuth_step_deg must be > 0, got {self.lidar_azimuth_step_deg}")
        _check(0.0 <= self.texture_contrast <= 5.0,
               f"--texture_contrast must lie in [0, 5], got {self.texture_contrast}")
        _check(1 <= self.texture_octaves <= NOISE_OCTAVES,
               f"--texture_octaves must lie in [1, {NOISE_OCTAVES}], got {self.texture_octaves}")
        _check(0.0 <= self.speed_variation < 1.0,
               f"--speed_variation must lie in [0, 1), got {self.speed_variation}")
        _check(self.fov_deg == 0.0 or 10.0 <= self.fov_deg <= 150.0,
               f"--fov_deg must be 0 (KITTI's camera) or lie in [10, 150], got {self.fov_deg}")
        for axis in ("x", "y"):
            offset = getattr(self, f"principal_offset_{axis}")
            _check(abs(offset) <= 0.25, f"--principal_offset_{axis} must lie in [-0.25, 0.25], got {offset}")
        _check(0.0 <= self.pitch_deg <= 10.0, f"--pitch_deg must lie in [0, 10], got {self.pitch_deg}")
        _check(0.0 <= self.pan_deg <= 30.0, f"--pan_deg must lie in [0, 30], got {self.pan_deg}")

    def resolved(self, height: int, width: int, ext: str) -> WorldConfig:
        """The world as rendered: an open image size or format (0, "") taken from the arguments.

        Args:
          height, width: the image size in pixels where the world's is 0 (training: the network
            input size).
          ext: the image format where the world's is "" (``png``, ``jpg``; a leading dot, as in
            ``--image_ext``, is dropped).
        """
        return dataclasses.replace(self, height=self.height or height, width=self.width or width,
                                   ext=self.ext or ext.lstrip("."))


@dataclass(frozen=True)
class VideoConfig(ConfigBase):
    """How ``--dataset=video`` decodes video files into frame folders (`md2tf.data.datasets.video`).

    Nested as ``DataConfig.video``: flags ``--video_frame_stride``, ..., which also answer to the
    names they had before (``--frame_stride``, ``--target_fps``, ``--static_threshold``).
    """

    frame_stride: int = setting(1, "Keep every n-th decoded frame (3 turns a 30 fps video into KITTI's "
                                "10 Hz).", unprefixed_aliases=("frame_stride",))
    target_fps: float = setting(0.0, "Frame rate to subsample each video to (stride = round(video fps "
                                "/ target_fps)); 0 = use the frame stride.",
                                unprefixed_aliases=("target_fps",))
    static_threshold: float = setting(0.005, "Drop static frames, cutting each video where the median "
                                      "absolute grey difference of consecutive kept frames (64 px wide "
                                      "thumbnails, [0, 1]) is below this; 0 keeps all.",
                                      unprefixed_aliases=("static_threshold",))
    cache_dir: str = setting("", "Where the decoded frames go (one folder per decoding setting); empty "
                             "= <data_dir>/.md2tf_frames.", resumable=True)

    def validate(self) -> None:
        # Named by their own flag names, prefixed by md2tf.flags (--frame_stride -> --video_frame_stride).
        _check(self.frame_stride >= 1, f"--frame_stride must be >= 1, got {self.frame_stride}")
        _check(self.target_fps >= 0, f"--target_fps must be >= 0 (0 = off), got {self.target_fps}")
        _check(self.target_fps == 0 or self.frame_stride == 1, "give --target_fps or --frame_stride, not both")
        _check(self.static_threshold >= 0,
               f"--static_threshold must be >= 0 (0 = keep every frame), got {self.static_threshold}")


#: Horizontal field of view (degrees) of the start K of an uncalibrated camera with
#: ``--intrinsics=learned`` (square pixels, principal point at the centre).
DEFAULT_FOV_DEG = 60.0

SYNTHETIC_DATA_DIR = "data_cache/synthetic"  # where the synthetic world is generated by default


@dataclass(frozen=True)
class DataConfig(ConfigBase):
    """What the input pipeline reads and how it prepares samples.

    The shuffling / augmentation seed and determinism are ``TrainConfig.seed`` / ``deterministic``.
    """

    dataset: str = setting("synthetic", "Training data, a name registered in md2tf.data.datasets: kitti "
                           "(raw, split files), kitti_odom, synthetic (the built-in world, generated on "
                           "first use into --data_dir), folder (a folder of video frames), video (video files, "
                           "decoded once into frame folders), or a prepared TFDS dataset tfds:<builder>/<config> "
                           "(scripts/prepare_tfds.py; --data_dir = the TFDS data_dir).")
    data_dir: str = setting("", "Dataset root (KITTI raw layout for kitti and synthetic). Empty for "
                            "--dataset=synthetic means data_cache/synthetic.",
                            aliases=("synthetic_cache_dir",), resumable=True)
    split: str = setting("", "Split name: files are read from <splits_dir>/<split>/{train,val}_files.txt "
                         "(eigen_zhou, eigen_full, odom, ...); empty = the dataset's own (kitti: "
                         "eigen_zhou, kitti_odom: odom, synthetic: synthetic).")
    splits_dir: str = setting("", "Directory holding the split folders. Empty = <data_dir>/splits.",
                              resumable=True)
    height: int = setting(192, "Network input height in pixels (multiple of 32).")
    width: int = setting(640, "Network input width in pixels (multiple of 32).")
    frame_offsets: tuple[int, ...] = setting((0, -1, 1), "Temporal frames relative to the target, "
                                             "starting with 0; '0' alone = stereo only.")
    use_stereo: bool = setting(False, "Add the other stereo camera at the same time as a source (S / MS).")
    stereo_baseline: float = setting(0.1, "|x| of the nominal stereo translation in training units "
                                     "(0.1 in the paper; the rig's metres give metric depth).")
    image_ext: str = setting(".jpg", "Image file extension (.jpg as the paper).", choices=(".jpg", ".png"))
    intrinsics: str = setting("fixed", "The paper's averaged KITTI K (fixed), per-drive P_rect or "
                              "intrinsics.json (calib), or one K per camera trained with the networks "
                              "(learned: Gordon et al. ICCV 2019 Sec. 3; starts from the dataset's K, "
                              "else a 60 degree horizontal field of view, centred principal point).",
                              choices=("fixed", "calib", "learned"))
    intrinsics_start_fov: float = setting(
        0.0, "--intrinsics=learned: start every camera at this horizontal field of view in degrees "
        "(square pixels, centred principal point) instead of the dataset's K; 0 = the dataset's K.")
    speed_source: str = setting("", "Distance travelled between frames, for --speed_weight: gt = the "
                                "dataset's own (the synthetic world's and kitti_odom's poses, a folder's "
                                "poses.txt, KITTI raw's oxts forward velocity), file = speeds.csv (time s, "
                                "speed m/s) in each frame folder or <video name>.speeds.csv beside each "
                                "video; empty = none.", choices=("", "gt", "file"))
    fps: float = setting(10.0, "--dataset=folder: frame rate of the frames (frame i at i / fps seconds) "
                         "where no times.txt lies beside them; for speeds.csv.")
    flip_prob: float = setting(0.5, "Horizontal flip probability.")
    color_aug_prob: float = setting(0.5, "Colour augmentation probability.")
    num_parallel_calls: int = setting(-1, "tf.data parallelism (-1 = AUTOTUNE).", resumable=True)
    shuffle_buffer: int = setting(512, "tf.data shuffle buffer size.")
    gt_height: int = setting(375, "Height of the GT depth carried in training batches (metrics).")
    gt_width: int = setting(1242, "Width of the GT depth carried in training batches (metrics).")
    skip_corrupt_images: bool = setting(
        False, "Drop (log and count) training samples with a corrupt or truncated image instead of "
        "stopping with an error naming the file.", resumable=True)
    synthetic: WorldConfig = field(default_factory=WorldConfig)  # flags --synthetic_<field>
    video: VideoConfig = field(default_factory=VideoConfig)  # flags --video_<field>

    def validate(self) -> None:
        if self.dataset == "synthetic" and not self.data_dir:  # recorded resolved in config.json
            object.__setattr__(self, "data_dir", SYNTHETIC_DATA_DIR)
        _check(self.height > 0 and self.height % 32 == 0, f"--height must be a positive multiple of 32, got {self.height}")
        _check(self.width > 0 and self.width % 32 == 0, f"--width must be a positive multiple of 32, got {self.width}")
        _check(0 in self.frame_offsets, f"--frame_offsets must contain 0 (the target frame), got {self.frame_offsets}")
        _check(self.frame_offsets[0] == 0, f"--frame_offsets must start with 0, got {self.frame_offsets}")
        _check(len(set(self.frame_offsets)) == len(self.frame_offsets), f"--frame_offsets has duplicates: {self.frame_offsets}")
        _check(len(self.frame_offsets) > 1 or self.use_stereo, "no source frame: give --frame_offsets besides 0 or --use_stereo")
        _check(0.0 <= self.flip_prob <= 1.0 and 0.0 <= self.color_aug_prob <= 1.0,
               "--flip_prob and --color_aug_prob must lie in [0, 1]")
        _check(self.stereo_baseline > 0, f"--stereo_baseline must be > 0, got {self.stereo_baseline}")
        _check(self.fps > 0, f"--fps must be > 0, got {self.fps}")
        _check(self.intrinsics_start_fov == 0.0 or 10.0 <= self.intrinsics_start_fov <= 150.0,
               f"--intrinsics_start_fov must be 0 (the dataset's K) or lie in [10, 150] degrees, got "
               f"{self.intrinsics_start_fov}")
        _check(self.intrinsics_start_fov == 0.0 or self.intrinsics == "learned",
               f"--intrinsics_start_fov={self.intrinsics_start_fov:g} needs --intrinsics=learned, got "
               f"--intrinsics={self.intrinsics}")
        _check(self.synthetic.ext in ("", self.image_ext.lstrip(".")),
               f"--synthetic_ext={self.synthetic.ext} contradicts --image_ext={self.image_ext}: leave "
               "--synthetic_ext empty, the world's images then follow --image_ext")

    @property
    def temporal_offsets(self) -> tuple[int, ...]:
        """Source frame offsets (non-zero entries of ``frame_offsets``), in the order given."""
        return tuple(o for o in self.frame_offsets if o != 0)

    @property
    def num_sources(self) -> int:
        """S: temporal sources first (``temporal_offsets`` order), then the stereo partner if used."""
        return len(self.temporal_offsets) + int(self.use_stereo)


#: Encoder architectures (``--encoder``, ``--pose_encoder``): the paper's ResNet (depth from
#: ``--num_layers`` / ``--pose_num_layers``) or Keras' MobileNetV3 (Howard et al., "Searching for
#: MobileNetV3", ICCV 2019), phone-class trunks (`md2tf.models.mobilenet_encoder`), in the paper's
#: form (hard-swish, squeeze-excite) or its "minimalistic" form (ReLU, no squeeze-excite, 3x3 kernels
#: only), which runs whole in XNNPACK's int8 kernels.
ENCODERS = ("resnet", "mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_large_minimalistic",
            "mobilenet_v3_small_minimalistic")
#: ``--encoder_weights`` value for Keras' published MobileNetV3 ImageNet weights.
KERAS_IMAGENET = "imagenet"
#: File suffixes of Keras weights (``--encoder_weights`` for MobileNetV3 encoders).
KERAS_WEIGHT_SUFFIXES = (".h5", ".keras")


def encoder_architecture(encoder: str, num_layers: int) -> str:
    """One name for an encoder: ``resnet18`` / ``resnet50`` for ResNets, else the `ENCODERS` name."""
    return f"resnet{num_layers}" if encoder == "resnet" else encoder


def is_keras_weights(encoder_weights: str) -> bool:
    """Whether ``--encoder_weights`` names Keras weights (``imagenet``, ``.h5``, ``.weights.h5``,
    ``.keras``), the kind MobileNetV3 encoders load; torchvision ``.pth``/``.npz`` are ResNet's."""
    value = encoder_weights.strip().lower()
    return value == KERAS_IMAGENET or value.endswith(KERAS_WEIGHT_SUFFIXES)


@dataclass(frozen=True)
class ModelConfig(ConfigBase):
    """Depth and pose networks (paper Sec. 4 "Implementation details")."""

    encoder: str = setting("resnet", "Depth encoder: resnet (the paper's; depth from --num_layers) or "
                           "Keras' MobileNetV3 large/small, phone-class trunks, with hard-swish and "
                           "squeeze-excite or *_minimalistic (ReLU, no squeeze-excite: the fast int8 "
                           "one). Measured: docs/benchmarks.md.", choices=ENCODERS)
    num_layers: int = setting(18, "ResNet depth of the depth encoder (--encoder=resnet).",
                              choices=(18, 34, 50))
    pose_encoder: str = setting("resnet", "Pose encoder, on a 6-channel image pair: resnet (the paper's "
                                "separate ResNet; depth from --pose_num_layers) or a MobileNetV3.",
                                choices=ENCODERS)
    pose_num_layers: int = setting(18, "ResNet depth of the separate pose encoder "
                                   "(--pose_encoder=resnet).", choices=(18, 50))
    encoder_weights: str = setting("none", "ImageNet weights of the encoders: 'none' (scratch); for "
                                   "ResNets a local torchvision .pth/.npz; for MobileNetV3 'imagenet' "
                                   "(Keras' published weights, fetched by Keras into ~/.keras/models) "
                                   "or a local Keras .h5/.weights.h5/.keras file. A pose encoder's "
                                   "first conv takes them repeated over the 2 images and halved.",
                                   resumable=True)
    decoder_channels: tuple[int, ...] = setting(
        DECODER_CHANNELS, "Depth decoder channels at scales 0..4 (paper Table 5: 16,32,64,128,256); "
        "8,16,32,64,128 is the phone-class decoder, about a third of the decoder's FLOPs.")
    init: str = setting("torch", "Initialisers of the decoders: PyTorch's defaults (as the paper "
                        "trained) or Keras'.", choices=("torch", "keras"))
    scales: tuple[int, ...] = setting((0, 1, 2, 3), "Decoder output scales 0..n-1 (scale s is 1/2^s "
                                      "resolution).")
    init_disparity: float | None = setting(
        None, "Initial sigmoid disparity p in (0, 1) of the depth decoder (biases start at logit(p)); "
        "unset = reference init (~0.5, depth ~2*min_depth). Stereo from scratch needs a far start, "
        "e.g. 0.02: from 0.5 the stereo warp starts ~90 px off and never finds the basin.")
    min_depth: float = setting(DEPTH_RANGE[0], "The depth network's output range: depth at sigmoid "
                               "disparity 1 (training units; paper Sec. 4: 0.1).")
    max_depth: float = setting(DEPTH_RANGE[1], "Depth at sigmoid disparity 0 (training units; paper "
                               "Sec. 4: 100).")

    def validate(self) -> None:
        check_depth_range(self.min_depth, self.max_depth, "--min_depth < --max_depth")
        self.check_encoder_weights(self.encoder, "--encoder")
        _check(self.init_disparity is None or 0.0 < self.init_disparity < 1.0,
               f"--init_disparity must lie in (0, 1), got {self.init_disparity}")
        _check(len(self.decoder_channels) == 5 and min(self.decoder_channels) >= 1,
               f"--decoder_channels must be 5 positive integers (scales 0..4), got "
               f"{','.join(map(str, self.decoder_channels))}")
        _check(tuple(self.scales) == tuple(range(len(self.scales))) and 1 <= len(self.scales) <= 4,
               f"--scales must be 0..n-1 with n in 1..4, got {self.scales}")

    def check_encoder_weights(self, encoder: str, flag: str) -> None:
        """Raises `ConfigError` unless ``--encoder_weights`` is of the kind ``encoder`` loads.

        Args:
          encoder: an `ENCODERS` name (``self.encoder`` or ``self.pose_encoder``).
          flag: how the message names it (``--encoder`` / ``--pose_encoder``).
        """
        weights = self.encoder_weights.strip()
        if weights.lower() in ("", "none"):
            return
        if encoder == "resnet":
            _check(not is_keras_weights(weights),
                   f"--encoder_weights={weights} is Keras MobileNetV3 weights, but {flag}=resnet takes "
                   "a local torchvision .pth/.npz (or --encoder_weights=none)")
        else:
            _check(is_keras_weights(weights),
                   f"--encoder_weights={weights}: {flag}={encoder} takes 'imagenet' or a local Keras "
                   ".h5/.weights.h5/.keras file (torchvision .pth/.npz are for --encoder=resnet)")

    @property
    def depth_architecture(self) -> str:
        """`encoder_architecture` of the depth encoder (``resnet18``, ``mobilenet_v3_large``, ...)."""
        return encoder_architecture(self.encoder, self.num_layers)

    @property
    def pose_architecture(self) -> str:
        """`encoder_architecture` of the pose encoder."""
        return encoder_architecture(self.pose_encoder, self.pose_num_layers)


@dataclass(frozen=True)
class LossConfig(ConfigBase):
    """The self-supervised objective (paper Sec. 3, Eqs. 1-4, and the Table 2 ablations).

    The depth range the loss warps with belongs to the network (``ModelConfig.min_depth``).
    """

    ssim_weight: float = setting(0.85, "alpha of alpha * (1 - SSIM) / 2 + (1 - alpha) * L1 (Eq. 1).")
    use_ssim: bool = setting(True, "Use SSIM in the photometric error (--nouse_ssim = L1 only).",
                             aliases=("ssim",))
    min_reprojection: bool = setting(True, "Per-pixel minimum reprojection (Eq. 4); "
                                     "--nomin_reprojection = average (the ablation baseline).")
    automask: bool = setting(True, "Auto-masking of stationary pixels (Eq. 5).")
    automask_warmup_steps: int = setting(0, "Train the first N steps without auto-masking (validation "
                                         "keeps it). Auto-masking caps every pixel's error at the "
                                         "unwarped source's, so a pose network that is wrong by more "
                                         "than the true motion gets no gradient: footage that rotates "
                                         "more than about a degree per frame (a handheld camera) needs "
                                         "it. 0 = the paper's (auto-masking from the first step). Not "
                                         "with a whole-step --jit_compile (--jit_compile_loss runs it).")
    full_res_multiscale: bool = setting(True, "Upsample every scale's disparity to full resolution before "
                                        "warping; --nofull_res_multiscale = per-scale warping (v1).")
    smoothness_weight: float = setting(1e-3, "Edge-aware smoothness weight lambda (Eq. 3), divided by 2^s "
                                       "at scale s.", aliases=("disparity_smoothness",))
    identity_noise_std: float = setting(1e-5, "Std of the tie-break noise added to the auto-mask's "
                                        "identity error.")
    speed_weight: float = setting(0.0, "Weight of the velocity loss | ||t_pred|| - distance | over the pose "
                                  "pairs (Guizilini et al., PackNet-SfM, CVPR 2020, Sec. 3.3: 0.1), which "
                                  "makes depth and poses metric; the distances come from --speed_source. "
                                  "0 = off.")
    distill_weight: float = setting(0.0, "Weight of the distillation loss mean | log depth - log teacher "
                                    "depth | over the scales (md2tf.losses.distillation): the depth "
                                    "network follows the frozen teacher of --distill_from, e.g. a phone-"
                                    "class network a trained ResNet18. 0 = off.")

    def validate(self) -> None:
        _check(self.speed_weight >= 0, f"--speed_weight must be >= 0 (0 = off), got {self.speed_weight}")
        _check(self.distill_weight >= 0, f"--distill_weight must be >= 0 (0 = off), got {self.distill_weight}")
        _check(0.0 <= self.ssim_weight <= 1.0, f"--ssim_weight must lie in [0, 1], got {self.ssim_weight}")
        _check(self.smoothness_weight >= 0, f"--smoothness_weight must be >= 0, got {self.smoothness_weight}")
        _check(self.identity_noise_std >= 0, "--identity_noise_std must be >= 0")
        _check(self.automask_warmup_steps >= 0,
               f"--automask_warmup_steps must be >= 0 (0 = off), got {self.automask_warmup_steps}")
        _check(self.automask or not self.automask_warmup_steps,
               f"--automask_warmup_steps={self.automask_warmup_steps} needs --automask (it delays it)")


@dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """Optimisation, logging and checkpointing."""

    run_dir: str = setting("", "Run directory: checkpoints/, tensorboard/, flags.txt, config.json.",
                           resumable=True)
    batch_size: int = setting(12, "Global batch size (split over replicas).")
    learning_rate: float = setting(1e-4, "Adam learning rate of the first phase.", resumable=True)
    num_epochs: int = setting(20, "Number of epochs.", resumable=True)
    lr_decay_epochs: tuple[int, ...] = setting((15,), "Epochs at whose start the LR is multiplied by "
                                               "--lr_decay_factor (15 = the paper's 15 + 5).",
                                               resumable=True)
    lr_decay_factor: float = setting(0.1, "LR multiplier at each --lr_decay_epochs entry.",
                                     resumable=True)
    intrinsics_lr_scale: float = setting(30.0, "--intrinsics=learned: K learns this many times as fast "
                                         "as the networks (same schedule); changing it on resume would "
                                         "change the stored K.")
    steps_per_epoch: int = setting(0, "Steps per epoch; 0 = one pass over the training split.")
    max_steps: int = setting(0, "Stop after this many steps in total (0 = no limit).",
                             resumable=True)
    val_steps: int = setting(0, "Validation batches per epoch (0 = the whole validation split).",
                             resumable=True)
    log_every: int = setting(250, "Scalar summary / console log period in steps.", resumable=True)
    image_log_every: int = setting(2000, "Image summary period in steps (0 = never).",
                                   resumable=True)
    save_every_steps: int = setting(2000, "Checkpoint period in steps (plus every epoch).",
                                    resumable=True)
    keep_checkpoints: int = setting(1, "Latest checkpoints kept (networks + optimizer state, ~172 MB "
                                    "for ResNet18 S); the best validation epoch's networks are kept "
                                    "besides in <run_dir>/best/. 2 or more also keeps a fallback for a "
                                    "damaged newest checkpoint.", resumable=True)
    resume: bool = setting(True, "Continue from the latest checkpoint in --run_dir; settings that "
                           "change the networks or the data must equal the run's config.json.",
                           resumable=True)
    jit_compile: bool = setting(False, "Compile the training step with XLA.", resumable=True)
    jit_compile_loss: bool = setting(False, "Compile only the self-supervised loss (forward and backward) "
                                     "with XLA; the networks keep the default kernels (oneDNN on CPU). "
                                     "Same results within float32 rounding; faster steps, slower first "
                                     "step (configs/base.flags turns it on).", resumable=True)
    mixed_precision: str = setting("float32", "Keras mixed precision policy (geometry and losses stay "
                                   "float32).", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    seed: int = setting(0, "Seed of weight init, data order / augmentation and loss noise.")
    deterministic: bool = setting(False, "Deterministic ops and data order (bitwise-reproducible resume; "
                                  "the commands then start TF with Eigen's CPU kernels, not oneDNN's, "
                                  "unless TF_ENABLE_ONEDNN_OPTS is set).", resumable=True)
    max_nonfinite_steps: int = setting(10, "Stop (after saving) when this many consecutive steps have a "
                                       "non-finite loss.", resumable=True)
    profile_steps: tuple[int, ...] = setting((), "Two step numbers 'start,stop' to capture a profiler "
                                             "trace.", resumable=True)
    validate_every_epoch: bool = setting(True, "Run a validation pass after each epoch.",
                                         resumable=True)
    init_checkpoint: str = setting("", "Run dir or checkpoint prefix whose networks (encoders and "
                                   "decoders) initialise this run, e.g. for 1024x320 fine-tuning.",
                                   resumable=True)
    encoder_init: str = setting("", "Run dir or checkpoint prefix whose encoders (depth, and the 6-channel "
                                "pose encoder when both runs have one) initialise this run; decoders start "
                                "fresh. The stand-in for ImageNet-initialised encoders (paper Sec. 4) "
                                "where none exist, e.g. an MS run on other data; replaces "
                                "--encoder_weights.", resumable=True)
    distill_from: str = setting("", "Run dir or checkpoint prefix of a trained depth network (any encoder) "
                                "whose depth the network learns to follow, with --distill_weight: the "
                                "teacher, frozen, sees the same augmented images.")
    pose_source: str = setting("network", "Source-frame poses of the photometric loss: the pose network "
                               "(the paper's M/MS), or gt = the dataset's known camera poses (synthetic, "
                               "kitti_odom, a folder with poses.txt): no pose network is built, and the "
                               "poses' metric scale gives metric depth; rotation = the known poses' "
                               "rotations (a gyro's or a SLAM's) with the pose network's translation: "
                               "they pin a learned K's focal lengths (docs/data.md).",
                               choices=("network", "gt", "rotation"))
    strategy: str = setting("auto", "tf.distribute strategy: auto = multi_worker if TF_CONFIG is set, "
                            "mirrored over >1 GPU, else default.",
                            choices=("auto", "default", "mirrored", "multi_worker"), resumable=True)
    progress_bar: bool = setting(True, "Show a console progress bar.", resumable=True)

    def validate(self) -> None:
        _check(self.val_steps >= 0 and self.steps_per_epoch >= 0 and self.max_steps >= 0,
               "--val_steps, --steps_per_epoch and --max_steps must be >= 0")
        _check(self.log_every > 0, f"--log_every must be > 0, got {self.log_every}")
        _check(self.keep_checkpoints > 0, f"--keep_checkpoints must be > 0, got {self.keep_checkpoints}")
        _check(not self.profile_steps or (len(self.profile_steps) == 2
                                          and self.profile_steps[0] < self.profile_steps[1]),
               f"--profile_steps must be two steps 'start,stop' with start < stop, got {self.profile_steps}")
        _check(self.batch_size > 0, f"--batch_size must be > 0, got {self.batch_size}")
        _check(self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}")
        _check(self.intrinsics_lr_scale > 0, f"--intrinsics_lr_scale must be > 0, got {self.intrinsics_lr_scale}")
        _check(self.num_epochs > 0, f"--num_epochs must be > 0, got {self.num_epochs}")
        _check(list(self.lr_decay_epochs) == sorted(self.lr_decay_epochs), "--lr_decay_epochs must be sorted")
        _check(not (self.init_checkpoint and self.encoder_init),
               "--init_checkpoint and --encoder_init are exclusive (the first restores the encoders too), "
               f"got {self.init_checkpoint!r} and {self.encoder_init!r}")


@dataclass(frozen=True)
class ExperimentConfig(ConfigBase):
    """Everything a training run needs; written to ``<run_dir>/config.json``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if self.use_pose_net:  # the same --encoder_weights initialise the pose encoder
            self.model.check_encoder_weights(self.model.pose_encoder, "--pose_encoder")
        # A rectified stereo pair moves a pixel by fx * baseline / depth along its row and nothing
        # else: fy, cx and cy drop out of the warp and an fx error is absorbed by the depth.
        _check(self.data.intrinsics != "learned" or bool(self.data.temporal_offsets),
               "--intrinsics=learned needs temporal source frames (--frame_offsets=0,-1,1): a rectified "
               "stereo pair alone does not determine K (a focal-length error is absorbed by the depth); "
               "give the calibration (--intrinsics=calib or fixed)")
        _check(self.train.pose_source == "network" or bool(self.data.temporal_offsets),
               f"--pose_source={self.train.pose_source} needs temporal source frames (--frame_offsets besides 0), got "
               f"--frame_offsets={','.join(map(str, self.data.frame_offsets))}")
        if self.loss.speed_weight > 0:
            _check(bool(self.data.speed_source),
                   f"--speed_weight={self.loss.speed_weight:g} needs --speed_source (gt or file)")
            _check(self.use_pose_net, "--speed_weight supervises the pose network's translation: it needs "
                   "temporal source frames (--frame_offsets besides 0) and --pose_source=network or rotation")
        _check(not (self.train.jit_compile and self.loss.automask_warmup_steps),
               "--automask_warmup_steps does not run in a whole-step --jit_compile (XLA fails to "
               "differentiate the switch between the masked and unmasked loss); use --jit_compile_loss, "
               "which compiles the loss alone")
        _check((self.loss.distill_weight > 0) == bool(self.train.distill_from),
               f"--distill_weight ({self.loss.distill_weight:g}) and --distill_from "
               f"({self.train.distill_from!r}) go together: a teacher and a weight > 0, or neither")

    @property
    def use_pose_net(self) -> bool:
        """Stereo-only runs (frame_offsets == (0,)) and ``--pose_source=gt`` build no pose network."""
        return bool(self.data.temporal_offsets) and self.train.pose_source != "gt"

    @classmethod
    def from_dict(cls, values: dict) -> ExperimentConfig:
        """Inverse of ``to_dict``; ``min_depth`` / ``max_depth`` found under ``loss`` (run directories
        written before the network owned its depth range) are read into ``model``."""
        values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
        loss, model = values.setdefault("loss", {}), values.setdefault("model", {})
        for key in ("min_depth", "max_depth"):
            if key in loss:
                model.setdefault(key, loss.pop(key))
        return config_from_dict(cls, values)



# --- export / predict -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportConfig(ConfigBase):
    """``python -m md2tf.export``: which checkpoint, which formats, how to calibrate int8."""

    checkpoint: str = setting("", "Run directory or checkpoint prefix to export.")
    out_dir: str = setting("", "Output directory (SavedModel, .tflite files, model_card.json); must be "
                           "absent or empty unless --overwrite.", aliases=("out",))
    formats: tuple[str, ...] = setting(("all",), "Comma-separated export formats (the names in "
                                       "md2tf.deploy.formats.FORMATS, e.g. saved_model,tflite_int8,"
                                       "tflite_pose; checked there before anything is loaded), or all = "
                                       "every depth format.")
    overwrite: bool = setting(False, "Replace a non-empty --out_dir as a whole.")
    post_process: bool = setting(False, "Bake the flip post-processing (two forward passes, paper "
                                 "Sec. 4) into the exported graph.")
    metric_scale: float = setting(0.0, "Depth multiplier; 0 = auto (real_baseline_m / stereo_baseline "
                                  "for stereo-trained models, else 1).")
    real_baseline_m: float = setting(0.54, "True stereo baseline of the rig in metres (KITTI 0.54).")
    calibration: str = setting("auto", "int8 calibration data: auto (the run's training data if "
                               "readable, else structured random frames), structured, or a folder of "
                               "images.")
    num_calibration_images: int = setting(64, "Frames used to calibrate int8.")
    calibration_seed: int = setting(0, "Seed of the random draw of the int8 calibration frames (the "
                                    "same seed gives the same frames, in the same order, and the same "
                                    "int8 model).")
    accuracy: bool = setting(True, "Score every exported variant on the test split of the run's "
                             "dataset (its evaluation split with ground truth; GT exported on the fly "
                             "when missing) and record it in the model card; --noaccuracy skips.")
    accuracy_split: str = setting("", "Score on this test split instead of the dataset's own (needs "
                                  "test_files.txt and gt_depths.npz in <accuracy_splits_dir>/<split>/).")
    accuracy_data_dir: str = setting("", "Test images root; empty = the run's data_dir.")
    accuracy_splits_dir: str = setting("", "Split folders; empty = the run's splits_dir, else "
                                       "<accuracy_data_dir>/splits.")
    height: int = setting(0, "Input height of the exported graph (multiple of 32; 0 = training size).",
                          aliases=("export_height",))
    width: int = setting(0, "Input width of the exported graph (multiple of 32; 0 = training size).",
                         aliases=("export_width",))

    def validate(self) -> None:
        _check(self.height >= 0 and self.height % 32 == 0,
               f"--height / --export_height must be 0 (training size) or a multiple of 32, got {self.height}")
        _check(self.width >= 0 and self.width % 32 == 0,
               f"--width / --export_width must be 0 (training size) or a multiple of 32, got {self.width}")
        _check(bool(self.checkpoint), "--checkpoint is required (run directory or checkpoint prefix)")
        _check(bool(self.out_dir), "--out is required (output directory)")
        _check(any(f.strip() for f in self.formats), "--formats is empty (use all, or a list of "
               "formats such as saved_model,tflite_int8)")
        _check(self.metric_scale >= 0, f"--metric_scale must be >= 0 (0 = auto), got {self.metric_scale}")
        _check(self.real_baseline_m > 0, f"--real_baseline_m must be > 0, got {self.real_baseline_m}")
        _check(self.num_calibration_images > 0,
               f"--num_calibration_images must be > 0, got {self.num_calibration_images}")


@dataclass(frozen=True)
class PredictConfig(ConfigBase):
    """``python -m md2tf.predict``: model, inputs and what to write."""

    model: str = setting("", "Checkpoint / run directory, SavedModel directory or .tflite file.")
    input: str = setting("", "An image file, a folder of images, an animated GIF or a video file "
                         "(.mp4 .mov .mkv .avi .webm .m4v).")
    out_dir: str = setting("", "Output directory for <name>_disp.png, <name>_disp.npy, <name>_depth.npy.",
                           aliases=("out",))
    post_process: bool = setting(False, "Flip post-processing (checkpoints only; exported models carry "
                                 "their own choice).")
    save_npy: bool = setting(True, "Write .npy disparity (disp_to_depth scaled) and depth at the "
                             "original size.")
    save_color: bool = setting(True, "Write magma-coloured disparity PNGs.")
    vmax_percentile: float = setting(95.0, "Disparity percentile mapped to the brightest colour.")
    num_threads: int = setting(0, "TFLite interpreter threads (0 = LiteRT default).")
    frame_stride: int = setting(1, "Video input: predict every n-th frame.")
    max_frames: int = setting(0, "Video input: at most this many frames (0 = all).")
    video_out: str = setting("", "Side-by-side video (input | coloured disparity); empty = "
                             "<out>/<name>_depth.mp4 for a video input, none for images.")
    save_frames: bool = setting(False, "Video input: also write the per-frame files (PNG, .npy) that "
                                "images get.")
    point_cloud: bool = setting(False, "Write <name>.ply per frame: coloured points in the camera frame "
                                "(x right, y down, z forward; the depth's units), binary PLY.")
    intrinsics_file: str = setting("", "--point_cloud, --camera_height: intrinsics.json of the camera "
                                   "(as for --dataset=folder); empty = intrinsics.json beside --input, "
                                   "else the K the model learned.")
    camera_height: float = setting(0.0, "The camera's height above a flat road in metres (KITTI: 1.65): "
                                   "scale depth (.npy, .ply) to metres from the ground plane fitted to "
                                   "each frame, smoothed over a video's frames; 0 = off (the model's "
                                   "units).")

    def validate(self) -> None:
        _check(bool(self.model), "--model is required (checkpoint, SavedModel dir or .tflite)")
        _check(bool(self.input), "--input is required (image, folder, animated GIF or video file)")
        _check(self.frame_stride >= 1, f"--frame_stride must be >= 1, got {self.frame_stride}")
        _check(self.max_frames >= 0, f"--max_frames must be >= 0 (0 = all), got {self.max_frames}")
        _check(bool(self.out_dir), "--out is required (output directory)")
        _check(0 < self.vmax_percentile <= 100,
               f"--vmax_percentile must lie in (0, 100], got {self.vmax_percentile}")
        _check(self.num_threads >= 0, f"--num_threads must be >= 0, got {self.num_threads}")
        _check(self.camera_height >= 0, f"--camera_height must be >= 0 metres (0 = off), got "
               f"{self.camera_height}")


# --- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig(ConfigBase):
    """``python -m md2tf.evaluate``: what to evaluate, against which GT, with which protocol."""

    models: tuple[str, ...] = setting((), "Comma-separated run dirs, checkpoint prefixes, SavedModel dirs, "
                                      ".tflite files or .npy files of precomputed scaled disparities.")
    names: tuple[str, ...] = setting((), "Display names, one per --models entry (default: file names).")
    task: str = setting("depth", "Eigen-style depth metrics, or ATE of the pose network on 5-frame "
                        "snippets.", choices=("depth", "odometry"))
    eval_split: str = setting("eigen", "Depth: split folder with test_files.txt (eigen, eigen_benchmark, "
                              "synthetic...). Odometry: odom_9 / odom_10 or a name used with --split_file.")
    data_dir: str = setting("", "Dataset root (KITTI raw layout; odometry layout for odom_*).")
    splits_dir: str = setting("", "Directory holding the split folders; empty = <data_dir>/splits.")
    gt_path: str = setting("", "GT .npz; empty = <splits_dir>/<eval_split>/gt_depths.npz.")
    eval_stereo: bool = setting(False, "Stereo-trained model: no median scaling, depth x 5.4.")
    scaling: str = setting("median", "Per-image median scaling, one global median-of-ratios scale, "
                           "none (metric models), or camera_height: per image from the ground plane "
                           "fitted to the prediction and --camera_height (no GT used).",
                           choices=("median", "global", "none", "camera_height"))
    camera_height: float = setting(KITTI_CAMERA_HEIGHT_M, "--scaling=camera_height: the camera's height "
                                   "above the road in metres (KITTI: 1.65).")
    pred_depth_scale_factor: float = setting(1.0, "Multiplies predicted depth before scaling.")
    post_process: bool = setting(False, "Flip post-processing of the predictions (paper Sec. 4).")
    eval_eigen_to_benchmark: bool = setting(False, "Reorder .npy eigen predictions to the eigen_benchmark "
                                            "order with <splits_dir>/benchmark/eigen_to_benchmark_ids.npy.")
    batch_size: int = setting(16, "Images per forward pass.", aliases=("eval_batch_size",))
    image_ext: str = setting(".jpg", "Test image extension (.jpg as the paper evaluates).",
                             choices=(".jpg", ".png"))
    output_json: str = setting("", "Write the results as JSON here.")
    output_markdown: str = setting("", "Write the results as a markdown table here.")
    output_dir: str = setting("", "--eval_split=benchmark: write the KITTI depth benchmark submission "
                              "PNGs to <output_dir>/<model name>/ (no scores).")
    split_file: str = setting("", "Odometry: frame list (default <splits_dir>/odom/test_files_NN.txt).")
    poses_file: str = setting("", "Odometry: GT world_from_camera poses (default <data_dir>/poses/NN.txt).")
    snippet_length: int = setting(5, "Odometry: frames per ATE snippet.")
    pose_refine_steps: int = setting(0, "Odometry: also score each pose refined by this many Adam steps of "
                                     "photometric alignment with the depth network's depth (100 is the "
                                     "measured choice; 0 = the pose network alone).")
    pose_refine_lr: float = setting(5e-4, "Odometry: the alignment's Adam step (radians, and fractions of the "
                                    "frame's median depth).")
    pose_refine_length_only: bool = setting(False, "Odometry: refine only each step's length, keeping the pose "
                                            "network's rotation and direction of travel (for a pose network "
                                            "whose heading holds, e.g. trained with the auto-mask warm-up).")
    progress: bool = setting(True, "Show a progress bar.")
    allow_nonfinite: bool = setting(False, "Exit 0 even when a model has NaN/inf predictions (reported and "
                                    "excluded from the means); default: exit status 1.")

    def validate(self) -> None:
        _check(bool(self.models), "--models is required (checkpoints, SavedModels, .tflite or .npy files)")
        _check(not self.names or len(self.names) == len(self.models),
               f"--names needs one name per --models entry: {len(self.names)} vs {len(self.models)}")
        _check(not (self.eval_stereo and self.scaling in ("global", "camera_height")),
               f"--eval_stereo disables scaling: do not combine it with --scaling={self.scaling}")
        _check(self.camera_height > 0, f"--camera_height must be > 0 metres, got {self.camera_height}")
        _check(self.pred_depth_scale_factor > 0,
               f"--pred_depth_scale_factor must be > 0, got {self.pred_depth_scale_factor}")
        _check(self.batch_size > 0, f"--batch_size must be > 0, got {self.batch_size}")
        _check(self.snippet_length >= 2, f"--snippet_length must be >= 2, got {self.snippet_length}")
        _check(self.pose_refine_steps >= 0, f"--pose_refine_steps must be >= 0, got {self.pose_refine_steps}")
        _check(self.pose_refine_lr > 0, f"--pose_refine_lr must be > 0, got {self.pose_refine_lr}")
        _check(self.pose_refine_steps == 0 or self.task == "odometry",
               f"--pose_refine_steps refines odometry poses: it needs --task=odometry, got --task={self.task}")
        _check(self.pose_refine_steps > 0 or not self.pose_refine_length_only,
               "--pose_refine_length_only needs --pose_refine_steps > 0")


@dataclass(frozen=True)
class ExportGtConfig(ConfigBase):
    """``python -m md2tf.export_gt``: GT depth maps of a split's test files."""

    split: str = setting("eigen", "Split folder with test_files.txt.")
    data_dir: str = setting("", "Dataset root (KITTI raw layout).")
    splits_dir: str = setting("", "Directory holding the split folders; empty = <data_dir>/splits.")
    gt_source: str = setting("", "velodyne, png (depth-annotated), dense (synthetic depth_gt); empty = png "
                             "for eigen_benchmark, dense for synthetic, else velodyne.",
                             choices=("", "velodyne", "png", "dense"))
    output: str = setting("", "Output .npz; empty = <splits_dir>/<split>/gt_depths.npz.")

    def validate(self) -> None:
        _check(bool(self.data_dir), "--data_dir is required (dataset root in KITTI raw layout)")


# --- conversion -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvertConfig(ConfigBase):
    """``python -m md2tf.convert``: official PyTorch Monodepth2 weights -> an md2tf run directory."""

    model_dir: str = setting("", "Folder with encoder.pth, depth.pth [, pose_encoder.pth, pose.pth].")
    out_dir: str = setting("", "md2tf run directory to write.", aliases=("out",))
    height: int = setting(0, "Override the input height stored in encoder.pth (0 = keep).")
    width: int = setting(0, "Override the input width stored in encoder.pth (0 = keep).")
    no_pose: bool = setting(False, "Skip the pose network.")

    def validate(self) -> None:
        _check(bool(self.model_dir), "--model_dir is required (folder with encoder.pth and depth.pth)")
        _check(bool(self.out_dir), "--out_dir is required (run directory to write)")


@dataclass(frozen=True)
class ImagenetConvertConfig(ConfigBase):
    """``python -m md2tf.convert.imagenet``: torchvision ImageNet ResNet .pth -> portable .npz."""

    pth: str = setting("", "torchvision resnet*.pth file.")
    out_dir: str = setting("", "Output .npz file.", aliases=("out",))

    def validate(self) -> None:
        _check(bool(self.pth), "--pth is required (a torchvision resnet*.pth)")
        _check(bool(self.out_dir), "--out_dir is required (the .npz to write)")
