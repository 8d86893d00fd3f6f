"""KITTI reader: paths, calibration intrinsics, stereo transform, validation errors, test images."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from md2tf.data import kitti_layout
from md2tf.data.splits import SplitEntry, parse_split_line, read_split
from tests.data import fake_kitti


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fake_kitti.write_tree(str(tmp_path_factory.mktemp("kitti")), frames=4)


def _split(tmp_path, lines):
    path = tmp_path / "files.txt"
    path.write_text("\n".join(lines) + "\n")
    return read_split(str(path))


def test_raw_paths():
    entry = parse_split_line("2011_09_26/2011_09_26_drive_0022_sync 473 r")
    root = "/data"
    assert kitti_layout.image_path(root, entry) == (
        "/data/2011_09_26/2011_09_26_drive_0022_sync/image_03/data/0000000473.jpg")
    assert kitti_layout.image_path(root, entry, -1, ext=".png").endswith("image_03/data/0000000472.png")
    assert kitti_layout.image_path(root, entry, 0, side="l").endswith("image_02/data/0000000473.jpg")
    assert kitti_layout.calib_path(root, entry) == "/data/2011_09_26/calib_cam_to_cam.txt"
    assert kitti_layout.depth_gt_path(root, entry).endswith(
        "drive_0022_sync/depth_gt/image_03/0000000473.npy")


def test_odom_and_benchmark_paths():
    odom = parse_split_line("8 4056 l")
    assert kitti_layout.image_path("/d", odom, 1) == "/d/sequences/08/image_2/004057.jpg"
    assert kitti_layout.image_path("/d", odom, 0, side="r") == "/d/sequences/08/image_3/004056.jpg"
    assert kitti_layout.calib_path("/d", odom) == "/d/sequences/08/calib.txt"
    bench = parse_split_line("image 7")
    assert kitti_layout.image_path("/d", bench, ext=".png") == "/d/image/0000000007.png"


def test_other_side():
    assert kitti_layout.other_side("l") == "r" and kitti_layout.other_side("r") == "l"
    with pytest.raises(ValueError, match="side must be"):
        kitti_layout.other_side("s")


def test_calib_intrinsics_normalised_by_rect_size(tree):
    calib = os.path.join(tree, fake_kitti.DATE, "calib_cam_to_cam.txt")
    K = kitti_layout.calib_intrinsics(calib, "l")
    expected = np.array([[fake_kitti.FX / fake_kitti.RAW_WIDTH, 0, fake_kitti.CX / fake_kitti.RAW_WIDTH],
                         [0, fake_kitti.FY / fake_kitti.RAW_HEIGHT, fake_kitti.CY / fake_kitti.RAW_HEIGHT],
                         [0, 0, 1]])
    np.testing.assert_allclose(K, expected, rtol=1e-6)
    assert K.dtype == np.float32


def test_calib_intrinsics_odometry_uses_image_size(tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text("P2: 100 0 50 1 0 80 20 0 0 0 1 0\nP3: 100 0 50 -5 0 80 20 0 0 0 1 0\n")
    from PIL import Image

    image = tmp_path / "000000.png"
    Image.fromarray(np.zeros((40, 200, 3), np.uint8)).save(image)
    K = kitti_layout.calib_intrinsics(str(calib), "r", str(image))
    np.testing.assert_allclose(K[:2], [[0.5, 0, 0.25], [0, 2.0, 0.5]], rtol=1e-6)
    with pytest.raises(ValueError, match="no S_rect_03 image size"):
        kitti_layout.calib_intrinsics(str(calib), "r")


def test_calib_missing_projection(tmp_path):
    calib = tmp_path / "calib_cam_to_cam.txt"
    calib.write_text("calib_time: today\nK_02: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_cam.txt: no 3x4 P_rect_02"):
        kitti_layout.calib_intrinsics(str(calib), "l")


@pytest.mark.parametrize("side_sign, flipped, expected", [
    (-1.0, False, -0.1), (1.0, False, 0.1), (-1.0, True, 0.1), (1.0, True, -0.1)])
def test_stereo_transform_signs(side_sign, flipped, expected):
    T = kitti_layout.stereo_source_from_target(side_sign, flipped)
    want = np.eye(4, dtype=np.float32)
    want[0, 3] = expected
    np.testing.assert_allclose(T, want, atol=1e-7)
    np.testing.assert_allclose(kitti_layout.stereo_source_from_target(side_sign, flipped, 0.54)[0, 3],
                               expected * 5.4, rtol=1e-6)


def test_build_samples_sources_and_intrinsics(tree, tmp_path):
    entries = _split(tmp_path, [f"{fake_kitti.DRIVE} 1 l", f"{fake_kitti.DRIVE} 2 r"])
    samples = kitti_layout.build_samples(entries, tree, temporal_offsets=(-1, 1), use_stereo=True,
                                  image_ext=".png", intrinsics="calib")
    first, second = samples
    assert first.target.endswith("image_02/data/0000000001.png")
    assert [os.path.relpath(p, tree).split(os.sep)[-3:] for p in first.sources] == [
        ["image_02", "data", "0000000000.png"], ["image_02", "data", "0000000002.png"],
        ["image_03", "data", "0000000001.png"]]
    assert second.sources[-1].endswith("image_02/data/0000000002.png")
    assert (first.side_sign, second.side_sign) == (-1.0, 1.0)
    np.testing.assert_allclose(first.intrinsics[0, 0], fake_kitti.FX / fake_kitti.RAW_WIDTH)
    assert first.depth_gt.endswith("depth_gt/image_02/0000000001.npy")
    assert second.depth_gt == ""  # the fake tree has GT for image_02 only
    fixed = kitti_layout.build_samples(entries, tree, image_ext=".png")
    np.testing.assert_array_equal(fixed[0].intrinsics, kitti_layout.FIXED_INTRINSICS_NORMALIZED)


@pytest.mark.parametrize("line, what", [
    (f"{fake_kitti.DRIVE} 0 l", "neighbour frame -1"),
    (f"{fake_kitti.DRIVE} 3 l", "neighbour frame +1"),
    (f"{fake_kitti.DRIVE} 9 r", "image"),
])
def test_missing_file_names_split_line_and_path(tree, tmp_path, line, what):
    entries = _split(tmp_path, [f"{fake_kitti.DRIVE} 1 l", line])
    with pytest.raises(ValueError, match=rf"files.txt:2: missing {re.escape(what)}: .*{fake_kitti.DATE}"):
        kitti_layout.build_samples(entries, tree, image_ext=".png")


def test_missing_stereo_partner_and_calib(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "t"), frames=3)
    os.remove(os.path.join(root, fake_kitti.DRIVE, "image_03", "data", "0000000001.png"))
    entries = _split(tmp_path, [f"{fake_kitti.DRIVE} 1 l"])
    with pytest.raises(ValueError, match=r"files.txt:1: missing stereo partner: .*image_03"):
        kitti_layout.build_samples(entries, root, temporal_offsets=(), use_stereo=True, image_ext=".png")
    os.remove(os.path.join(root, fake_kitti.DATE, "calib_cam_to_cam.txt"))
    with pytest.raises(ValueError, match=r"files.txt:1: missing calibration file: .*calib_cam_to_cam"):
        kitti_layout.build_samples(entries, root, image_ext=".png", intrinsics="calib")


def test_missing_extension_reports_jpg(tree, tmp_path):
    entries = _split(tmp_path, [f"{fake_kitti.DRIVE} 1 l"])
    with pytest.raises(ValueError, match=r"missing image: .*0000000001\.jpg"):
        kitti_layout.build_samples(entries, tree, image_ext=".jpg")


def test_benchmark_entry_without_side_rejects_stereo():
    entry = SplitEntry("image", 0, None, "benchmark", "b.txt", 4)
    with pytest.raises(ValueError, match=r"b.txt:4: stereo needs a side"):
        kitti_layout.build_samples([entry], "/nowhere", temporal_offsets=(), use_stereo=True)


def test_load_test_images(tree):
    split = os.path.join(tree, "splits", "synthetic", "test_files.txt")
    items = list(kitti_layout.load_test_images(tree, split, ".png"))
    assert len(items) == 4
    name, image = items[2]
    assert name == f"{fake_kitti.DRIVE} 2 l"
    np.testing.assert_array_equal(image, fake_kitti.frame_image(2, "l"))


def _download_script():
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "download_kitti.py")
    spec = importlib.util.spec_from_file_location("download_kitti", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_download_script_file_url_and_jpeg_conversion(tmp_path):
    script = _download_script()
    src = tmp_path / "src.txt"
    src.write_text("a/b_sync 1 l\n")
    dst = script.download(src.as_uri(), str(tmp_path / "out" / "eigen" / "test_files.txt"), quiet=True)
    assert open(dst).read() == "a/b_sync 1 l\n" and not os.path.exists(dst + ".part")
    root = fake_kitti.write_tree(str(tmp_path / "k"), frames=3)
    assert script.convert_png_to_jpeg(root) == 6
    jpg = os.path.join(root, fake_kitti.DRIVE, "image_02", "data", "0000000001.jpg")
    from PIL import Image

    with Image.open(jpg) as image:
        assert image.format == "JPEG" and image.size == (fake_kitti.RAW_WIDTH, fake_kitti.RAW_HEIGHT)
    assert not os.path.exists(jpg[:-4] + ".png")


def test_velodyne_projection_and_samples(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "v"), frames=3, with_velodyne=True)
    calib_dir = os.path.join(root, fake_kitti.DATE)
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3] = fake_kitti.VELO_TO_CAM_R
    for side, tx in (("l", 45.0), ("r", -340.0)):
        p_rect = np.array([[fake_kitti.FX, 0, fake_kitti.CX, tx], [0, fake_kitti.FY, fake_kitti.CY, 0],
                           [0, 0, 1, 0]])
        P = kitti_layout.velo_to_image_projection(calib_dir, side)
        np.testing.assert_allclose(P, p_rect @ velo_to_cam, rtol=1e-6)
    # 10 m straight ahead of the lidar lands on the principal point (+ tx / z) at depth z = 10
    uvz = kitti_layout.velo_to_image_projection(calib_dir, "l") @ np.array([10.0, 0, 0, 1])
    np.testing.assert_allclose(uvz / uvz[2], [fake_kitti.CX + 4.5, fake_kitti.CY, 1.0], rtol=1e-6)
    entries = _split(tmp_path, [f"{fake_kitti.DRIVE} 1 l", f"{fake_kitti.DRIVE} 1 r"])
    left, right = kitti_layout.build_samples(entries, root, image_ext=".png")
    assert left.depth_gt and not left.velodyne  # dense GT wins
    assert not right.depth_gt and right.velodyne.endswith("velodyne_points/data/0000000001.bin")
    np.testing.assert_allclose(right.velo_projection, kitti_layout.velo_to_image_projection(calib_dir, "r"))
    os.remove(os.path.join(calib_dir, "calib_velo_to_cam.txt"))
    assert kitti_layout.build_samples(entries, root, image_ext=".png")[1].velodyne == ""  # GT is optional
