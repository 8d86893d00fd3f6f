"""KITTI raw / odometry reader: file layout, calibration, intrinsics, stereo transform, validation.

Layouts (``data_dir`` is the dataset root):

* raw (and the built-in synthetic world): ``<data_dir>/<date>/<date>_drive_NNNN_sync/image_02|03/data/
  {index:010d}.jpg|png``; calibration ``<data_dir>/<date>/calib_cam_to_cam.txt``; optional dense GT
  ``<drive>/depth_gt/image_02|03/{index:010d}.npy`` (float32 metres, 0 = unknown), else the lidar
  scan ``<drive>/velodyne_points/data/{index:010d}.bin`` with ``calib_velo_to_cam.txt`` (projected
  in the input pipeline; GT is for training-time metrics only).
* odometry: ``<data_dir>/sequences/{seq:02d}/image_2|3/{index:06d}.jpg|png``; calibration
  ``<data_dir>/sequences/{seq:02d}/calib.txt`` (``P2``/``P3``).
* benchmark test images: ``<data_dir>/<folder>/{index:010d}.jpg|png``.

Side ``l`` is camera 2 (left colour camera), ``r`` camera 3.

Everything that can be checked before training is checked in `build_samples`: a missing image,
temporal neighbour, stereo partner or calibration file raises a `ValueError` naming the split file,
the line and the path. The code never downloads anything (see ``scripts/download_kitti.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image

from md2tf.data import poses as poses_lib
from md2tf.data import speeds as speeds_lib
from md2tf.data.sample import Sample
from md2tf.data.splits import SplitEntry, read_split

# The paper's fixed intrinsics, normalised by the image size (fx / W, fy / H, cx / W, cy / H): fx and
# fy are averages over the KITTI raw scenes, the principal point is deliberately centred
# (nianticlabs/monodepth2#308).
FIXED_INTRINSICS_NORMALIZED = np.array(
    [[0.58, 0.0, 0.5], [0.0, 1.92, 0.5], [0.0, 0.0, 1.0]], dtype=np.float32)

# Raw KITTI image size (W, H), used by the reference only to resize GT depth.
KITTI_FULL_RES_SHAPE = (1242, 375)


def other_side(side: str) -> str:
    """``"l"`` <-> ``"r"``."""
    if side not in ("l", "r"):
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    return "r" if side == "l" else "l"


def image_path(data_dir: str, entry: SplitEntry, offset: int = 0, side: str | None = None,
               ext: str = ".jpg") -> str:
    """Path of the image ``offset`` frames from ``entry`` on ``side`` (default: the entry's side).

    Args:
      data_dir: dataset root.
      entry: a parsed split line.
      offset: temporal offset in frames (e.g. -1, +1).
      side: ``"l"``/``"r"`` to override the entry's side (stereo partner).
      ext: ``".jpg"`` or ``".png"``.

    Returns:
      The file path (not checked for existence).
    """
    side = side or entry.side
    index = entry.frame_index + offset
    if entry.kind == "raw":
        camera = "image_02" if side == "l" else "image_03"
        return os.path.join(data_dir, entry.folder, camera, "data", f"{index:010d}{ext}")
    if entry.kind == "odom":
        camera = "image_2" if side == "l" else "image_3"
        return os.path.join(data_dir, "sequences", f"{int(entry.folder):02d}", camera,
                            f"{index:06d}{ext}")
    if entry.kind == "benchmark":
        return os.path.join(data_dir, entry.folder, f"{index:010d}{ext}")
    raise ValueError(f"unknown split entry kind {entry.kind!r}")


def calib_path(data_dir: str, entry: SplitEntry) -> str:
    """The calibration file of an entry's drive: ``calib_cam_to_cam.txt`` (raw) or ``calib.txt``."""
    if entry.kind == "raw":
        return os.path.join(data_dir, entry.folder.split("/")[0], "calib_cam_to_cam.txt")
    if entry.kind == "odom":
        return os.path.join(data_dir, "sequences", f"{int(entry.folder):02d}", "calib.txt")
    raise ValueError(f"{entry.where}: the benchmark format has no calibration file")


def depth_gt_path(data_dir: str, entry: SplitEntry) -> str:
    """Dense GT depth ``<drive>/depth_gt/image_02|03/{index:010d}.npy`` of a raw entry (may not exist)."""
    if entry.kind != "raw":
        return ""
    camera = "image_02" if entry.side == "l" else "image_03"
    return os.path.join(data_dir, entry.folder, "depth_gt", camera, f"{entry.frame_index:010d}.npy")


def velodyne_path(data_dir: str, entry: SplitEntry) -> str:
    """Lidar scan ``<drive>/velodyne_points/data/{index:010d}.bin`` of a raw entry (may not exist)."""
    if entry.kind != "raw":
        return ""
    return os.path.join(data_dir, entry.folder, "velodyne_points", "data",
                        f"{entry.frame_index:010d}.bin")


def require_calib_entry(calib: dict[str, np.ndarray], key: str, size: int, path: str) -> np.ndarray:
    """``calib[key]``, checked to hold ``size`` numbers.

    Raises:
      ValueError: naming ``path`` and the entry if it is missing or has the wrong size.
    """
    if key not in calib or calib[key].size != size:
        raise ValueError(f"{path}: needs {key} with {size} numbers")
    return calib[key]


def velo_calibration(calib_dir: str, side: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Float64 lidar -> pixel projection of camera 2/3 and its rectified image size.

    Args:
      calib_dir: KITTI ``<date>`` directory with ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt``.
      side: ``"l"`` (camera 2) or ``"r"`` (camera 3).

    Returns:
      ``(P [3, 4] float64, (H, W))``: ``P = P_rect_0X @ R_rect_00 @ velo_to_cam`` (pixels) and the
      ``S_rect_0X`` size, or ``None`` for the size when the file has no ``S_rect_0X``.

    Raises:
      FileNotFoundError: if a calibration file is missing.
      ValueError: naming the file of a missing or malformed entry.
    """
    cam_file = os.path.join(calib_dir, "calib_cam_to_cam.txt")
    velo_file = os.path.join(calib_dir, "calib_velo_to_cam.txt")
    cam, velo = read_calib_file(cam_file), read_calib_file(velo_file)
    camera = "02" if side == "l" else "03"
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = require_calib_entry(velo, "R", 9, velo_file).reshape(3, 3)
    velo_to_cam[:3, 3] = require_calib_entry(velo, "T", 3, velo_file)
    rect = np.eye(4)
    rect[:3, :3] = require_calib_entry(cam, "R_rect_00", 9, cam_file).reshape(3, 3)
    p_rect = require_calib_entry(cam, f"P_rect_{camera}", 12, cam_file).reshape(3, 4)
    size = cam.get(f"S_rect_{camera}")
    shape = None
    if size is not None and size.size == 2:
        width, height = size.astype(np.int32)
        shape = (int(height), int(width))
    return p_rect @ rect @ velo_to_cam, shape


def velo_to_image_projection(calib_dir: str, side: str) -> np.ndarray:
    """``P_rect_0X @ R_rect_00 @ velo_to_cam``: lidar points -> homogeneous pixels of camera 2/3.

    The third homogeneous coordinate is the rectified camera z (plus ``P_rect[2, 3]``, ~0), which is
    what the reference's training-time GT stores (``generate_depth_map(..., vel_depth=False)``).

    Args:
      calib_dir: KITTI ``<date>`` directory with ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt``.
      side: ``"l"`` (camera 2) or ``"r"`` (camera 3).

    Returns:
      ``[3, 4]`` float32.

    Raises:
      ValueError: naming the file of a missing or malformed entry.
    """
    return velo_calibration(calib_dir, side)[0].astype(np.float32)


def read_calib_file(path: str) -> dict[str, np.ndarray]:
    """Reads a KITTI calibration text file (``key: v1 v2 ...`` lines) into float64 arrays.

    Non-numeric values (e.g. ``calib_time``) are skipped.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"calibration file not found: {path}")
    data: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if not sep:
                continue
            try:
                data[key.strip()] = np.array([float(v) for v in value.split()], dtype=np.float64)
            except ValueError:
                continue
    return data


def _image_size(path: str) -> tuple[int, int]:
    """(width, height) from an image header (PIL reads only the header)."""
    with Image.open(path) as image:
        return image.size


def calib_intrinsics(calib_file: str, side: str, image_file: str | None = None) -> np.ndarray:
    """Normalised K of camera 2 (``l``) or 3 (``r``) from a KITTI calibration file.

    Uses the rectified projection ``P_rect_02``/``P_rect_03`` (raw) or ``P2``/``P3`` (odometry),
    divides row 0 by the image width and row 1 by the image height. The size is ``S_rect_0x``
    when the file has it, otherwise the size of ``image_file``.

    Args:
      calib_file: ``calib_cam_to_cam.txt`` or odometry ``calib.txt``.
      side: ``"l"`` or ``"r"``.
      image_file: an image of the drive, for the size when the calibration file lacks it.

    Returns:
      ``[3, 3]`` float32 normalised intrinsics.

    Raises:
      ValueError: naming the file if the projection matrix (or the image size) is missing.
    """
    calib = read_calib_file(calib_file)
    camera = "02" if side == "l" else "03"
    projection = calib.get(f"P_rect_{camera}")
    if projection is None:
        projection = calib.get(f"P{int(camera)}")
    if projection is None or projection.size != 12:
        raise ValueError(f"{calib_file}: no 3x4 P_rect_{camera} (or P{int(camera)}) entry")
    size = calib.get(f"S_rect_{camera}")
    if size is not None and size.size == 2:
        width, height = float(size[0]), float(size[1])
    elif image_file is not None:
        width, height = (float(v) for v in _image_size(image_file))
    else:
        raise ValueError(f"{calib_file}: no S_rect_{camera} image size and no image given")
    K = projection.reshape(3, 4)[:, :3].copy()
    K[0] /= width
    K[1] /= height
    return K.astype(np.float32)


def stereo_source_from_target(side_sign: float, flipped: bool, baseline: float = 0.1) -> np.ndarray:
    """The 4x4 transform from the target camera into its stereo partner.

    ``T[0, 3] = side_sign * flip_sign * baseline`` with ``side_sign = -1`` for a left target and
    ``flip_sign = -1`` when the sample was flipped horizontally. The nominal baseline of 0.1 units
    is the reference implementation's training convention (hence the stereo scale 5.4 of paper
    Sec. 4.1).

    Args:
      side_sign: -1.0 (left target) or +1.0 (right target).
      flipped: whether the images were mirrored.
      baseline: |translation| (0.1 in the paper's units; 0.54 for metres on KITTI).

    Returns:
      ``[4, 4]`` float32.
    """
    transform = np.eye(4, dtype=np.float32)
    transform[0, 3] = side_sign * (-1.0 if flipped else 1.0) * baseline
    return transform


#: ``build_samples(poses=...)``: where a layout keeps its camera poses (`md2tf.data.poses` format).
#: ``drive``: ``<drive>/poses.txt`` of camera 02 (the synthetic world's raw layout); ``odometry``:
#: ``<data_dir>/poses/NN.txt`` of camera 0 (KITTI odometry, sequences 00-10); ``none``: no poses.
POSE_LAYOUTS = ("none", "drive", "odometry")


def poses_path(data_dir: str, entry: SplitEntry, layout: str) -> str:
    """The pose file of an entry's drive or sequence under ``layout`` (may not exist), or ``""``."""
    if layout == "drive" and entry.kind == "raw":
        return os.path.join(data_dir, entry.folder, "poses.txt")
    if layout == "odometry" and entry.kind == "odom":
        return os.path.join(data_dir, "poses", f"{int(entry.folder):02d}.txt")
    return ""


def camera_from_camera0(calib_file: str, camera: int) -> np.ndarray:
    """float64 ``[4, 4]`` transform from rectified camera 0 into rectified camera ``camera``.

    The rectified projections are ``P_i = K [I | t_i]`` in camera-0 coordinates, so camera ``i``'s
    coordinates are camera 0's plus ``t_i = K^-1 P_i[:, 3]`` (a pure translation; KITTI's rig and
    the synthetic world's).

    Raises:
      ValueError: naming the file if ``P_rect_0i`` (raw) or ``Pi`` (odometry) is missing.
    """
    calib = read_calib_file(calib_file)
    projection = calib.get(f"P_rect_{camera:02d}")
    if projection is None:
        projection = calib.get(f"P{camera}")
    if projection is None or projection.size != 12:
        raise ValueError(f"{calib_file}: no 3x4 P_rect_{camera:02d} (or P{camera}) entry")
    projection = projection.reshape(3, 4)
    return poses_lib.translation(np.linalg.solve(projection[:, :3], projection[:, 3]))


class _ExistenceCache:
    """``os.path.exists`` for many files, via one ``os.listdir`` per directory."""

    def __init__(self) -> None:
        self._listing: dict[str, frozenset[str]] = {}

    def exists(self, path: str) -> bool:
        directory, name = os.path.split(path)
        if directory not in self._listing:
            try:
                self._listing[directory] = frozenset(os.listdir(directory))
            except OSError:
                self._listing[directory] = frozenset()
        return name in self._listing[directory]

    def count(self, directory: str, ext: str) -> int:
        """Number of files in ``directory`` ending in ``ext``."""
        self.exists(os.path.join(directory, "."))
        return sum(n.endswith(ext) for n in self._listing[directory])


class _PoseCache:
    """Pose files (read and validated once each) and camera offsets of `build_samples`."""

    def __init__(self, data_dir: str, layout: str, image_ext: str, cache: _ExistenceCache) -> None:
        if layout not in POSE_LAYOUTS:
            raise ValueError(f"poses must be one of {', '.join(POSE_LAYOUTS)}, got {layout!r}")
        self.data_dir, self.layout, self.ext, self.cache = data_dir, layout, image_ext, cache
        self._poses: dict[str, np.ndarray | None] = {}
        self._offsets: dict[tuple[str, str], np.ndarray | None] = {}

    def relative(self, entry: SplitEntry, offsets: Sequence[int]) -> np.ndarray:
        """``[T, 4, 4]`` ``source_from_target`` of the entry's camera, NaN without a pose file."""
        path = poses_path(self.data_dir, entry, self.layout)
        if not path or not self.cache.exists(path):
            return poses_lib.unknown_poses(len(offsets))
        if path not in self._poses:
            frames_dir = os.path.dirname(image_path(self.data_dir, entry, 0, "l", self.ext))
            try:
                self._poses[path] = poses_lib.read_poses_file(
                    path, self.cache.count(frames_dir, self.ext))
            except ValueError as error:
                raise ValueError(f"{entry.where}: {error}") from error
        key = (path, entry.side or "l")
        if key not in self._offsets:
            # drive: the file holds camera 02 poses; odometry: camera 0 poses (KITTI's convention).
            reference = 2 if self.layout == "drive" else 0
            camera = 3 if entry.side == "r" else 2
            if camera == reference:
                self._offsets[key] = None
            else:
                calib = calib_path(self.data_dir, entry)
                if not self.cache.exists(calib):
                    raise ValueError(f"{entry.where}: missing calibration file (needed to place "
                                     f"camera {camera} relative to the poses of camera {reference}): "
                                     f"{calib}")
                try:
                    self._offsets[key] = (camera_from_camera0(calib, camera)
                                          @ poses_lib.invert_rigid(camera_from_camera0(calib, reference)))
                except ValueError as error:
                    raise ValueError(f"{entry.where}: {error}") from error
        return poses_lib.relative_poses(self._poses[path], entry.frame_index, offsets,
                                        self._offsets[key])


def camera_name(entry: SplitEntry) -> str:
    """The camera of a split entry (`Sample.camera`): ``<date>/image_0X`` (raw: one calibration per
    date), ``<sequence>/image_0X`` (odometry: one per sequence), the folder (benchmark)."""
    head = entry.folder.split("/")[0]
    if entry.side is None:
        return head
    return f"{head}/image_0{2 if entry.side == 'l' else 3}"


def build_samples(
    entries: Sequence[SplitEntry],
    data_dir: str,
    *,
    temporal_offsets: Sequence[int] = (-1, 1),
    use_stereo: bool = False,
    image_ext: str = ".jpg",
    intrinsics: str = "fixed",
    poses: str = "none",
    oxts_speeds: bool = False,
) -> list[Sample]:
    """Resolves and validates the files of every split entry.

    Args:
      entries: parsed split lines (`md2tf.data.splits.read_split`).
      data_dir: dataset root.
      temporal_offsets: source frame offsets (non-zero), in batch order.
      use_stereo: add the other camera at the same index as the last source.
      image_ext: ``".jpg"`` or ``".png"``.
      intrinsics: ``"fixed"`` (the paper's K), ``"calib"`` (per drive from the calibration file) or
        ``"learned"`` (the calibration file's K as the start of the learned one).
      poses: where the layout keeps camera poses (`POSE_LAYOUTS`); a drive or sequence without a pose
        file gets NaN ``temporal_source_from_target``. Known poses also give the distances travelled
        (`Sample.temporal_distance`).
      oxts_speeds: take the distances from each drive's oxts forward velocity instead (KITTI raw,
        `md2tf.data.speeds.read_oxts_speeds`).

    Returns:
      One validated `Sample` per entry, in order.

    Raises:
      ValueError: naming the split file, line number and path of the first missing image,
        neighbour, stereo partner or calibration file, a side-less entry with stereo/temporal
        sources that need a side, or a malformed pose file (naming it and the line).
    """
    if intrinsics not in ("fixed", "calib", "learned"):
        raise ValueError(f"intrinsics must be 'fixed', 'calib' or 'learned', got {intrinsics!r}")
    cache = _ExistenceCache()
    calib_cache: dict[tuple, np.ndarray] = {}
    pose_cache = _PoseCache(data_dir, poses, image_ext, cache)
    oxts: dict[str, tuple[np.ndarray, speeds_lib.SpeedProfile]] = {}
    samples = []
    for entry in entries:
        if entry.side is None and use_stereo:
            raise ValueError(f"{entry.where}: stereo needs a side (l|r) but the line has none")

        def require(path: str, what: str, entry: SplitEntry = entry) -> str:
            if not cache.exists(path):
                raise ValueError(f"{entry.where}: missing {what}: {path}")
            return path

        target = require(image_path(data_dir, entry, 0, ext=image_ext), "image")
        sources = [require(image_path(data_dir, entry, o, ext=image_ext), f"neighbour frame {o:+d}")
                   for o in temporal_offsets]
        if use_stereo:
            sources.append(require(image_path(data_dir, entry, 0, other_side(entry.side), image_ext),
                                   "stereo partner"))
        if intrinsics in ("calib", "learned"):
            calib = require(calib_path(data_dir, entry), "calibration file")
            key = (calib, entry.side)
            if key not in calib_cache:
                try:
                    calib_cache[key] = calib_intrinsics(calib, entry.side, target)
                except ValueError as error:
                    raise ValueError(f"{entry.where}: {error}") from error
            K = calib_cache[key]
        else:
            K = FIXED_INTRINSICS_NORMALIZED
        gt = depth_gt_path(data_dir, entry)
        gt = gt if gt and cache.exists(gt) else ""
        velo, velo_P = "", Sample._field_defaults["velo_projection"]
        if not gt and entry.kind == "raw" and cache.exists(velodyne_path(data_dir, entry)):
            calib_dir = os.path.dirname(calib_path(data_dir, entry))
            if cache.exists(os.path.join(calib_dir, "calib_velo_to_cam.txt")) and cache.exists(
                    os.path.join(calib_dir, "calib_cam_to_cam.txt")):
                key = (calib_dir, entry.side, "velo")
                if key not in calib_cache:
                    try:
                        calib_cache[key] = velo_to_image_projection(calib_dir, entry.side)
                    except ValueError as error:
                        raise ValueError(f"{entry.where}: {error}") from error
                velo, velo_P = velodyne_path(data_dir, entry), calib_cache[key]
        side_sign = -1.0 if entry.side == "l" else 1.0
        name = f"{entry.folder} {entry.frame_index}" + (f" {entry.side}" if entry.side else "")
        relative = pose_cache.relative(entry, temporal_offsets)
        distance = poses_lib.travelled(relative)
        if oxts_speeds:
            drive = os.path.join(data_dir, entry.folder)
            if drive not in oxts:
                try:
                    oxts[drive] = speeds_lib.read_oxts_speeds(drive)
                except ValueError as error:
                    raise ValueError(f"{entry.where}: {error}") from error
            distance = speeds_lib.frame_distances(oxts[drive][1], oxts[drive][0], entry.frame_index,
                                                  temporal_offsets)
        samples.append(Sample(target, tuple(sources), K, side_sign, gt, name, velo, velo_P, relative,
                              camera_name(entry), distance))
    return samples


def load_test_images(data_dir: str, split_file: str, image_ext: str = ".jpg",
                     ) -> Iterator[tuple[str, np.ndarray]]:
    """Yields ``(name, image)`` for every line of a test split file, for evaluation.

    All paths are validated before the first image is read (errors name the split file and line).

    Args:
      data_dir: dataset root.
      split_file: e.g. ``<splits_dir>/eigen/test_files.txt``.
      image_ext: ``".jpg"`` (the official evaluation reads JPEGs) or ``".png"``.

    Yields:
      ``name`` (``"<folder> <index> <side>"``) and the raw image, uint8 ``[H, W, 3]`` RGB.
    """
    samples = build_samples(read_split(split_file), data_dir, temporal_offsets=(), image_ext=image_ext)
    for sample in samples:
        try:
            with Image.open(sample.target) as image:
                yield sample.name, np.asarray(image.convert("RGB"), dtype=np.uint8)
        except OSError as error:
            raise ValueError(f"corrupt image {sample.target}: {error}") from error
