"""tf.data pipeline on tiny fake KITTI trees: contents, augmentation semantics, sharding, errors."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from md2tf.config import DataConfig, ExperimentConfig
from md2tf.data import decoding, pipeline
from md2tf.data.batch import Batch
from md2tf.data.datasets import folder, get_dataset
from tests.data import fake_kitti

H, W = 32, 64


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fake_kitti.write_tree(str(tmp_path_factory.mktemp("kitti")), frames=5)


@pytest.fixture(scope="module")
def plain_stereo(tree):
    """Un-augmented batches (size 1) of the 6 train samples with stereo, keyed by (frame, side)."""
    config = _config(tree, use_stereo=True)
    return {_frame_and_side(b.target[0][0]): b
            for b in _all(_make(config, "train", 1, training=False))}


def _config(root, **kwargs):
    defaults = dict(dataset="synthetic", data_dir=root, image_ext=".png", height=H, width=W,
                    gt_height=fake_kitti.RAW_HEIGHT, gt_width=fake_kitti.RAW_WIDTH,
                    num_parallel_calls=2)
    defaults.update(kwargs)
    return DataConfig(**defaults)


def _make(config, *args, **kwargs):
    """``pipeline.make_dataset`` in reproducible element order."""
    return pipeline.make_dataset(config, *args, deterministic=True, **kwargs)


def _frame_and_side(image):
    """Recovers (frame index, side) of a clean image from its constant channels 0 and 1."""
    r, g = image[..., 0].mean() * 255, image[..., 1].mean() * 255
    return int(round((r - 20) / 30)), "l" if g > 130 else "r"


def _all(ds):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds]


def test_eval_batch_structure_and_contents(tree):
    config = _config(tree, use_stereo=True)
    batches = _all(_make(config, "val", 2, training=False))
    assert [b.target[0].shape[0] for b in batches] == [2, 1]  # remainder kept for evaluation
    b = batches[0]
    assert isinstance(b, Batch)
    assert [t.shape for t in b.target] == [(2, H >> s, W >> s, 3) for s in range(4)]
    assert [t.shape for t in b.sources] == [(2, 3, H >> s, W >> s, 3) for s in range(4)]
    assert b.target_aug.shape == (2, H, W, 3) and b.sources_aug.shape == (2, 3, H, W, 3)
    # val lines are frames 1, 2, 3 on the left camera, in file order.
    for k, frame in enumerate((1, 2)):
        assert _frame_and_side(b.target[0][k]) == (frame, "l")
        np.testing.assert_allclose(b.target[0][k, ..., 0], fake_kitti.frame_colour(frame, "l")[0] / 255,
                                   atol=1e-5)  # a constant survives the Lanczos resize
        got = [_frame_and_side(b.sources[0][k, j]) for j in range(3)]
        assert got == [(frame - 1, "l"), (frame + 1, "l"), (frame, "r")]
        ramp = b.target[0][k, H // 2, :, 2]
        assert ramp[2] < ramp[W // 2] < ramp[-3]  # not flipped
    np.testing.assert_array_equal(b.target_aug, b.target[0])  # no augmentation without training
    np.testing.assert_array_equal(b.sources_aug, b.sources[0])
    K = np.array([[0.58 * W, 0, 0.5 * W], [0, 1.92 * H, 0.5 * H], [0, 0, 1]], np.float32)
    np.testing.assert_allclose(b.intrinsics, np.stack([K, K]), rtol=1e-6)
    np.testing.assert_allclose(b.stereo_source_from_target[:, 0, 3], [-0.1, -0.1], rtol=1e-6)
    gt = np.load(os.path.join(tree, fake_kitti.DRIVE, "depth_gt", "image_02", "0000000001.npy"))
    np.testing.assert_array_equal(b.depth_gt[0, ..., 0], gt)


def test_calib_intrinsics_and_gt_resize(tree):
    config = _config(tree, intrinsics="calib", gt_height=12, gt_width=40)
    b = next(iter(_make(config, "val", 1, training=False)))
    K = b.intrinsics[0].numpy()
    np.testing.assert_allclose(K[0, 0], fake_kitti.FX / fake_kitti.RAW_WIDTH * W, rtol=1e-6)
    np.testing.assert_allclose(K[1, 2], fake_kitti.CY / fake_kitti.RAW_HEIGHT * H, rtol=1e-6)
    gt = np.load(os.path.join(tree, fake_kitti.DRIVE, "depth_gt", "image_02", "0000000001.npy"))
    rows = np.floor((np.arange(12) + 0.5) * gt.shape[0] / 12).astype(int)  # nearest, pixel centres
    cols = np.floor((np.arange(40) + 0.5) * gt.shape[1] / 40).astype(int)
    np.testing.assert_array_equal(b.depth_gt[0, ..., 0], gt[rows][:, cols])
    assert b.stereo_source_from_target.numpy().tolist() == [np.eye(4).tolist()]  # no stereo: identity


def test_flip_mirrors_images_and_gt_and_flips_stereo_sign(tree, plain_stereo):
    config = _config(tree, use_stereo=True, flip_prob=1.0, color_aug_prob=0.0)
    flipped = {_frame_and_side(b.target[0][k]): (b, k)
               for b in _all(_make(config, "train", 2, training=True))
               for k in range(2)}
    assert len(flipped) == 6  # 3 frames x 2 sides, drop_remainder keeps all 6
    for key, b in plain_stereo.items():
        fb, k = flipped[key]
        np.testing.assert_allclose(fb.target[0][k], b.target[0][0][:, ::-1], atol=1e-5)
        np.testing.assert_allclose(fb.sources[0][k], b.sources[0][0][:, :, ::-1], atol=1e-5)
        np.testing.assert_array_equal(fb.depth_gt[k], b.depth_gt[0][:, ::-1])
        np.testing.assert_allclose(fb.stereo_source_from_target[k, 0, 3],
                                   -b.stereo_source_from_target[0, 0, 3], rtol=1e-6)
        np.testing.assert_array_equal(fb.intrinsics[k], b.intrinsics[0])  # K unchanged by the flip
        np.testing.assert_array_equal(fb.target_aug[k], fb.target[0][k])
    r_b, r_k = flipped[(2, "r")]
    np.testing.assert_allclose(r_b.stereo_source_from_target[r_k, 0, 3], -0.1, rtol=1e-6)


def test_flip_mirrors_a_calibrated_principal_point(tree):
    """A calibration's K is mirrored with the image (the paper's fixed K is kept: test above)."""
    plain = next(iter(_make(_config(tree, intrinsics="calib"), "val", 1, training=False)))
    config = _config(tree, intrinsics="calib", flip_prob=1.0, color_aug_prob=0.0)
    flipped = next(iter(_make(config, "train", 1, training=True)))
    K, Kf = plain.intrinsics[0].numpy(), flipped.intrinsics[0].numpy()
    assert abs(K[0, 2] - (W - 1) / 2) > 0.5  # the fake calibration is off-centre
    np.testing.assert_allclose(Kf[0, 2], W - 1 - K[0, 2], rtol=1e-6)
    np.testing.assert_array_equal(np.delete(Kf.ravel(), 2), np.delete(K.ravel(), 2))
    assert bool(flipped.flipped[0])


def test_pyramid_matches_pil_lanczos_cascade(rng):
    y, x = np.mgrid[0:H, 0:W]
    base = 0.5 + 0.3 * np.sin(x / 3.0)[..., None] * np.cos(y / 5.0)[..., None]
    image = np.clip(base + 0.05 * rng.standard_normal((H, W, 3)), 0, 1)
    u8 = (image * 255).round().astype(np.uint8)
    levels = pipeline.build_pyramid(tf.constant(u8[None] / 255.0, tf.float32))
    pil = Image.fromarray(u8)
    for s in range(1, 4):
        pil = pil.resize((W >> s, H >> s), Image.LANCZOS)
        diff = np.abs(levels[s][0].numpy() * 255 - np.asarray(pil, np.float32))
        assert diff.mean() < 1.0 and diff.max() < 4.0, (s, diff.mean(), diff.max())
    pooled = pipeline.build_pyramid(tf.constant(image[None], tf.float32), method="avg_pool")
    np.testing.assert_allclose(pooled[2][0], image.reshape(H // 4, 4, W // 4, 4, 3).mean((1, 3)),
                               atol=1e-6)
    with pytest.raises(ValueError, match="pyramid method"):
        pipeline.build_pyramid(tf.zeros([1, 8, 8, 3]), method="bicubic")


def test_resize_matches_pil_lanczos(rng):
    u8 = (rng.uniform(0, 1, (48, 160, 3)) * 255).astype(np.uint8)
    ours = decoding.resize_image(tf.constant(u8 / 255.0, tf.float32), 32, 64).numpy() * 255
    pil = np.asarray(Image.fromarray(u8).resize((64, 32), Image.LANCZOS), np.float32)
    assert np.abs(ours - pil).mean() < 1.0


def _folder_of_identical_frames(root, n=4, units="pixels"):
    os.makedirs(root, exist_ok=True)
    y, x = np.mgrid[0:24, 0:80]
    image = np.stack([x * 3, y * 10, (x + y) * 2], -1).astype(np.uint8)
    for i in range(n):
        Image.fromarray(image).save(os.path.join(root, f"frame_{i:03d}.png"))
    K = {"fx": 40.0, "fy": 36.0, "cx": 40.0, "cy": 12.0, "units": units}
    if units == "normalized":
        K = {"fx": 0.5, "fy": 1.5, "cx": 0.5, "cy": 0.5, "units": units}
    with open(os.path.join(root, "intrinsics.json"), "w") as f:
        json.dump(K, f)
    return root


def test_colour_jitter_one_draw_for_all_frames_losses_get_clean_images(tmp_path):
    root = _folder_of_identical_frames(str(tmp_path / "video"), n=12)
    config = _config(root, dataset="folder", flip_prob=0.0, color_aug_prob=1.0)
    clean = _all(_make(config, "train", 3, training=False))[0]
    for b in _all(_make(config, "train", 3, training=True)):
        for j in range(2):  # identical frames + one shared draw -> identical augmented frames
            np.testing.assert_array_equal(b.sources_aug[:, j], b.target_aug)
        assert np.abs(b.target_aug - b.target[0]).max() > 1e-3
        np.testing.assert_allclose(b.target[0], clean.target[0], atol=1e-6)  # losses: clean
    K = clean.intrinsics[0]
    np.testing.assert_allclose(K[:2], [[40.0 / 80 * W, 0, 0.5 * W], [0, 36.0 / 24 * H, 0.5 * H]],
                               rtol=1e-6)


def test_seeded_pipeline_is_reproducible(tree):
    config = _config(tree, use_stereo=True)

    def run(seed):
        return [b.target_aug for b in _all(_make(config, "train", 2, True, seed=seed))]

    first, again, other = run(3), run(3), run(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(np.abs(a - b).max() > 0 for a, b in zip(first, other))


def test_input_context_shards_and_splits_batch(tree):
    config = _config(tree)
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        batches = _all(_make(config, "train", 2, training=True, input_context=context))
        assert all(b.target[0].shape[0] == 1 for b in batches)  # per-replica batch = 2 / 2
        seen.append({_frame_and_side(b.target[0][0]) for b in batches})
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {(f, s) for f in (1, 2, 3) for s in "lr"}


def test_distribute_datasets_from_function(tree):
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    config = _config(tree)
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: _make(config, "train", 2, training=True, input_context=ctx))
    batch = next(iter(dist))
    assert batch.target_aug.shape == (2, H, W, 3)


def _jpeg_tree(tmp_path):
    return fake_kitti.write_tree(str(tmp_path / "jpg"), frames=5, ext=".jpg")


def test_jpeg_tree_and_corrupt_image_named_in_error(tmp_path):
    root = _jpeg_tree(tmp_path)
    config = _config(root, image_ext=".jpg")
    batches = _all(_make(config, "val", 3, training=False))
    assert _frame_and_side(batches[0].target[0][1]) == (2, "l")
    bad = os.path.join(root, fake_kitti.DRIVE, "image_02", "data", "0000000002.jpg")
    with open(bad, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated download
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"corrupt or truncated.*0000000002\.jpg"):
        _all(_make(config, "val", 1, training=False))
    counter = tf.Variable(0, dtype=tf.int64)
    sources_next = _config(root, image_ext=".jpg", frame_offsets=(0, 1))
    kept = _all(_make(sources_next, "val", 1, training=False,
                                      skip_corrupt_images=True, corrupt_counter=counter))
    # frame 2 is the target of line 2 and the +1 neighbour of line 1: both are dropped and counted
    assert [_frame_and_side(b.target[0][0]) for b in kept] == [(3, "l")]
    assert int(counter.numpy()) == 2


def test_missing_file_fails_at_construction(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "t"), frames=5)
    os.remove(os.path.join(root, fake_kitti.DRIVE, "image_02", "data", "0000000004.png"))
    split = os.path.join(root, "splits", "synthetic", "val_files.txt")
    with pytest.raises(ValueError, match=rf"{split}:3: missing neighbour frame \+1: .*0000000004\.png"):
        _make(_config(root), "val", 1, training=False)


def test_config_errors(tmp_path, tree):
    with pytest.raises(ValueError, match="--data_dir is empty"):
        _make(_config("", dataset="kitti"), "train", 1)
    with pytest.raises(FileNotFoundError, match=r"split file not found: .*nosuch.*md2tf.data.synthetic"):
        _make(_config(tree, split="nosuch"), "train", 1)
    with pytest.raises(ValueError, match="--dataset must be"):
        _make(_config(tree, dataset="cityscapes"), "train", 1)
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        _make(_config(tree), "train", 0)
    other = shutil.copytree(os.path.join(tree, "splits", "synthetic"), str(tmp_path / "s" / "mine"))
    assert os.path.isdir(other)
    ds = _make(_config(tree, splits_dir=str(tmp_path / "s"), split="mine"), "val", 3, training=False)
    assert next(iter(ds)).target[0].shape[0] == 3


def test_folder_subsets_and_errors(tmp_path):
    root = _folder_of_identical_frames(str(tmp_path / "v"), n=12, units="normalized")
    train = folder.folder_samples(root, image_ext=".png", subset="train")
    val = folder.folder_samples(root, image_ext=".png", subset="val")
    names = [s.name for s in train + val]
    assert len(names) == 10 == len(set(names))  # frames 1..10 have both neighbours
    assert [s.name for s in val] == ["frame_005.png"]
    np.testing.assert_allclose(train[0].intrinsics[:2], [[0.5, 0, 0.5], [0, 1.5, 0.5]])
    with pytest.raises(ValueError, match="--use_stereo is not available"):
        folder.DATASET.list_samples(_config(root, dataset="folder", use_stereo=True), "train")
    os.remove(os.path.join(root, "intrinsics.json"))
    with pytest.raises(ValueError, match=r"no intrinsics.json \(needed with --intrinsics=calib\)"):
        folder.folder_samples(root, image_ext=".png", intrinsics="calib")
    bad = tmp_path / "bad.json"
    bad.write_text('{"fx": 1, "fy": 1, "cx": 0.5}')
    with pytest.raises(ValueError, match=r"bad.json: missing keys \['cy'\]"):
        folder.read_intrinsics(str(bad))
    bad.write_text('{"fx": 1, "fy": 1, "cx": 0.5, "cy": 0.5, "units": "mm"}')
    with pytest.raises(ValueError, match="units must be 'normalized' or 'pixels'"):
        folder.read_intrinsics(str(bad))
    with pytest.raises(ValueError, match=r"no \.jpg frames"):
        folder.folder_samples(root, image_ext=".jpg")


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_image_looks_valid(ext):
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG" if ext == ".jpg" else "PNG")
    data = buf.getvalue()
    cases = {"ok": (data, True), "truncated": (data[: len(data) // 2], False), "empty": (b"", False),
             "other format": (b"GIF89a" + data, False)}
    if ext == ".jpg":
        cases["padding after EOI"] = (data + b"\0" * 10, True)
    for name, (contents, expected) in cases.items():
        assert bool(decoding.image_looks_valid(tf.constant(contents), ext)) == expected, name


def test_odometry_layout(tmp_path):
    root = str(tmp_path / "odom")
    for side, camera in (("l", "image_2"), ("r", "image_3")):
        os.makedirs(os.path.join(root, "sequences", "03", camera))
        for i in range(3):
            Image.fromarray(fake_kitti.frame_image(i, side)).save(
                os.path.join(root, "sequences", "03", camera, f"{i:06d}.png"))
    os.makedirs(os.path.join(root, "splits", "odom"))
    (tmp_path / "odom" / "splits" / "odom" / "val_files.txt").write_text("3 1 r\n")
    with open(os.path.join(root, "sequences", "03", "calib.txt"), "w") as f:
        f.write("P2: 40 0 40 0 0 30 12 0 0 0 1 0\nP3: 40 0 40 -20 0 30 12 0 0 0 1 0\n")
    config = _config(root, dataset="kitti_odom", use_stereo=True, intrinsics="calib")
    b = _all(_make(config, "val", 1, training=False))[0]
    assert _frame_and_side(b.target[0][0]) == (1, "r")
    assert [_frame_and_side(b.sources[0][0, j]) for j in range(3)] == [(0, "r"), (2, "r"), (1, "l")]
    np.testing.assert_allclose(b.intrinsics[0, 0, 0], 40.0 / fake_kitti.RAW_WIDTH * W, rtol=1e-6)
    np.testing.assert_allclose(b.stereo_source_from_target[0, 0, 3], 0.1, rtol=1e-6)


def np_velodyne_depth(points, P, height, width):
    """Loop reference: x >= 0, camera z as depth, round(u) - 1, nearest point per pixel."""
    depth = np.zeros((height, width))
    for x in points:
        if x[0] < 0:
            continue
        p = P.astype(np.float64) @ np.array([x[0], x[1], x[2], 1.0])
        if p[2] <= 0:
            continue
        u, v = int(np.round(p[0] / p[2])) - 1, int(np.round(p[1] / p[2])) - 1
        if 0 <= u < width and 0 <= v < height:
            depth[v, u] = p[2] if depth[v, u] == 0 else min(depth[v, u], p[2])
    return depth


def test_velodyne_depth_map_matches_numpy(rng):
    points = np.concatenate([
        rng.uniform([-5, -8, -2, 0], [40, 8, 2, 1], size=(300, 4)),
        np.array([[10.0, 0, 0, 1], [11.0, 0, 0, 1], [9.5, 0, 0, 1]]),  # one pixel, nearest wins
    ]).astype(np.float32)
    R = fake_kitti.VELO_TO_CAM_R
    P = np.array([[20.0, 0, 16, 0.5], [0, 20, 12, 0], [0, 0, 1, 0.01]]) @ np.block(
        [[R, np.array([[0.1], [-0.2], [0.3]])], [np.zeros((1, 3)), np.ones((1, 1))]])
    got = decoding.velodyne_depth_map(tf.constant(points.tobytes()), tf.constant(P, tf.float32), 24, 32)
    want = np_velodyne_depth(points, P.astype(np.float32), 24, 32)
    assert (want > 0).sum() > 50
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_lidar_gt_in_batches(tmp_path):
    root = fake_kitti.write_tree(str(tmp_path / "v"), frames=3, with_velodyne=True,
                                 split_lines={"val": [f"{fake_kitti.DRIVE} 1 r"]})
    b = _all(_make(_config(root), "val", 1, training=False))[0]
    from md2tf.data.kitti_layout import velo_to_image_projection

    P = velo_to_image_projection(os.path.join(root, fake_kitti.DATE), "r")
    want = np_velodyne_depth(fake_kitti.velodyne_points(1), P, fake_kitti.RAW_HEIGHT,
                             fake_kitti.RAW_WIDTH)
    assert (want > 0).sum() == 3
    np.testing.assert_allclose(b.depth_gt[0, ..., 0], want, rtol=1e-6)


# --- cameras and flips for --intrinsics=learned --------------------------------------------------


def test_batches_carry_each_samples_camera_and_flip(tree, plain_stereo):
    """KITTI-layout cameras are ``<date>/image_0X``, sorted; a flipped sample says so."""
    config = _config(tree, use_stereo=True)
    dataset = get_dataset(config.dataset)
    date = fake_kitti.DRIVE.split("/")[0]
    assert dataset.cameras(config) == (f"{date}/image_02", f"{date}/image_03")
    for (_, side), b in plain_stereo.items():
        assert b.camera.tolist() == [0 if side == "l" else 1]
        assert b.flipped.tolist() == [False]
    flipped = _config(tree, use_stereo=True, flip_prob=1.0, color_aug_prob=0.0)
    for b in _all(_make(flipped, "train", 2, training=True)):
        assert b.flipped.tolist() == [True, True]
        assert b.camera.dtype == np.int32
        assert [0 if _frame_and_side(t)[1] == "l" else 1 for t in b.target[0]] == b.camera.tolist()


def test_learned_intrinsics_start_from_the_calibration(tree):
    config = _config(tree, intrinsics="learned")
    dataset = get_dataset(config.dataset)
    start = dataset.start_intrinsics(config)
    assert start.shape == (len(dataset.cameras(config)), 3, 3)
    np.testing.assert_allclose(start[0, 0, 0], fake_kitti.FX / fake_kitti.RAW_WIDTH, rtol=1e-6)


def test_learned_intrinsics_start_at_a_given_field_of_view(tree):
    """``--intrinsics_start_fov`` replaces every camera's calibrated start by that field of view,
    square pixels in the stored frames' aspect ratio, principal point at the centre."""
    from md2tf.training.inputs import learned_cameras

    data = _config(tree, intrinsics="learned", intrinsics_start_fov=90.0)
    names, start = learned_cameras(ExperimentConfig(data=data))
    assert names == get_dataset(data.dataset).cameras(data) and start.shape == (len(names), 3, 3)
    aspect = fake_kitti.RAW_WIDTH / fake_kitti.RAW_HEIGHT
    for k in start:  # tan(45 degrees) = 1: fx = W / 2
        np.testing.assert_allclose(k, [[0.5, 0, 0.5], [0, 0.5 * aspect, 0.5], [0, 0, 1]], rtol=1e-6)
    with pytest.raises(ValueError, match="--intrinsics_start_fov=90 needs --intrinsics=learned"):
        _config(tree, intrinsics="calib", intrinsics_start_fov=90.0)


