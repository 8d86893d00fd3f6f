"""The written world: KITTI raw layout, calibration round trip, lidar vs dense GT, splits, ensure_world."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from md2tf.data.kitti_layout import calib_intrinsics
from md2tf.data.synthetic import (
    WorldConfig,
    camera_intrinsics,
    ensure_world,
    kitti_like_intrinsics,
    read_calib_file,
    writer,
)


def _drive_dirs(out: str, cfg: WorldConfig) -> list[str]:
    return [os.path.join(out, cfg.date, f"{cfg.date}_drive_{d:04d}_sync") for d in range(cfg.drives)]


def test_kitti_raw_layout(tiny_world):
    out, cfg = tiny_world
    for ddir in _drive_dirs(out, cfg):
        for f in range(cfg.frames):
            for cam in ("02", "03"):
                img = Image.open(os.path.join(ddir, f"image_{cam}", "data", f"{f:010d}.png"))
                assert img.size == (cfg.width, cfg.height) and img.mode == "RGB"
                depth = np.load(os.path.join(ddir, "depth_gt", f"image_{cam}", f"{f:010d}.npy"))
                assert depth.shape == (cfg.height, cfg.width) and depth.dtype == np.float32
                assert depth.min() == 0.0 and 0 < depth.max() < 500  # sky = 0
            velo = np.fromfile(os.path.join(ddir, "velodyne_points", "data", f"{f:010d}.bin"), np.float32)
            assert velo.size % 4 == 0 and velo.size > 4 * 1000
        assert len(open(os.path.join(ddir, "image_02", "timestamps.txt")).readlines()) == cfg.frames


def test_calib_parses_back_to_k_and_baseline(tiny_world):
    out, cfg = tiny_world
    cam = read_calib_file(os.path.join(out, cfg.date, "calib_cam_to_cam.txt"))
    k = kitti_like_intrinsics(cfg.height, cfg.width)
    p2, p3 = cam["P_rect_02"].reshape(3, 4), cam["P_rect_03"].reshape(3, 4)
    np.testing.assert_allclose(p2[:, :3], k, rtol=1e-6)
    np.testing.assert_allclose(p3[:, :3], k, rtol=1e-6)
    np.testing.assert_allclose((p2[0, 3] - p3[0, 3]) / p2[0, 0], 0.54, rtol=1e-6)  # baseline 02 -> 03
    np.testing.assert_array_equal(cam["S_rect_02"], [cfg.width, cfg.height])
    np.testing.assert_array_equal(cam["R_rect_00"].reshape(3, 3), np.eye(3))
    velo = read_calib_file(os.path.join(out, cfg.date, "calib_velo_to_cam.txt"))
    r = velo["R"].reshape(3, 3)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(r @ [1.0, 0, 0], [0, 0, 1.0])  # velodyne forward = camera z
    np.testing.assert_allclose(r @ [0, 0, 1.0], [0, -1.0, 0])  # velodyne up = camera -y
    assert velo["T"].shape == (3,)


def test_calib_of_a_non_kitti_camera(tmp_path):
    """A world with a 70 degree field of view and an off-centre principal point writes that K in
    P_rect_02/03 and K_0x, and ``--intrinsics=calib`` reads it back."""
    cfg = WorldConfig(drives=1, frames=3, height=48, width=160, seed=3, ext="png", lidar=False,
                      odometry=False, fov_deg=70.0, principal_offset_x=0.05, principal_offset_y=0.05)
    out = ensure_world(str(tmp_path), cfg)
    k = camera_intrinsics(cfg)
    f = 160 / (2 * np.tan(np.deg2rad(35.0)))
    np.testing.assert_allclose(k, [[f, 0, 79.5 + 8.0], [0, f, 23.5 + 2.4], [0, 0, 1]])
    calib_file = os.path.join(out, cfg.date, "calib_cam_to_cam.txt")
    cam = read_calib_file(calib_file)
    for c in ("02", "03"):
        np.testing.assert_allclose(cam[f"P_rect_{c}"].reshape(3, 4)[:, :3], k, rtol=1e-6)
        np.testing.assert_allclose(cam[f"K_{c}"].reshape(3, 3), k, rtol=1e-6)
    normalized = calib_intrinsics(calib_file, "l")
    np.testing.assert_allclose(normalized[0] * 160, k[0], rtol=1e-5)
    np.testing.assert_allclose(normalized[1] * 48, k[1], rtol=1e-5)


def test_lidar_projects_onto_matching_dense_depth(tiny_world):
    """The reference GT recipe (P_rect_02 R_rect_00 [R|T], x_velo >= 0), rounded to the nearest pixel."""
    out, cfg = tiny_world
    cam = read_calib_file(os.path.join(out, cfg.date, "calib_cam_to_cam.txt"))
    velo = read_calib_file(os.path.join(out, cfg.date, "calib_velo_to_cam.txt"))
    velo_to_cam = np.eye(4)
    velo_to_cam[:3, :3], velo_to_cam[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
    r_rect = np.eye(4)
    r_rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
    proj = cam["P_rect_02"].reshape(3, 4) @ r_rect @ velo_to_cam
    ddir = _drive_dirs(out, cfg)[0]
    pts = np.fromfile(os.path.join(ddir, "velodyne_points", "data", f"{1:010d}.bin"), np.float32)
    pts = pts.reshape(-1, 4).astype(np.float64)
    pts = pts[pts[:, 0] >= 0]
    uvz = np.concatenate([pts[:, :3], np.ones((len(pts), 1))], 1) @ proj.T
    u, v = np.round(uvz[:, 0] / uvz[:, 2]).astype(int), np.round(uvz[:, 1] / uvz[:, 2]).astype(int)
    inside = (u >= 0) & (u < cfg.width) & (v >= 0) & (v < cfg.height) & (uvz[:, 2] > 0)
    assert inside.sum() > 500
    dense = np.load(os.path.join(ddir, "depth_gt", "image_02", f"{1:010d}.npy"))
    z, d = uvz[inside, 2], dense[v[inside], u[inside]]
    rel = np.abs(d - z) / z
    assert np.median(rel) < 0.01, np.median(rel)
    assert np.mean(rel < 0.05) > 0.9, np.mean(rel < 0.05)
    # Independent check of the velodyne frame: the ground (z_velo ~ -1.73) is below the sensor.
    assert np.percentile(pts[:, 2], 1) == pytest.approx(-1.73, abs=0.05)


def test_poses_file(tiny_world):
    out, cfg = tiny_world
    poses = np.loadtxt(os.path.join(_drive_dirs(out, cfg)[0], "poses.txt")).reshape(-1, 3, 4)
    assert poses.shape[0] == cfg.frames
    np.testing.assert_allclose(poses[0], np.eye(4)[:3], atol=1e-6)
    for p in poses:
        np.testing.assert_allclose(p[:, :3] @ p[:, :3].T, np.eye(3), atol=1e-6)
        assert abs(p[1, 3]) < 1e-6  # flat street: no vertical motion
    assert poses[-1, 2, 3] >= 0  # drives forward (+z of camera 02)


_RAW_LINE = re.compile(r"^(\d{4}_\d\d_\d\d)/(\1_drive_\d{4}_sync) (\d+) ([lr])$")
_TEST_LINE = re.compile(r"^(\d{4}_\d\d_\d\d)/(\1_drive_\d{4}_sync) (\d{10}) l$")


def test_split_files_format_and_neighbours(tiny_world):
    out, cfg = tiny_world
    sdir = os.path.join(out, "splits", "synthetic")
    drives = {}
    for role in ("train", "val"):
        lines = open(os.path.join(sdir, f"{role}_files.txt")).read().splitlines()
        assert lines
        for line in lines:
            m = _RAW_LINE.match(line)
            assert m, line
            frame = int(m.group(3))
            folder = os.path.join(out, m.group(1), m.group(2), f"image_0{2 if m.group(4) == 'l' else 3}", "data")
            for f in (frame - 1, frame, frame + 1):
                assert os.path.exists(os.path.join(folder, f"{f:010d}.png")), line
            drives.setdefault(role, set()).add(m.group(2))
    tests = open(os.path.join(sdir, "test_files.txt")).read().splitlines()
    assert tests and all(_TEST_LINE.match(x) for x in tests)
    drives["test"] = {_TEST_LINE.match(x).group(2) for x in tests}
    assert not (drives["train"] & drives["val"]) and not (drives["train"] & drives["test"])


def test_split_roles_small_worlds_cut_in_time():
    roles = writer.split_roles(WorldConfig(drives=1, frames=20))
    train, val, test = ([f for _, f in roles[r]] for r in ("train", "val", "test"))
    assert min(train) == 1 and max(train) < min(val) and max(val) < min(test) and max(test) == 19
    assert max(val) <= 18


def test_odometry_view(tiny_world):
    out, cfg = tiny_world
    link = os.path.join(out, "odometry", "sequences", "01", "image_3", "000002.png")
    assert os.path.islink(link) and os.path.exists(link)
    calib = read_calib_file(os.path.join(out, "odometry", "sequences", "01", "calib.txt"))
    np.testing.assert_allclose(calib["P2"].reshape(3, 4)[:, :3], kitti_like_intrinsics(cfg.height, cfg.width))
    assert np.loadtxt(os.path.join(out, "odometry", "poses", "01.txt")).shape == (cfg.frames, 12)
    lines = open(os.path.join(out, "splits", "synthetic_odom", "train_files.txt")).read().splitlines()
    assert lines and all(re.match(r"^\d+ \d+ [lr]$", x) for x in lines)
    test_lines = open(os.path.join(out, "splits", "synthetic_odom", "test_files_02.txt")).read().split("\n")
    pairs_first = [int(x.split()[1]) for x in test_lines if x]
    # every line starts a (frame, frame + 1) pair: the second frame exists, the drive's last frame is no line
    assert pairs_first and max(pairs_first) == cfg.frames - 2
    for f in pairs_first:
        assert os.path.exists(os.path.join(out, "odometry", "sequences", "02", "image_2", f"{f + 1:06d}.png"))


def test_older_split_files_are_rewritten_without_rendering(tmp_path):
    kw = dict(drives=1, frames=6, height=16, width=32, lidar=False, odometry=True)
    out = ensure_world(str(tmp_path), **kw)
    manifest = os.path.join(out, writer.MANIFEST)
    found = json.load(open(manifest))
    del found["splits_version"]
    json.dump(found, open(manifest, "w"))
    odom = os.path.join(out, "splits", "synthetic_odom", "test_files_00.txt")
    open(odom, "w").write("0 5 l\n")  # a stale line: frame 5 has no next frame
    image = os.path.join(out, "2019_10_27", "2019_10_27_drive_0000_sync", "image_02", "data", "0000000000.png")
    before = os.stat(image).st_mtime_ns
    ensure_world(str(tmp_path), **kw)
    assert "0 5 l" not in open(odom).read()
    assert json.load(open(manifest))["splits_version"] == writer.SPLITS_VERSION
    assert os.stat(image).st_mtime_ns == before  # not re-rendered


class TestEnsureWorld:
    KW = dict(drives=1, frames=3, height=16, width=32, lidar=False, odometry=False)

    def test_generates_once_then_reuses(self, tmp_path, monkeypatch):
        out = str(tmp_path)
        assert ensure_world(out, **self.KW) == out
        manifest = json.load(open(os.path.join(out, writer.MANIFEST)))
        assert manifest["config"]["frames"] == 3

        def fail(*args, **kwargs):
            raise AssertionError("regenerated a complete world")

        monkeypatch.setattr(writer, "generate_world", fail)
        assert ensure_world(out, **self.KW) == out

    def test_missing_manifest_regenerates(self, tmp_path):
        out = str(tmp_path)
        ensure_world(out, **self.KW)
        img = os.path.join(out, "2019_10_27", "2019_10_27_drive_0000_sync", "image_02", "data", "0000000001.png")
        os.remove(img)
        os.remove(os.path.join(out, writer.MANIFEST))  # as if generation had crashed
        ensure_world(out, **self.KW)
        assert os.path.exists(img) and os.path.exists(os.path.join(out, writer.MANIFEST))

    def test_older_format_regenerates(self, tmp_path):
        out = str(tmp_path)
        ensure_world(out, **self.KW)
        path = os.path.join(out, writer.MANIFEST)
        manifest = json.load(open(path))
        manifest["format_version"] = writer.FORMAT_VERSION - 1
        json.dump(manifest, open(path, "w"))
        ensure_world(out, **self.KW)
        assert json.load(open(path))["format_version"] == writer.FORMAT_VERSION

    def test_other_parameters_raise_unless_overwrite(self, tmp_path):
        out = str(tmp_path)
        ensure_world(out, **self.KW)
        with pytest.raises(ValueError, match=r"other parameters \(seed: \d+ there, 5 wanted; "
                           r"see synthetic_world.json\): give another --data_dir .* or delete "
                           ) as error:
            ensure_world(out, **{**self.KW, "seed": 5})
        assert "overwrite" not in str(error.value)  # a library argument, not a command-line flag
        ensure_world(out, overwrite=True, **{**self.KW, "seed": 5})
        assert json.load(open(os.path.join(out, writer.MANIFEST)))["config"]["seed"] == 5

    def test_manifest_of_an_older_writer_regenerates(self, tmp_path):
        """A manifest that records other parameters than `WorldConfig` has now (a world written
        before one existed) describes a world of unknown parameters: it is rendered again."""
        out = str(tmp_path)
        ensure_world(out, **self.KW)
        path = os.path.join(out, writer.MANIFEST)
        manifest = json.load(open(path))
        del manifest["config"]["speed_variation"]
        json.dump(manifest, open(path, "w"))
        ensure_world(out, **self.KW)
        assert json.load(open(path))["config"] == json.loads(json.dumps(
            writer.rendered(WorldConfig(**self.KW)).to_dict()))

    def test_takes_a_world_config_and_fills_in_an_open_size_and_format(self, tmp_path, monkeypatch):
        rendered = []
        monkeypatch.setattr(writer, "generate_world", lambda out, config, **kw: rendered.append(config))
        ensure_world(str(tmp_path), WorldConfig(drives=2), frames=5)
        assert rendered == [WorldConfig(drives=2, frames=5, height=375, width=1242, ext="png")]

    def test_unknown_parameter(self, tmp_path):
        with pytest.raises(ValueError, match="unknown parameters.*colour"):
            ensure_world(str(tmp_path), colour="red")

    def test_jpg(self, tmp_path):
        out = str(tmp_path)
        ensure_world(out, ext="jpg", **self.KW)
        img = Image.open(os.path.join(out, "2019_10_27", "2019_10_27_drive_0000_sync", "image_03", "data",
                                      "0000000002.jpg"))
        assert img.format == "JPEG" and img.size == (32, 16)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    from md2tf.data.synthetic.__main__ import GenerateConfig, main
    from md2tf.flags import call_command

    assert call_command(main, GenerateConfig, ["--out", str(tmp_path), "--frames", "2"]) == 2
    assert "frames must be >= 3" in capsys.readouterr().err


@pytest.mark.slow
def test_default_size_frame(tmp_path):
    """One drive of 3 frames at the default 375 x 1242 (a few seconds)."""
    out = ensure_world(str(tmp_path), drives=1, frames=3, odometry=False)
    ddir = os.path.join(out, "2019_10_27", "2019_10_27_drive_0000_sync")
    assert Image.open(os.path.join(ddir, "image_02", "data", "0000000001.png")).size == (1242, 375)
    depth = np.load(os.path.join(ddir, "depth_gt", "image_02", "0000000001.npy"))
    k = kitti_like_intrinsics(375, 1242)
    v = np.arange(355.0, 375.0)[:, None] * np.ones((1, 40))
    bottom = depth[355:, 600:640]  # the road just in front of the camera
    np.testing.assert_allclose(bottom, 1.65 * k[1, 1] / (v - k[1, 2]), rtol=1e-5)
    pts = np.fromfile(os.path.join(ddir, "velodyne_points", "data", "0000000001.bin"), np.float32)
    assert pts.size // 4 > 50_000  # a 64-beam sweep


def test_parallel_generation_is_identical(tmp_path):
    """Two worker processes write byte-identical files to one process (determinism per seed)."""
    kw = dict(drives=2, frames=3, height=16, width=48, lidar=False, odometry=False)
    a = ensure_world(str(tmp_path / "a"), **kw)
    b = ensure_world(str(tmp_path / "b"), workers=2, **kw)
    for rel in ("2019_10_27/2019_10_27_drive_0001_sync/image_03/data/0000000002.png",
                "2019_10_27/2019_10_27_drive_0000_sync/poses.txt", "splits/synthetic/train_files.txt"):
        assert open(os.path.join(a, rel), "rb").read() == open(os.path.join(b, rel), "rb").read(), rel
