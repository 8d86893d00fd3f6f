"""Writes the synthetic world to disk in the KITTI raw layout (plus GT depth, poses and split files).

See ``md2tf/data/synthetic/README.md`` for the layout. `ensure_world` is the entry point for the
trainer: it generates only when the manifest ``synthetic_world.json`` (written last) is absent.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import json
import os
from collections.abc import Callable, Iterable

import numpy as np
from PIL import Image

from md2tf.data.synthetic import lidar as lidar_lib
from md2tf.data.synthetic import render
from md2tf.data.synthetic import world as w
from md2tf.progress import Progress

MANIFEST = "synthetic_world.json"
FORMAT_VERSION = 2  # bump when the rendered output changes: older worlds are regenerated
SPLITS_VERSION = 2  # bump when only the split files change: older worlds get new split files
#: Image size and format of a world whose `WorldConfig` leaves them open (0, "") and that nothing
#: else sizes (``python -m md2tf.data.synthetic``, `ensure_world` called directly): KITTI's.
DEFAULT_SIZE_HW = w.KITTI_SIZE_HW
DEFAULT_EXT = "png"
SPLIT_NAME = "synthetic"
ODOM_SPLIT_NAME = "synthetic_odom"


def rendered(config: w.WorldConfig) -> w.WorldConfig:
    """``config`` with an open image size or format filled in (`DEFAULT_SIZE_HW`, `DEFAULT_EXT`)."""
    return config.resolved(*DEFAULT_SIZE_HW, DEFAULT_EXT)


def drive_name(config: w.WorldConfig, index: int) -> str:
    """``<date>_drive_<NNNN>_sync`` of drive ``index``."""
    return f"{config.date}_drive_{index:04d}_sync"


def camera_centres_in_cam0(baseline: float) -> dict[int, float]:
    """x of the centres of cameras 00..03 in camera-00 coordinates (metres; KITTI rig layout)."""
    c2 = w.CAM2_OFFSET_FROM_CAM0_M
    return {0: 0.0, 1: baseline, 2: c2, 3: c2 + baseline}


def projection_matrices(config: w.WorldConfig) -> dict[int, np.ndarray]:
    """``P_rect_0i`` ``[3, 4]`` for cameras 0..3: ``K [I | -c_i]`` with camera centre ``c_i``."""
    k = w.camera_intrinsics(config)
    out = {}
    for cam, cx in camera_centres_in_cam0(config.baseline).items():
        p = np.zeros((3, 4))
        p[:, :3] = k
        p[0, 3] = -k[0, 0] * cx
        out[cam] = p
    return out


def _fmt(values: Iterable[float]) -> str:
    return " ".join(f"{float(v) + 0.0:.6e}" for v in np.asarray(list(values), np.float64).ravel())


def calib_cam_to_cam_text(config: w.WorldConfig) -> str:
    """Contents of ``calib_cam_to_cam.txt`` (KITTI raw format; images are already rectified)."""
    k = w.camera_intrinsics(config)
    size = (config.width, config.height)
    lines = ["calib_time: 27-Oct-2019 00:00:00", "corner_dist: 9.950000e-02"]
    proj = projection_matrices(config)
    for cam, cx in camera_centres_in_cam0(config.baseline).items():
        lines += [
            f"S_{cam:02d}: {_fmt(size)}",
            f"K_{cam:02d}: {_fmt(k)}",
            f"D_{cam:02d}: {_fmt(np.zeros(5))}",
            f"R_{cam:02d}: {_fmt(np.eye(3))}",
            f"T_{cam:02d}: {_fmt([-cx, 0.0, 0.0])}",
            f"S_rect_{cam:02d}: {_fmt(size)}",
            f"R_rect_{cam:02d}: {_fmt(np.eye(3))}",
            f"P_rect_{cam:02d}: {_fmt(proj[cam])}",
        ]
    return "\n".join(lines) + "\n"


def calib_velo_to_cam_text() -> str:
    """Contents of ``calib_velo_to_cam.txt``: ``x_cam0 = R x_velo + T``."""
    return "\n".join([
        "calib_time: 27-Oct-2019 00:00:00",
        f"R: {_fmt(lidar_lib.VELO_TO_CAM_R)}",
        f"T: {_fmt(lidar_lib.VELO_TO_CAM_T)}",
        f"delta_f: {_fmt([0.0, 0.0])}",
        f"delta_c: {_fmt([0.0, 0.0])}",
    ]) + "\n"


def calib_imu_to_velo_text() -> str:
    """Contents of ``calib_imu_to_velo.txt`` (the IMU is not simulated: identity)."""
    return f"calib_time: 27-Oct-2019 00:00:00\nR: {_fmt(np.eye(3))}\nT: {_fmt(np.zeros(3))}\n"


def _atomic_write(path: str, write) -> None:
    """``write(binary file)`` into ``path`` through a temporary file and a rename, so a reader (a
    second run generating the same world, one that already trains on it) never sees half a file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:  # a full disk or an interrupt leaves no stray temporary file behind
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _atomic_write_text(path: str, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode()))


