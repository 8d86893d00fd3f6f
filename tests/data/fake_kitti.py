"""Tiny fake KITTI raw trees for the data tests (a few small frames, calibration, splits, GT)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

DATE = "2011_09_26"
DRIVE = f"{DATE}/{DATE}_drive_0001_sync"
RAW_HEIGHT, RAW_WIDTH = 24, 80
# P_rect_02 of the fake calibration (pixels of the RAW_WIDTH x RAW_HEIGHT image).
FX, FY, CX, CY = 40.0, 30.0, 41.0, 11.0


def frame_colour(index: int, side: str) -> np.ndarray:
    """The constant RGB (uint8) of frame ``index`` on ``side``: identifies which file was read."""
    return np.array([20 + 30 * index, 200 if side == "l" else 60, 0], np.uint8)


def frame_image(index: int, side: str) -> np.ndarray:
    """uint8 [RAW_HEIGHT, RAW_WIDTH, 3]: channels 0/1 constant (frame id), channel 2 a left-right
    ramp (detects flips)."""
    image = np.zeros((RAW_HEIGHT, RAW_WIDTH, 3), np.uint8)
    image[..., :2] = frame_colour(index, side)[:2]
    image[..., 2] = np.linspace(0, 255, RAW_WIDTH).round().astype(np.uint8)[None, :]
    return image


# Lidar axes (x forward, y left, z up) -> camera axes (x right, y down, z forward), no offset.
VELO_TO_CAM_R = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], np.float64)


def velodyne_points(index: int) -> np.ndarray:
    """float32 [N, 4] scan of frame ``index``: a few points in front (one pair on one pixel), one behind."""
    return np.array([
        [10.0 + index, 0.0, 0.0, 1.0],     # on the optical axis
        [12.0, 0.0, 0.0, 1.0],             # same pixel, farther: the nearer one wins
        [5.0, 1.0, 0.5, 1.0],
        [20.0, -3.0, -1.0, 1.0],
        [-8.0, 0.0, 0.0, 1.0],             # behind the lidar: dropped
        [2.0, -50.0, 0.0, 1.0],            # outside the image
    ], np.float32)


def write_tree(root: str, *, frames: int = 5, ext: str = ".png", with_gt: bool = True,
               with_velodyne: bool = False,
               split_lines: dict[str, list[str]] | None = None) -> str:
    """Writes ``root/<date>/<drive>/image_02|03/data/{i:010d}<ext>``, calibration, GT and splits.

    Returns:
      ``root``.
    """
    for side, camera in (("l", "image_02"), ("r", "image_03")):
        folder = os.path.join(root, DRIVE, camera, "data")
        os.makedirs(folder, exist_ok=True)
        for i in range(frames):
            Image.fromarray(frame_image(i, side)).save(os.path.join(folder, f"{i:010d}{ext}"),
                                                       quality=95)
    calib = os.path.join(root, DATE, "calib_cam_to_cam.txt")
    with open(calib, "w") as f:
        f.write("calib_time: 09-Jan-2012 13:57:47\n")
        f.write("R_rect_00: 1 0 0 0 1 0 0 0 1\n")
        for cam, tx in (("02", 4.5e1), ("03", -3.4e2)):
            f.write(f"S_rect_{cam}: {RAW_WIDTH:.6e} {RAW_HEIGHT:.6e}\n")
            f.write(f"P_rect_{cam}: {FX} 0 {CX} {tx} 0 {FY} {CY} 0 0 0 1 0\n")
    if with_velodyne:
        with open(os.path.join(root, DATE, "calib_velo_to_cam.txt"), "w") as f:
            f.write("R: " + " ".join(str(v) for v in VELO_TO_CAM_R.reshape(-1)) + "\nT: 0 0 0\n")
        velo_dir = os.path.join(root, DRIVE, "velodyne_points", "data")
        os.makedirs(velo_dir, exist_ok=True)
        for i in range(frames):
            velodyne_points(i).tofile(os.path.join(velo_dir, f"{i:010d}.bin"))
    if with_gt:
        gt_dir = os.path.join(root, DRIVE, "depth_gt", "image_02")
        os.makedirs(gt_dir, exist_ok=True)
        for i in range(frames):
            depth = np.tile(np.arange(RAW_WIDTH, dtype=np.float32)[None, :] + i, (RAW_HEIGHT, 1))
            depth[0] = 0.0
            np.save(os.path.join(gt_dir, f"{i:010d}.npy"), depth)
    lines = split_lines or {
        "train": [f"{DRIVE} {i} {s}" for i in range(1, frames - 1) for s in "lr"],
        "val": [f"{DRIVE} {i} l" for i in range(1, frames - 1)],
        "test": [f"{DRIVE} {i:010d} l" for i in range(frames)],
    }
    for subset, subset_lines in lines.items():
        os.makedirs(os.path.join(root, "splits", "synthetic"), exist_ok=True)
        with open(os.path.join(root, "splits", "synthetic", f"{subset}_files.txt"), "w") as f:
            f.write("\n".join(subset_lines) + "\n")
    return root
