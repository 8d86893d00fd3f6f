"""GT export: projection with known geometry, the reference's duplicate rule, files and errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from md2tf.evaluation import gt_depth

# A simple rig: velodyne x forward, y left, z up -> camera x right, y down, z forward.
VELO_TO_CAM_R = np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0]], np.float64)
VELO_TO_CAM_T = np.array([0.0, -0.1, 0.2])
FX, FY, CX, CY = 50.0, 40.0, 20.5, 10.5
H, W = 24, 40


def write_calib(calib_dir):
    os.makedirs(calib_dir, exist_ok=True)
    p = np.array([[FX, 0, CX, 0], [0, FY, CY, 0], [0, 0, 1, 0]], np.float64)
    fmt = " ".join
    with open(os.path.join(calib_dir, "calib_cam_to_cam.txt"), "w") as f:
        f.write("calib_time: 09-Jan-2012 13:57:47\n")
        f.write(f"S_rect_02: {W}.0 {H}.0\n")
        f.write("R_rect_00: " + fmt(str(v) for v in np.eye(3).ravel()) + "\n")
        f.write("P_rect_02: " + fmt(str(v) for v in p.ravel()) + "\n")
    with open(os.path.join(calib_dir, "calib_velo_to_cam.txt"), "w") as f:
        f.write("calib_time: 15-Mar-2012 11:37:16\n")
        f.write("R: " + fmt(str(v) for v in VELO_TO_CAM_R.ravel()) + "\n")
        f.write("T: " + fmt(str(v) for v in VELO_TO_CAM_T) + "\n")


def velo_point_for_pixel(col, row, x_forward):
    """Velodyne point that projects to 1-based rounded pixel (col + 1, row + 1) at velodyne depth x."""
    z_cam = x_forward + VELO_TO_CAM_T[2]
    u, v = col + 1, row + 1
    x_cam, y_cam = (u - CX) * z_cam / FX, (v - CY) * z_cam / FY
    # camera = R velo + T  ->  velo = R^T (camera - T)
    return VELO_TO_CAM_R.T @ (np.array([x_cam, y_cam, z_cam]) - VELO_TO_CAM_T)


def reference_depth_map(points, projection, shape):
    """Loop version of the reference ``generate_depth_map`` recipe, written independently."""
    h, w = shape
    depth = np.zeros(shape)
    entries = []
    for p in points:
        if p[0] < 0:
            continue
        q = projection @ np.array([p[0], p[1], p[2], 1.0])
        col, row = round(q[0] / q[2]) - 1, round(q[1] / q[2]) - 1
        if 0 <= col < w and 0 <= row < h:
            entries.append((row, col, float(p[0])))
            depth[row, col] = p[0]
    groups = {}
    for row, col, d in entries:
        groups.setdefault(row * (w - 1) + col - 1, []).append((row, col, d))
    for members in groups.values():
        if len(members) > 1:
            depth[members[0][0], members[0][1]] = min(m[2] for m in members)
    depth[depth < 0] = 0
    return depth


def test_calibration_projection(tmp_path):
    write_calib(str(tmp_path))
    projection, shape = gt_depth.velodyne_projection(str(tmp_path), 2)
    assert shape == (H, W)
    point = velo_point_for_pixel(7, 5, 12.0)
    q = projection @ np.append(point, 1.0)
    np.testing.assert_allclose(q[:2] / q[2], [8.0, 6.0], atol=1e-9)


def test_known_points_land_on_known_pixels(tmp_path):
    write_calib(str(tmp_path))
    projection, shape = gt_depth.velodyne_projection(str(tmp_path), 2)
    pts = [velo_point_for_pixel(3, 4, 10.0), velo_point_for_pixel(30, 20, 25.0), velo_point_for_pixel(0, 0, 5.0)]
    behind = np.array([-5.0, 0.0, 0.0])
    outside = velo_point_for_pixel(W + 3, 2, 8.0)
    points = np.stack(pts + [behind, outside])
    depth = gt_depth.project_points_to_depth_map(np.c_[points, np.zeros(len(points))], projection, shape)
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    assert depth[4, 3] == pytest.approx(10.0) and depth[20, 30] == pytest.approx(25.0)
    assert depth[0, 0] == pytest.approx(5.0)
    assert np.count_nonzero(depth) == 3


def test_duplicates_take_minimum_and_quirky_index(tmp_path):
    write_calib(str(tmp_path))
    projection, shape = gt_depth.velodyne_projection(str(tmp_path), 2)
    pts = [
        velo_point_for_pixel(5, 5, 20.0), velo_point_for_pixel(5, 5, 9.0), velo_point_for_pixel(5, 5, 15.0),
        # (row 2, col W-1) and (row 3, col 0) share the reference index row*(W-1)+col-1
        velo_point_for_pixel(W - 1, 2, 30.0), velo_point_for_pixel(0, 3, 12.0),
    ]
    points = np.stack(pts)
    depth = gt_depth.project_points_to_depth_map(points, projection, shape)
    assert depth[5, 5] == pytest.approx(9.0)  # true duplicates -> minimum, not last (15)
    # quirk: the first point's pixel gets the group minimum, the other keeps its own value
    assert depth[2, W - 1] == pytest.approx(12.0)
    assert depth[3, 0] == pytest.approx(12.0)
    np.testing.assert_allclose(depth, reference_depth_map(points, projection, shape), rtol=1e-6)


def test_random_cloud_matches_loop_reference(tmp_path, rng):
    write_calib(str(tmp_path))
    projection, shape = gt_depth.velodyne_projection(str(tmp_path), 2)
    n = 3000
    points = np.c_[rng.uniform(-5, 40, n), rng.uniform(-15, 15, n), rng.uniform(-3, 2, n), rng.uniform(size=n)]
    points = points.astype(np.float32)
    got = gt_depth.project_points_to_depth_map(points, projection, shape)
    want = reference_depth_map(points.astype(np.float64), projection, shape)
    assert np.count_nonzero(want) > 100
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_dense_depth_consistency_for_plane(tmp_path):
    """Points sampled on a fronto-parallel wall give depth = wall distance wherever they land."""
    write_calib(str(tmp_path))
    projection, shape = gt_depth.velodyne_projection(str(tmp_path), 2)
    ys, zs = np.meshgrid(np.linspace(-8, 8, 200), np.linspace(-4, 3, 100))
    points = np.c_[np.full(ys.size, 15.0), ys.ravel(), zs.ravel()]
    depth = gt_depth.project_points_to_depth_map(points, projection, shape)
    assert np.count_nonzero(depth) > 0.5 * H * W
    np.testing.assert_allclose(depth[depth > 0], 15.0)


def make_world(root, split="eigen"):
    """Two frames in KITTI raw layout with velodyne, PNG and dense GT, plus the split file."""
    date, drive = "2011_09_26", "2011_09_26_drive_0001_sync"
    write_calib(os.path.join(root, date))
    lines, dense = [], []
    for frame in (0, 7):
        folder = os.path.join(root, date, drive)
        os.makedirs(os.path.join(folder, "velodyne_points", "data"), exist_ok=True)
        pts = np.stack([np.r_[velo_point_for_pixel(4 + frame, 6, 10.0 + frame), 0.3]]).astype(np.float32)
        pts.tofile(os.path.join(folder, "velodyne_points", "data", f"{frame:010d}.bin"))
        png_dir = os.path.join(folder, "proj_depth", "groundtruth", "image_02")
        os.makedirs(png_dir, exist_ok=True)
        png = np.zeros((H, W), np.uint16)
        png[1, 2] = 256 * 3 + 128  # 3.5 m
        Image.fromarray(png).save(os.path.join(png_dir, f"{frame:010d}.png"))
        dense_dir = os.path.join(folder, "depth_gt", "image_02")
        os.makedirs(dense_dir, exist_ok=True)
        d = np.full((H, W), 5.0 + frame, np.float32)
        np.save(os.path.join(dense_dir, f"{frame:010d}.npy"), d)
        dense.append(d)
        lines.append(f"{date}/{drive} {frame:010d} l")
    os.makedirs(os.path.join(root, "splits", split), exist_ok=True)
    with open(os.path.join(root, "splits", split, "test_files.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return dense


def test_export_velodyne_png_dense(tmp_path):
    root = str(tmp_path)
    dense = make_world(root)
    splits = os.path.join(root, "splits")
    path = gt_depth.export_gt_depths("eigen", root, splits)
    assert path == os.path.join(splits, "eigen", "gt_depths.npz")
    with np.load(path, allow_pickle=False) as f:  # no object arrays: loads without pickle
        assert sorted(f.files) == ["depth_000000", "depth_000001"]
        data = [f["depth_000000"], f["depth_000001"]]
    assert data[0].dtype == np.float32
    assert data[0][6, 4] == pytest.approx(10.0) and data[1][6, 11] == pytest.approx(17.0)
    maps = gt_depth.load_gt_depths(path)
    np.testing.assert_array_equal(maps[1], data[1])

    out = os.path.join(root, "png.npz")
    gt_depth.export_gt_depths("eigen", root, splits, source="png", output=out)
    maps = gt_depth.load_gt_depths(out)
    assert maps[0][1, 2] == 3.5 and np.count_nonzero(maps[0]) == 1

    out = os.path.join(root, "dense.npz")
    gt_depth.export_gt_depths("eigen", root, splits, source="dense", output=out)
    for got, want in zip(gt_depth.load_gt_depths(out), dense):
        np.testing.assert_array_equal(got, want)


def test_default_sources():
    assert gt_depth.default_gt_source("eigen") == "velodyne"
    assert gt_depth.default_gt_source("eigen_benchmark") == "png"
    assert gt_depth.default_gt_source("synthetic") == "dense"  # declared by the synthetic dataset
    assert gt_depth.default_gt_source("my_kitti_split") == "velodyne"


def test_missing_gt_file_names_the_command(tmp_path):
    with pytest.raises(ValueError, match="python -m md2tf.export_gt --split eigen"):
        gt_depth.load_gt_depths(str(tmp_path / "nope.npz"), split="eigen", splits_dir="splits")


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"\[N, 3\+\]"):
        gt_depth.project_points_to_depth_map(np.ones((5, 2)), np.ones((3, 4)), (4, 4))
    with pytest.raises(ValueError, match="calibration file not found"):
        gt_depth.velodyne_projection(str(tmp_path))
    with pytest.raises(ValueError, match="gt_source"):
        gt_depth.export_gt_depths("eigen", str(tmp_path), str(tmp_path), source="lidar")


class _RunsCommand:
    """Unpickling this object runs ``touch <marker>`` (a crafted GT file's payload)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickled_gt_file_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = np.zeros((2, 3), np.float32), _RunsCommand(str(marker))
    path = tmp_path / "gt_depths.npz"
    np.savez(path, data=payload)
    with pytest.raises(ValueError, match=r"pickled.*python -m md2tf.export_gt --split eigen"):
        gt_depth.load_gt_depths(str(path), split="eigen", splits_dir="splits")
    assert not marker.exists()


def test_ragged_maps_round_trip_and_reference_plain_array_loads(tmp_path):
    maps = [np.full((3, 4), 2.5, np.float32), np.arange(10, dtype=np.float32).reshape(2, 5)]
    gt_depth.save_gt_depths(str(tmp_path / "a.npz"), maps)
    for got, want in zip(gt_depth.load_gt_depths(str(tmp_path / "a.npz")), maps, strict=True):
        np.testing.assert_array_equal(got, want)
    # Same-size maps as one plain [N, H, W] array under "data" (no pickle needed).
    same = np.random.default_rng(0).uniform(1, 80, size=(3, 4, 5))
    np.savez(tmp_path / "b.npz", data=same)
    got = gt_depth.load_gt_depths(str(tmp_path / "b.npz"))
    assert len(got) == 3 and got[2].dtype == np.float32
    np.testing.assert_allclose(got[2], same[2], rtol=1e-6)


def test_unreadable_gt_files_name_the_file(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz"):
        gt_depth.load_gt_depths(str(junk))
    np.savez(tmp_path / "gap.npz", depth_000000=np.ones((2, 2)), depth_000002=np.ones((2, 2)))
    with pytest.raises(ValueError, match="without gaps"):
        gt_depth.load_gt_depths(str(tmp_path / "gap.npz"))
    np.savez(tmp_path / "other.npz", depths=np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="other.npz: expected keys depth_000000"):
        gt_depth.load_gt_depths(str(tmp_path / "other.npz"))