def _save_image(path: str, image: np.ndarray, ext: str) -> None:
    image = Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8))
    if ext == "jpg":  # like the reference's KITTI JPEGs: quality 92, 4:2:0 chroma subsampling
        _atomic_write(path, lambda f: image.save(f, format="JPEG", quality=92, subsampling=2))
    else:
        _atomic_write(path, lambda f: image.save(f, format="PNG", compress_level=3))


def write_drive(out_dir: str, config: w.WorldConfig, index: int, progress=None) -> str:
    """Renders and writes all frames of drive ``index``. Returns the drive directory."""
    drive = w.make_drive(config, index)
    k = w.camera_intrinsics(config)
    ddir = os.path.join(out_dir, config.date, drive_name(config, index))
    sub = {name: os.path.join(ddir, name) for name in (
        "image_02/data", "image_03/data", "velodyne_points/data", "depth_gt/image_02", "depth_gt/image_03")}
    for path in sub.values():
        os.makedirs(path, exist_ok=True)
    start = datetime.datetime(2019, 10, 27, 12, 0, 0) + datetime.timedelta(minutes=10 * index)
    stamps = "".join(f"{start + datetime.timedelta(seconds=0.1 * i):%Y-%m-%d %H:%M:%S.%f}000\n"
                     for i in range(config.frames))
    for frame in range(config.frames):
        boxes = drive.boxes_at(frame)
        name = f"{frame:010d}"
        for cam in (2, 3):
            view = render.render_view(drive, frame, cam, k, config.height, config.width, boxes=boxes)
            _save_image(os.path.join(sub[f"image_0{cam}/data"], f"{name}.{config.ext}"), view.image,
                        config.ext)
            _atomic_write(os.path.join(sub[f"depth_gt/image_0{cam}"], f"{name}.npy"),
                          lambda f, depth=view.depth: np.save(f, depth))
        if config.lidar:
            pts = lidar_lib.scan(drive, frame, config.lidar_beams, config.lidar_azimuth_step_deg,
                                 boxes=boxes)
            _atomic_write(os.path.join(sub["velodyne_points/data"], f"{name}.bin"),
                          lambda f, pts=pts: f.write(pts.tobytes()))
        if progress is not None:
            progress.update(1)
    for folder in ("image_02", "image_03", "velodyne_points"):
        _atomic_write_text(os.path.join(ddir, folder, "timestamps.txt"), stamps)
    poses = "".join(_fmt(drive.world_from_camera(f)[:3].ravel()) + "\n" for f in range(config.frames))
    _atomic_write_text(os.path.join(ddir, "poses.txt"), poses)
    return ddir


def split_roles(config: w.WorldConfig) -> dict[str, list[tuple[int, int]]]:
    """(drive, frame) pairs per split.

    With >= 3 drives, whole drives are assigned: the last one is ``test``, the one before ``val``, the
    others ``train``. With fewer, each drive is cut in time: first 70 % train, next 15 % val, rest test.
    ``train``/``val`` keep only frames with both neighbours (+-1) inside the drive.
    """
    roles: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    n = config.frames
    for d in range(config.drives):
        frames = np.arange(n)
        if config.drives >= 3:
            role = "test" if d == config.drives - 1 else "val" if d == config.drives - 2 else "train"
            parts = {role: frames}
        else:
            a, b = int(round(0.7 * n)), int(round(0.85 * n))
            parts = {"train": frames[:a], "val": frames[a:b], "test": frames[b:]}
        for role, fr in parts.items():
            if role != "test":
                fr = fr[(fr >= 1) & (fr <= n - 2)]
            roles[role] += [(d, int(f)) for f in fr]
    return roles