def test_folder_cameras_and_the_default_start(tmp_path):
    """One camera per frame folder; without intrinsics.json a learned K starts at 60 degrees."""
    root = str(tmp_path / "clips")
    _folder_of_identical_frames(os.path.join(root, "a"), n=12)
    _folder_of_identical_frames(os.path.join(root, "b"), n=12)
    os.remove(os.path.join(root, "b", "intrinsics.json"))
    config = _config(root, dataset="folder", intrinsics="learned")
    dataset = get_dataset("folder")
    assert dataset.cameras(config) == ("a", "b")
    start = dataset.start_intrinsics(config)
    np.testing.assert_allclose(start[0], [[0.5, 0, 0.5], [0, 1.5, 0.5], [0, 0, 1]], rtol=1e-6)
    fx = 1 / (2 * np.tan(np.radians(30.0)))
    np.testing.assert_allclose(start[1], [[fx, 0, 0.5], [0, fx * 80 / 24, 0.5], [0, 0, 1]], rtol=1e-6)
    cameras = {int(c) for b in _make(config, "train", 2, training=False) for c in b.camera.numpy()}
    assert cameras == {0, 1}
    single = _folder_of_identical_frames(str(tmp_path / "my_clip"), n=4)
    assert get_dataset("folder").cameras(_config(single, dataset="folder")) == ("my_clip",)


def test_read_intrinsics_of_several_cameras(tmp_path):
    path = tmp_path / "intrinsics_learned.json"
    entry = {"fx": 0.6, "fy": 1.8, "cx": 0.52, "cy": 0.49, "units": "normalized"}
    path.write_text(json.dumps({"cameras": {"a": entry, "b": {**entry, "fx": 0.7}}}))
    np.testing.assert_allclose(folder.read_intrinsics(str(path), camera="b")[0], [0.7, 0, 0.52], rtol=1e-6)
    with pytest.raises(ValueError, match="2 cameras \\(a, b\\); say which"):
        folder.read_intrinsics(str(path))
    with pytest.raises(ValueError, match="no camera 'c'"):
        folder.read_intrinsics(str(path), camera="c")
    path.write_text(json.dumps({"cameras": {"a": entry}}))
    np.testing.assert_allclose(folder.read_intrinsics(str(path))[1], [0, 1.8, 0.49], rtol=1e-6)
