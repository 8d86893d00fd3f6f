"""``--dataset=folder``: training on your own video, a folder of frames with your camera's intrinsics.

Layout of ``--data_dir``::

    my_video/
      intrinsics.json          # {"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5, "units": "normalized"}
      000000.jpg 000001.jpg ...   # frames, sorted by file name = temporal order
      poses.txt                # optional camera poses, for --pose_source=gt (see below)

or one sub-folder per video (``my_videos/<clip>/*.jpg``, each with its own ``intrinsics.json`` or one
shared file at the top). Frames use ``--image_ext`` (``.jpg``/``.png``) and all frames of one folder
must have one size (checked before training, `check_frames`).

``intrinsics.json`` gives ``fx, fy, cx, cy`` either ``"normalized"`` (fx and cx divided by the image
width, fy and cy by its height, as in the paper) or in ``"pixels"`` of the stored frames (divided by the
frame size here). Without the file, ``--intrinsics=fixed`` falls back to the paper's KITTI K, which is
only sensible for a KITTI-like camera, and says so in one warning before training. The horizontal
flip keeps a fixed or calibrated K (a centred principal point is assumed, as in the paper's
training), so a principal point far from the centre calls for ``--flip_prob=0`` there.

``--intrinsics=learned`` trains one K per frame folder (`Sample.camera`: the folder relative to
``--data_dir``, or its own name for a single folder) from its ``intrinsics.json`` when there is one,
else from a 60 degree horizontal field of view with a centred principal point
(`default_normalized_intrinsics`), and mirrors the principal point with a
flip. The run writes the result to ``<run_dir>/intrinsics_learned.json``: for one camera exactly
this file's format (``{"fx", "fy", "cx", "cy", "units": "normalized"}``, reusable as
``intrinsics.json``); for several, ``{"cameras": {<camera>: {"fx", ...}, ...}}``, each entry in that
format (`read_intrinsics` takes ``camera=`` to read one).

``poses.txt`` (optional, per frame folder) gives the camera's known poses, e.g. from GPS/IMU or
SLAM, in the KITTI odometry format (`md2tf.data.poses`): one line of 12 numbers per frame in sorted
frame order, the row-major 3x4 camera-to-world ``[R | t]`` in metres (camera axes x right, y down,
z forward). Its line count and values are validated; ``--pose_source=gt`` trains with these poses
instead of the pose network, and their metric scale gives metric depth.

``speeds.csv`` (optional, per frame folder; ``--speed_source=file``) gives the camera's speed over
time (`md2tf.data.speeds`): the velocity loss (``--speed_weight``) then learns metres from the
distances travelled between frames, at each frame's time from ``times.txt`` beside the frames (one
number of seconds per frame) or ``i / --fps``. Known poses give the distances too.

Subsets: of the usable targets (all of their temporal neighbours exist), frames whose position is
5 mod 10 form ``val``, the others ``train``; ``test`` is all of them. Stereo is not
available for a folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from md2tf.config import DEFAULT_FOV_DEG, DataConfig
from md2tf.data import poses as poses_lib
from md2tf.data import speeds as speeds_lib
from md2tf.data.datasets.base import FileDataset, check_subset, missing_data_error
from md2tf.data.kitti_layout import FIXED_INTRINSICS_NORMALIZED
from md2tf.data.sample import Sample

logger = logging.getLogger(__name__)

INTRINSICS_FILE = "intrinsics.json"
POSES_FILE = "poses.txt"
SPEEDS_FILE = "speeds.csv"  # --speed_source=file: time (s), speed (m/s); md2tf.data.speeds
TIMES_FILE = "times.txt"  # each frame's time in seconds (a decoded video writes it); else i / --fps
VAL_EVERY = 10


#: Largest plausible normalised focal length (fx / width, fy / height): 10 is a ~6 degree field of
#: view, far narrower than any video camera; a larger value is almost surely given in pixels.
MAX_NORMALIZED_FOCAL = 10.0


def _number(path: str, data: dict, key: str) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: {key!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{path}: {key!r} must be finite, got {value}")
    return value


def read_intrinsics(path: str, image_size: tuple[int, int] | None = None,
                    camera: str | None = None) -> np.ndarray:
    """Reads and validates ``intrinsics.json`` into a normalised ``[3, 3]`` K.

    The checks (each message names the file and the key): ``fx, fy, cx, cy`` are finite numbers,
    focal lengths are positive, the principal point lies inside the image, and normalised focal
    lengths are at most `MAX_NORMALIZED_FOCAL` (pixel values without ``"units": "pixels"`` would
    otherwise train silently on a wrong camera).

    Args:
      path: the JSON file with keys ``fx, fy, cx, cy`` and ``units`` (``normalized`` | ``pixels``).
      image_size: ``(width, height)`` of the frames in pixels, required for ``pixels``.
      camera: the entry to read from a multi-camera file (``{"cameras": {<camera>: {...}}}``, as
        ``intrinsics_learned.json`` of a run with several cameras); None: a single-camera file, or
        a multi-camera file with exactly one entry.

    Returns:
      float32 ``[3, 3]`` normalised K (fx, cx divided by the width; fy, cy by the height).

    Raises:
      ValueError: naming the file (and the key) for invalid JSON, missing keys, non-numbers, non-finite
        or non-positive focal lengths, a principal point outside the image, unknown units or an
        implausibly large normalised focal length.
    """
    with open(path, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with fx, fy, cx, cy and units")
    if isinstance(data.get("cameras"), dict):
        cameras = data["cameras"]
        if camera is None and len(cameras) != 1:
            raise ValueError(f"{path}: {len(cameras)} cameras ({', '.join(sorted(cameras))}); say which")
        key = next(iter(cameras)) if camera is None else camera
        if key not in cameras or not isinstance(cameras[key], dict):
            raise ValueError(f"{path}: no camera {key!r} (has {', '.join(sorted(cameras))})")
        data = cameras[key]
    missing = [k for k in ("fx", "fy", "cx", "cy") if k not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}; expected fx, fy, cx, cy and units")
    units = data.get("units", "normalized")
    values = {k: _number(path, data, k) for k in ("fx", "fy", "cx", "cy")}
    for key in ("fx", "fy"):
        if values[key] <= 0:
            raise ValueError(f"{path}: {key!r} must be > 0, got {values[key]}")
    if units == "pixels":
        if image_size is None:
            raise ValueError(f"{path}: units 'pixels' need the frame size")
        width, height = image_size
        extent = {"fx": width, "cx": width, "fy": height, "cy": height}
        values = {k: v / extent[k] for k, v in values.items()}
    elif units != "normalized":
        raise ValueError(f"{path}: units must be 'normalized' or 'pixels', got {units!r}")
    hint = ' (values in pixels need "units": "pixels")' if units == "normalized" else ""
    for key in ("fx", "fy"):
        if values[key] > MAX_NORMALIZED_FOCAL:
            raise ValueError(f"{path}: normalised {key!r} = {values[key]:.4g} is implausible (expected "
                             f"<= {MAX_NORMALIZED_FOCAL:g}){hint}")
    for key in ("cx", "cy"):
        if not 0.0 <= values[key] <= 1.0:
            size = "width" if key == "cx" else "height"
            raise ValueError(f"{path}: {key!r} puts the principal point outside the image ({key} / "
                             f"{size} = {values[key]:.4g}, expected 0..1){hint}")
    fx, fy, cx, cy = (values[k] for k in ("fx", "fy", "cx", "cy"))
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float32)


def write_intrinsics(path: str, cameras: Mapping[str, Sequence[float]]) -> None:
    """Writes normalised intrinsics in the format `read_intrinsics` reads (atomically).

    One camera: ``{"fx", "fy", "cx", "cy", "units": "normalized"}``, usable as ``intrinsics.json``
    as it is. Several: ``{"cameras": {<camera>: {...}, ...}}``, one such entry per camera.

    Args:
      path: the JSON file to write.
      cameras: camera name -> normalised ``(fx, fy, cx, cy)`` (fx, cx / width; fy, cy / height).
    """
    entries = {name: {**{k: float(v) for k, v in zip(("fx", "fy", "cx", "cy"), values, strict=True)},
                      "units": "normalized"} for name, values in cameras.items()}
    data = next(iter(entries.values())) if len(entries) == 1 else {"cameras": entries}
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def default_normalized_intrinsics(height: int, width: int, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """The start K of an uncalibrated camera: ``fov_deg`` horizontal field of view, square pixels,
    principal point at the centre.

    ``fx = W / (2 tan(fov / 2))`` pixels, so ``fx / W = 1 / (2 tan(fov / 2))`` (0.866 at 60 degrees)
    and ``fy / H = fx / H``.

    Args:
      height, width: the frames' size in pixels (only the aspect ratio matters).
      fov_deg: horizontal field of view in degrees.

    Returns:
      float32 ``[3, 3]`` normalised K (row 0 / W, row 1 / H).
    """
    fx = 1.0 / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    fy = fx * width / height
    return np.array([[fx, 0.0, 0.5], [0.0, fy, 0.5], [0.0, 0.0, 1.0]], np.float32)


def _frame_folders(root: str, ext: str) -> list[str]:
    def has_frames(d):
        return any(n.lower().endswith(ext) for n in os.listdir(d))

    if has_frames(root):
        return [root]
    subs = sorted(os.path.join(root, d) for d in os.listdir(root)
                  if os.path.isdir(os.path.join(root, d)))
    return [d for d in subs if has_frames(d)]


def _frame_paths(folder: str, ext: str) -> list[str]:
    """The frames of one frame folder, in temporal (sorted file name) order."""
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.lower().endswith(ext)]


def check_frame_sizes(paths: Sequence[str]) -> tuple[int, int] | None:
    """The one size of a sequence's frames, read from the image headers (nothing is decoded).

    Neighbouring frames are warped onto each other with one K, so a frame of another size or
    aspect ratio (a crop, a rotated phone frame) would train on wrong geometry without a word.
    Unreadable files are skipped here: the input pipeline names them (or skips them with
    ``--skip_corrupt_images``).

    Args:
      paths: the frames of one sequence.

    Returns:
      ``(width, height)`` in pixels, or None when no frame is readable.

    Raises:
      ValueError: naming the first frame whose size differs from the first frame's, both sizes
        and the folder.
    """
    first = None
    for path in paths:
        try:
            with Image.open(path) as image:
                size = image.size
        except OSError:
            continue
        if first is None:
            first = (path, size)
        elif size != first[1]:
            (w, h), (fw, fh) = size, first[1]
            raise ValueError(f"{path}: a {w}x{h} frame among {fw}x{fh} frames in "
                             f"{os.path.dirname(path)} (from {os.path.basename(first[0])} on); "
                             "give every frame of a sequence one size and aspect ratio (resize or "
                             "crop them alike)")
    return None if first is None else first[1]


def warn_fallback_intrinsics(what: str, where: str) -> None:
    """Logs one warning: ``what`` has no ``intrinsics.json``, so the paper's KITTI K trains.

    Args:
      what: the frames without a K, as the user names them (e.g. ``--data_dir=my_video``).
      where: where the user's ``intrinsics.json`` belongs (e.g. ``beside the frames``).
    """
    K = FIXED_INTRINSICS_NORMALIZED
    fx, fy, cx, cy = (float(K[i, j]) for i, j in ((0, 0), (1, 1), (0, 2), (1, 2)))
    logger.warning(
        "%s: no %s, so training uses the paper's KITTI K (--intrinsics=fixed: normalised fx %g, "
        "fy %g, cx %g, cy %g), which is right only for a KITTI-like camera; put your camera's K %s "
        'as {"fx": ..., "fy": ..., "cx": ..., "cy": ..., "units": "pixels"} (or "normalized": fx, '
        "cx divided by the width, fy, cy by the height), or pass --intrinsics=calib to require it",
        what, INTRINSICS_FILE, fx, fy, cx, cy, where)


def check_frames(root: str, image_ext: str, intrinsics: str = "fixed") -> None:
    """Checks a frame folder once before training (`FrameFolder.prepare`).

    Every frame folder must hold frames of one size (`check_frame_sizes`). With
    ``intrinsics='fixed'``, frame folders without an ``intrinsics.json`` (their own or one at
    ``root``) get one warning (`warn_fallback_intrinsics`).

    Args:
      root: a folder of frames, or of sub-folders of frames.
      image_ext: frame extension.
      intrinsics: ``fixed`` or ``calib`` (``intrinsics.json`` required: `folder_samples` refuses
        a folder without one).

    Raises:
      ValueError: frames of different sizes in one folder (naming the first odd frame).
    """
    folders = _frame_folders(root, image_ext)
    for folder in folders:
        check_frame_sizes(_frame_paths(folder, image_ext))
    if intrinsics != "fixed" or os.path.isfile(os.path.join(root, INTRINSICS_FILE)):
        return
    without = [f for f in folders if not os.path.isfile(os.path.join(f, INTRINSICS_FILE))]
    if without == [root]:
        warn_fallback_intrinsics(f"--data_dir={root}", "beside the frames")
    elif without:
        warn_fallback_intrinsics(f"{len(without)} of the {len(folders)} frame folders of "
                                 f"--data_dir={root} (first {without[0]})",
                                 "in each of them, or one for all in --data_dir,")


def frame_times(folder: str, count: int, fps: float) -> np.ndarray:
    """``[count]`` seconds of a folder's frames (sorted order): ``times.txt`` beside them (one number
    per frame, increasing; a decoded video writes it), else ``i / fps``.

    Raises:
      ValueError: naming ``times.txt`` when its count, values or order are wrong.
    """
    path = os.path.join(folder, TIMES_FILE)
    if not os.path.isfile(path):
        return np.arange(count, dtype=np.float64) / fps
    try:
        times = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as error:
        raise ValueError(f"{path}: not one number per line ({error})") from None
    if times.shape != (count,) or not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
        raise ValueError(f"{path}: expected {count} increasing finite times (one per frame), got "
                         f"{times.size} values")
    return times


def folder_samples(root: str, *, temporal_offsets: Sequence[int] = (-1, 1), image_ext: str = ".jpg",
                   intrinsics: str = "fixed", subset: str = "train",
                   speeds_file: Callable[[str], str] | None = None, fps: float = 10.0,
                   camera_of: Callable[[str], str] | None = None) -> list[Sample]:
    """Samples of a frame folder (see the module docstring).

    Args:
      root: a folder of frames, or of sub-folders of frames.
      temporal_offsets: source offsets in frames (sorted-name order).
      image_ext: frame extension.
      intrinsics: ``fixed`` (fall back to the paper's K when no ``intrinsics.json``), ``calib``
        (``intrinsics.json`` required) or ``learned`` (the start K: ``intrinsics.json``, else
        `default_normalized_intrinsics`).
      subset: ``train``, ``val`` or ``test``.
      speeds_file: ``--speed_source=file``: frame folder -> its ``speeds.csv`` (distances travelled,
        `md2tf.data.speeds`, at `frame_times`); a file that does not exist leaves them unknown. None:
        distances from ``poses.txt`` where there is one.
      fps: frame rate where a folder has no ``times.txt``.
      camera_of: frame folder -> its camera's name (`Sample.camera`); None: the folder relative to
        ``root`` (its own name for a single folder). A decoded video names its clip, whose runs
        share one camera.

    Returns:
      Validated samples.

    Raises:
      ValueError: no frames, a missing ``intrinsics.json`` with ``intrinsics='calib'``, a bad
        intrinsics or ``poses.txt`` file (naming it), or no usable frame.
    """
    check_subset(subset)
    if not os.path.isdir(root):
        raise ValueError(f"--data_dir {root} is not a directory of frames")
    folders = _frame_folders(root, image_ext)
    if not folders:
        raise ValueError(f"no {image_ext} frames in {root} or its sub-folders")
    samples = []
    for folder in folders:
        paths = _frame_paths(folder, image_ext)
        K_file = next((p for p in (os.path.join(folder, INTRINSICS_FILE),
                                   os.path.join(root, INTRINSICS_FILE)) if os.path.isfile(p)), None)
        if K_file is not None:
            with Image.open(paths[0]) as image:
                K = read_intrinsics(K_file, image.size)
        elif intrinsics == "calib":
            raise ValueError(f"{folder}: no {INTRINSICS_FILE} (needed with --intrinsics=calib)")
        elif intrinsics == "learned":
            with Image.open(paths[0]) as image:
                width, height = image.size
            K = default_normalized_intrinsics(height, width, DEFAULT_FOV_DEG)
        else:
            K = FIXED_INTRINSICS_NORMALIZED
        poses_file = os.path.join(folder, POSES_FILE)
        world_from_camera = (poses_lib.read_poses_file(poses_file, len(paths))
                             if os.path.isfile(poses_file) else None)
        if camera_of is not None:
            camera = camera_of(folder)
        else:
            camera = (os.path.relpath(folder, root) if folder != root
                      else os.path.basename(os.path.normpath(os.path.abspath(root))))
        profile = times = None
        if speeds_file is not None and os.path.isfile(speeds_file(folder)):
            profile = speeds_lib.read_speeds_csv(speeds_file(folder))
            times = frame_times(folder, len(paths), fps)
        for i, path in enumerate(paths):
            if any(not 0 <= i + o < len(paths) for o in temporal_offsets):
                continue
            if subset != "test" and (i % VAL_EVERY == VAL_EVERY // 2) != (subset == "val"):
                continue
            sources = tuple(paths[i + o] for o in temporal_offsets)
            relative = (poses_lib.unknown_poses(len(temporal_offsets)) if world_from_camera is None
                        else poses_lib.relative_poses(world_from_camera, i, temporal_offsets))
            distance = (poses_lib.travelled(relative) if profile is None
                        else speeds_lib.frame_distances(profile, times, i, temporal_offsets))
            samples.append(Sample(path, sources, K, 1.0, "", os.path.relpath(path, root),
                                  temporal_source_from_target=relative, camera=camera,
                                  temporal_distance=distance))
    if not samples:
        raise ValueError(f"{root}: no usable {subset} frame (need neighbours {tuple(temporal_offsets)})")
    return samples


@dataclass(frozen=True)
class FrameFolder(FileDataset):
    """The `md2tf.data.datasets.base.Dataset` of a frame folder (module docstring); no depth GT."""

    name: str = "folder"
    layout: str = ("<data_dir>/<frame>.jpg (sorted by name) + intrinsics.json [+ poses.txt], or "
                   "<data_dir>/<clip>/<frame>.jpg per clip")
    eval_split: str = ""
    gt_sources: Mapping[str, str] = field(default_factory=dict)

    def check_layout(self, config: DataConfig) -> None:
        """See `md2tf.data.datasets.base.Dataset.check_layout`."""
        if not config.data_dir or not os.path.isdir(config.data_dir):
            raise missing_data_error(config, self.layout,
                                     "Put your video's frames there (see md2tf/data/datasets/folder.py)")

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """The frames are read as they are: only checked (`check_frames`), once per training.

        Raises:
          ValueError: as `check_frames`.
        """
        del is_chief, timeout_s, progress
        check_frames(config.data_dir, config.image_ext, config.intrinsics)

    def list_samples(self, config: DataConfig, subset: str) -> list[Sample]:
        """`folder_samples` of ``config.data_dir``.

        Raises:
          ValueError: with ``use_stereo`` (a folder has no stereo partner), and as `folder_samples`.
        """
        if config.use_stereo:
            raise ValueError("--use_stereo is not available with --dataset=folder (no stereo partner)")
        speeds = ((lambda folder: os.path.join(folder, SPEEDS_FILE)) if config.speed_source == "file"
                  else None)
        return folder_samples(config.data_dir, temporal_offsets=config.temporal_offsets,
                              image_ext=config.image_ext, intrinsics=config.intrinsics, subset=subset,
                              speeds_file=speeds, fps=config.fps)


DATASET = FrameFolder()