def _write_train_val(split_dir: str, roles: dict[str, list[tuple[int, int]]],
                     rng: np.random.Generator, folder: Callable[[int], str]) -> None:
    """``{train,val}_files.txt``: ``"<folder(drive)> <frame> <l|r>"`` for both sides, shuffled by ``rng``."""
    for role in ("train", "val"):
        lines = [f"{folder(d)} {f} {side}" for d, f in roles[role] for side in "lr"]
        lines = [lines[i] for i in rng.permutation(len(lines))]
        _atomic_write_text(os.path.join(split_dir, f"{role}_files.txt"), "".join(x + "\n" for x in lines))


def write_splits(out_dir: str, config: w.WorldConfig) -> None:
    """Writes ``splits/synthetic/{train,val,test}_files.txt`` (and ``synthetic_odom`` if enabled)."""
    roles = split_roles(config)
    rng = np.random.default_rng([config.seed, 12345])
    sdir = os.path.join(out_dir, "splits", SPLIT_NAME)
    os.makedirs(sdir, exist_ok=True)
    _write_train_val(sdir, roles, rng, lambda d: f"{config.date}/{drive_name(config, d)}")
    test = [f"{config.date}/{drive_name(config, d)} {f:010d} l" for d, f in roles["test"]]
    _atomic_write_text(os.path.join(sdir, "test_files.txt"), "".join(x + "\n" for x in test))
    if not config.odometry:
        return
    odir = os.path.join(out_dir, "splits", ODOM_SPLIT_NAME)
    os.makedirs(odir, exist_ok=True)
    _write_train_val(odir, roles, rng, str)
    by_drive: dict[int, list[int]] = {}
    for d, f in roles["test"]:
        by_drive.setdefault(d, []).append(f)
    for d, frames in by_drive.items():
        # Each line is the first frame of a (frame, frame + 1) pair, so the drive's last frame is not one.
        _atomic_write_text(os.path.join(odir, f"test_files_{d:02d}.txt"),
                           "".join(f"{d} {f} l\n" for f in frames if f + 1 < config.frames))


def write_odometry_view(out_dir: str, config: w.WorldConfig) -> None:
    """``odometry/sequences/NN/image_{2,3}/NNNNNN.ext`` (relative symlinks), ``calib.txt``, ``poses/NN.txt``."""
    root = os.path.join(out_dir, "odometry")
    proj = projection_matrices(config)
    tr = np.eye(4)[:3]
    tr[:, :3], tr[:, 3] = lidar_lib.VELO_TO_CAM_R, lidar_lib.VELO_TO_CAM_T
    calib = "".join(f"P{c}: {_fmt(proj[c])}\n" for c in range(4)) + f"Tr: {_fmt(tr)}\n"
    os.makedirs(os.path.join(root, "poses"), exist_ok=True)
    for d in range(config.drives):
        raw = os.path.join(out_dir, config.date, drive_name(config, d))
        seq = os.path.join(root, "sequences", f"{d:02d}")
        for cam in (2, 3):
            idir = os.path.join(seq, f"image_{cam}")
            os.makedirs(idir, exist_ok=True)
            for f in range(config.frames):
                link = os.path.join(idir, f"{f:06d}.{config.ext}")
                target = os.path.join(raw, f"image_0{cam}", "data", f"{f:010d}.{config.ext}")
                if os.path.lexists(link):
                    os.remove(link)
                os.symlink(os.path.relpath(target, idir), link)
        _atomic_write_text(os.path.join(seq, "calib.txt"), calib)
        with open(os.path.join(raw, "poses.txt")) as f:
            _atomic_write_text(os.path.join(root, "poses", f"{d:02d}.txt"), f.read())


