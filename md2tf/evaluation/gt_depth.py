"""Ground-truth depth maps for evaluation: velodyne projection, annotated PNGs, dense synthetic GT.

`velodyne_to_depth_map` reproduces the reference implementation's ``generate_depth_map`` step by
step, including its non-standard duplicate index, so that the exported maps equal the official
``gt_depths.npz`` that the paper's Sec. 4.1 KITTI (Eigen split) scores are computed against:

1. ``P_velo_to_image = P_rect_0{cam} @ R_rect_00 (4x4) @ [R | T]_velo_to_cam``.
2. Only forward points (velodyne ``x >= 0``); homogeneous coordinate 1 (reflectance dropped).
3. Perspective division; the depth value is the velodyne ``x`` (``vel_depth=True``), not camera z.
4. Pixel = ``round(u) - 1, round(v) - 1``; points outside ``[0, W) x [0, H)`` dropped; written in order
   into a zero map (a later point overwrites an earlier one).
5. Points sharing the index ``row * (W - 1) + col - 1`` are "duplicates": the pixel of the first of them
   gets their minimum depth. The index is not one-to-one ((r, W-1) and (r+1, 0) collide), which is
   the reference's quirk and is kept on purpose.
6. Negative depths become 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from md2tf.data import datasets, kitti_layout, splits
from md2tf.data.splits import SplitEntry

#: GT sources: projected lidar, KITTI depth-benchmark annotated PNGs, dense synthetic ``.npy`` maps.
GT_SOURCES = ("velodyne", "png", "dense")
#: KITTI depth-annotated PNGs store uint16 depth * 256 (0 = no measurement).
PNG_DEPTH_SCALE = 256.0


def velodyne_projection(calib_dir: str, camera: int = 2) -> tuple[np.ndarray, tuple[int, int]]:
    """The 3x4 velodyne -> image projection and the image size of one camera.

    Args:
      calib_dir: directory with ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` (KITTI ``<date>``).
      camera: KITTI camera index (2 = left colour, 3 = right colour).

    Returns:
      ``(P [3, 4], (H, W))`` with ``P = P_rect_0{camera} @ R_rect_00 @ velo_to_cam`` (pixels).

    Raises:
      ValueError: for a missing calibration file, entry or ``S_rect_0{camera}`` size, or a camera
        other than 2 and 3.
    """
    if camera not in (2, 3):
        raise ValueError(f"camera must be 2 (left) or 3 (right), got {camera}")
    try:
        projection, shape = kitti_layout.velo_calibration(calib_dir, "l" if camera == 2 else "r")
    except FileNotFoundError as error:
        raise ValueError(str(error)) from error
    if shape is None:
        cam_path = os.path.join(calib_dir, "calib_cam_to_cam.txt")
        raise ValueError(f"{cam_path}: needs S_rect_0{camera} with 2 numbers")
    return projection, shape


def project_points_to_depth_map(
    points: np.ndarray, projection: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Projects velodyne points into a sparse depth map, exactly as the reference (module docstring).

    Args:
      points: ``[N, 3+]`` velodyne points (x forward, metres); extra columns (reflectance) ignored.
      projection: ``[3, 4]`` velodyne -> pixel projection (see `velodyne_projection`).
      shape: ``(H, W)`` of the output map.

    Returns:
      ``[H, W]`` float32 depth (velodyne x, metres), 0 where no point falls.

    Raises:
      ValueError: for bad ``points``/``projection`` shapes.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be [N, 3+] velodyne points, got shape {points.shape}")
    projection = np.asarray(projection, np.float64)
    if projection.shape != (3, 4):
        raise ValueError(f"projection must be [3, 4], got shape {projection.shape}")
    height, width = shape
    points = points[points[:, 0] >= 0]
    homogeneous = np.concatenate([points[:, :3], np.ones((len(points), 1), points.dtype)], axis=1)
    image = homogeneous @ projection.T
    image[:, :2] = image[:, :2] / image[:, 2:3]
    depth_values = points[:, 0]
    cols = np.round(image[:, 0]) - 1
    rows = np.round(image[:, 1]) - 1
    valid = (cols >= 0) & (rows >= 0) & (cols < width) & (rows < height)
    cols, rows, depth_values = cols[valid].astype(np.int64), rows[valid].astype(np.int64), depth_values[valid]
    depth = np.zeros((height, width), np.float64)
    depth[rows, cols] = depth_values  # later points overwrite earlier ones
    # The reference's duplicate index (not one-to-one): the first point of each group gets the minimum.
    index = rows * (width - 1) + cols - 1
    _, first, inverse, counts = np.unique(index, return_index=True, return_inverse=True, return_counts=True)
    group_min = np.full(len(first), np.inf)
    np.minimum.at(group_min, inverse, depth_values)
    dup = counts > 1
    depth[rows[first[dup]], cols[first[dup]]] = group_min[dup]
    depth[depth < 0] = 0
    return depth.astype(np.float32)


def load_velodyne_points(path: str) -> np.ndarray:
    """Loads a KITTI ``.bin`` scan as ``[N, 4]`` float32 (x, y, z, reflectance)."""
    if not os.path.isfile(path):
        raise ValueError(f"velodyne scan not found: {path}")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def velodyne_to_depth_map(calib_dir: str, velodyne_path: str, camera: int = 2) -> np.ndarray:
    """GT depth of one frame from its velodyne scan (reference ``generate_depth_map``, vel_depth=True).

    Args:
      calib_dir: KITTI ``<date>`` directory with the calibration files.
      velodyne_path: the frame's ``velodyne_points/data/<10 digits>.bin``.
      camera: 2 (left) or 3 (right).

    Returns:
      ``[H, W]`` float32 depth in metres (``S_rect`` size), 0 = no measurement.
    """
    projection, shape = velodyne_projection(calib_dir, camera)
    return project_points_to_depth_map(load_velodyne_points(velodyne_path), projection, shape)


def load_png_depth(path: str) -> np.ndarray:
    """Reads a KITTI depth-annotated uint16 PNG as ``[H, W]`` float32 metres (value / 256)."""
    if not os.path.isfile(path):
        raise ValueError(f"depth PNG not found: {path}")
    return np.asarray(Image.open(path), np.float32) / PNG_DEPTH_SCALE


def frame_gt_path(data_dir: str, line: SplitEntry, source: str) -> str:
    """Where the GT of one split line lives for a GT source (KITTI raw layout)."""
    folder = os.path.join(data_dir, line.folder)
    if source == "velodyne":
        return os.path.join(folder, "velodyne_points", "data", f"{line.frame_index:010d}.bin")
    if source == "png":
        return os.path.join(folder, "proj_depth", "groundtruth", f"image_0{line.camera}", f"{line.frame_index:010d}.png")
    if source == "dense":
        return os.path.join(folder, "depth_gt", f"image_0{line.camera}", f"{line.frame_index:010d}.npy")
    raise ValueError(f"--gt_source must be one of {GT_SOURCES}, got {source!r}")


def default_gt_source(split: str) -> str:
    """The GT source the dataset providing ``split`` declares, else ``velodyne``.

    ``eigen``: projected lidar and ``eigen_benchmark``: the depth-annotated PNGs (the paper's
    Sec. 4.1 and its improved-GT table); ``synthetic``: the world's dense maps.
    """
    return datasets.gt_source_for_split(split) or "velodyne"


def load_gt_depth(data_dir: str, line: SplitEntry, source: str) -> np.ndarray:
    """The ``[H, W]`` float32 GT depth (metres) of one split line from the given source."""
    path = frame_gt_path(data_dir, line, source)
    if source == "velodyne":
        calib_dir = os.path.join(data_dir, line.folder.split("/")[0])
        return velodyne_to_depth_map(calib_dir, path, line.camera)
    if source == "png":
        return load_png_depth(path)
    if not os.path.isfile(path):
        raise ValueError(f"dense GT depth not found: {path}")
    return np.asarray(np.load(path, allow_pickle=False), np.float32).squeeze()


def gt_depths_path(splits_dir: str, split: str) -> str:
    """``<splits_dir>/<split>/gt_depths.npz``."""
    return os.path.join(splits_dir, split, "gt_depths.npz")


def evaluation_split(dataset_name: str) -> str | None:
    """The test split a registered dataset is scored on, or None when it declares no GT for one.

    That is the dataset's metric protocol split when it declares a GT source for it (``eigen`` for
    ``kitti``, ``synthetic`` for the synthetic world).

    Raises:
      ValueError: for an unregistered dataset name.
    """
    dataset = datasets.get_dataset(dataset_name)
    return dataset.eval_split if dataset.eval_split in dataset.gt_sources else None


def export_command(split: str, data_dir: str = "DIR", splits_dir: str = "", source: str = "") -> str:
    """The shell command that creates ``gt_depths.npz`` (used in error messages and notes).

    Args:
      split: the split folder.
      data_dir: dataset root.
      splits_dir: split folders; empty = the default ``<data_dir>/splits`` (flag left out).
      source: GT source; empty = `default_gt_source` of ``split`` (always written out).
    """
    command = f"python -m md2tf.export_gt --split {split} --data_dir {data_dir}"
    if splits_dir:
        command += f" --splits_dir {splits_dir}"
    return f"{command} --gt_source {source or default_gt_source(split)}"


def export_missing_gt_depths(split: str, data_dir: str, splits_dir: str, path: str = "",
                             progress=None) -> bool:
    """Writes a missing ``gt_depths.npz`` when a registered dataset declares the split's GT source.

    Args:
      split, data_dir, splits_dir: as for `export_gt_depths`.
      path: the GT file; empty = `gt_depths_path`.
      progress: optional ``progress(i)`` callable after each map.

    Returns:
      True when the file was written, False when it already existed.

    Raises:
      ValueError: no dataset declares a GT source for ``split``, ``data_dir`` is empty, or the GT
        cannot be read; the message gives the `export_command` to run.
    """
    path = path or gt_depths_path(splits_dir, split)
    if os.path.isfile(path):
        return False
    source = datasets.gt_source_for_split(split)
    command = export_command(split, data_dir or "DIR", splits_dir, source or "")
    if source is None or not data_dir:
        raise ValueError(f"ground truth file not found: {path}. Create it with: {command}")
    try:
        export_gt_depths(split, data_dir, splits_dir, source, path, progress=progress)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"ground truth file not found: {path}, and creating it failed: {error}. "
                         f"The command: {command}") from error
    return True


def export_gt_depths(
    split: str, data_dir: str, splits_dir: str, source: str = "", output: str = "", progress=None
) -> str:
    """Builds the GT maps of ``<splits_dir>/<split>/test_files.txt`` and saves them.

    Args:
      split: split name (``eigen``, ``eigen_benchmark``, ``synthetic``, ...).
      data_dir: dataset root in KITTI raw layout.
      splits_dir: directory holding ``<split>/test_files.txt``.
      source: one of `GT_SOURCES`; empty = `default_gt_source`.
      output: output path; empty = `gt_depths_path`.
      progress: optional callable ``progress(i)`` after each frame.

    Returns:
      The written path: an ``.npz`` with one key per map (see `save_gt_depths`).
    """
    source = source or default_gt_source(split)
    if source not in GT_SOURCES:
        raise ValueError(f"--gt_source must be one of {GT_SOURCES}, got {source!r}")
    lines = splits.read_split(os.path.join(splits_dir, split, "test_files.txt"), kind="raw")
    maps = []
    for i, line in enumerate(lines):
        maps.append(load_gt_depth(data_dir, line, source))
        if progress is not None:
            progress(i)
    output = output or gt_depths_path(splits_dir, split)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    save_gt_depths(output, maps)
    return output


#: ``gt_depths.npz`` stores map ``i`` under ``depth_{i:06d}``: maps of different sizes need no object
#: array, so the file loads with ``allow_pickle=False`` (an object array could run code when loaded).
GT_KEY_PREFIX = "depth_"


def _gt_key(index: int) -> str:
    return f"{GT_KEY_PREFIX}{index:06d}"


def save_gt_depths(path: str, maps: Sequence[np.ndarray]) -> None:
    """Saves GT maps as ``npz["depth_000000"], npz["depth_000001"], ...`` (float32 ``[H_i, W_i]``)."""
    np.savez_compressed(path, **{_gt_key(i): np.asarray(m, np.float32) for i, m in enumerate(maps)})


def load_gt_depths(path: str, split: str = "", splits_dir: str = "") -> list[np.ndarray]:
    """Loads ``gt_depths.npz`` without unpickling anything; a missing file names the command that creates it.

    Two layouts load: md2tf's ``depth_000000, depth_000001, ...`` keys (maps of any sizes) and a
    ``data`` key holding one plain ``[N, H, W]`` array (same-size maps, as the reference tools write
    them). A ``data`` object array (ragged maps, as older md2tf versions and the reference tools write
    them) needs pickle to load and is refused with the command that re-exports the file.

    Args:
      path: the ``.npz`` file.
      split, splits_dir: only for the error messages.

    Returns:
      The list of ``[H_i, W_i]`` float32 maps.

    Raises:
      ValueError: if the file is missing, unreadable, pickled or has neither layout.
    """
    command = export_command(split or "<split>", "DIR", splits_dir)
    if not os.path.isfile(path):
        raise ValueError(f"ground truth file not found: {path}. Create it with: {command}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise ValueError(f"{path}: expected an .npz archive of depth maps, got a single array")
            keys = [k for k in f.files if k.startswith(GT_KEY_PREFIX)]
            if keys:
                expected = [_gt_key(i) for i in range(len(keys))]
                if sorted(keys) != expected:
                    raise ValueError(f"{path}: depth map keys must run {expected[0]}..{expected[-1]} "
                                     "without gaps")
                return [np.asarray(f[k], np.float32) for k in expected]
            if "data" not in f.files:
                raise ValueError(f"{path}: expected keys {_gt_key(0)}, {_gt_key(1)}, ... (or 'data'), "
                                 f"got {f.files}")
            data = f["data"]
    except ValueError as error:
        if "pickle" in str(error) or "Object arrays" in str(error):
            raise ValueError(
                f"{path} stores the depth maps as pickled Python objects, which md2tf never loads "
                f"(unpickling can run code). Re-export it with: {command}") from None
        raise
    except (OSError, EOFError) as error:  # not a zip / truncated
        raise ValueError(f"{path}: not a readable .npz file ({error}). Re-create it with: "
                         f"{command}") from None
    if data.ndim != 3 or not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"{path}: 'data' must be an [N, H, W] numeric array, got {data.dtype} "
                         f"{data.shape}. Re-export it with: {command}")
    return [np.asarray(m, np.float32) for m in data]