def generate_world(out_dir: str, config: w.WorldConfig, progress: bool = True, workers: int = 1) -> str:
    """Renders and writes the whole world, then the manifest (last). Returns ``out_dir``.

    Args:
      out_dir: output root (created if needed). Existing files of the same names are overwritten.
      config: the world's parameters (an open size or format: `rendered`).
      progress: show a progress bar (frames).
      workers: processes rendering drives in parallel (1 = in this process).
    """
    config = rendered(config)
    os.makedirs(out_dir, exist_ok=True)
    manifest = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest):
        os.remove(manifest)
    ddir = os.path.join(out_dir, config.date)
    os.makedirs(ddir, exist_ok=True)
    _atomic_write_text(os.path.join(ddir, "calib_cam_to_cam.txt"), calib_cam_to_cam_text(config))
    _atomic_write_text(os.path.join(ddir, "calib_velo_to_cam.txt"), calib_velo_to_cam_text())
    _atomic_write_text(os.path.join(ddir, "calib_imu_to_velo.txt"), calib_imu_to_velo_text())
    bar = Progress(config.drives * config.frames, "synthetic world", unit="frame", enabled=progress)
    try:
        if workers <= 1:
            for d in range(config.drives):
                write_drive(out_dir, config, d, bar)
        else:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                futures = [pool.submit(write_drive, out_dir, config, d) for d in range(config.drives)]
                for fut in concurrent.futures.as_completed(futures):
                    fut.result()
                    bar.update(config.frames)
    finally:
        bar.close()
    write_splits(out_dir, config)
    if config.odometry:
        write_odometry_view(out_dir, config)
    _write_manifest(manifest, config)
    return out_dir


def _write_manifest(manifest: str, config: w.WorldConfig) -> None:
    text = json.dumps({"format_version": FORMAT_VERSION, "splits_version": SPLITS_VERSION,
                       "config": config.to_dict()}, indent=2)
    _atomic_write_text(manifest, text + "\n")


def ensure_world(out_dir: str, config: w.WorldConfig | None = None, *, progress: bool = False,
                 overwrite: bool = False, workers: int = 1, **fields) -> str:
    """Generates the synthetic world in ``out_dir`` unless a complete one with the same parameters is there.

    Completeness is marked by the manifest ``<out_dir>/synthetic_world.json``, written last, so a run
    that crashed mid-generation regenerates; so does a world written by an older renderer
    (``format_version``) or by an older writer whose manifest records other parameters than
    `WorldConfig` has now. A world whose split files are older (``splits_version``) only gets new
    split files. Call it from one process only (the chief worker).

    Args:
      out_dir: output root.
      config: the world (default ``WorldConfig()``); an open size or format is filled in by
        `rendered`.
      progress: show a progress bar while generating.
      overwrite: regenerate over a complete world whose parameters differ (otherwise an error).
      workers: processes for generation.
      **fields: `WorldConfig` fields replacing ``config``'s (drives, frames, height, width, seed, ...).

    Returns:
      ``out_dir``.

    Raises:
      ValueError: on unknown/invalid parameters, or if ``out_dir`` holds a world with other parameters
        and ``overwrite`` is False.
    """
    known = {f.name for f in dataclasses.fields(w.WorldConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"ensure_world: unknown parameters {unknown}; expected some of {sorted(known)}")
    config = rendered(dataclasses.replace(config or w.WorldConfig(), **fields))
    manifest = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest):
        with open(manifest) as f:
            found = json.load(f)
        wanted = json.loads(json.dumps(config.to_dict()))
        recorded = found.get("config", {})
        same_config = recorded == wanted
        if same_config and found.get("format_version") == FORMAT_VERSION:
            if found.get("splits_version") != SPLITS_VERSION:
                write_splits(out_dir, config)
                _write_manifest(manifest, config)
            return out_dir
        # Rendered again: the same parameters by an older renderer, or a manifest that records other
        # parameters than there are now (an older writer's).
        if not (same_config or overwrite or set(recorded) != set(wanted)):
            diff = "; ".join(f"{k}: {recorded.get(k)} there, {v} wanted"
                             for k, v in wanted.items() if recorded.get(k) != v)
            raise ValueError(f"{out_dir} holds a synthetic world with other parameters ({diff}; "
                             f"see {MANIFEST}): give another --data_dir (--synthetic_cache_dir) "
                             f"for this world, or delete {out_dir} to have it rendered again with "
                             "the wanted parameters")
    return generate_world(out_dir, config, progress=progress, workers=workers)
