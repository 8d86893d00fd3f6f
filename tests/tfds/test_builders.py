"""TFDS builders: a tiny KITTI-layout tree and the synthetic world, prepared with TFDS and read back.

The batches of a prepared dataset must equal the online pipeline's for the same samples (augmentation
off) up to the uint8 storage of the resized frames; GT depth, K and the stereo transform exactly.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from md2tf.config import DataConfig, WorldConfig
from md2tf.data import datasets, pipeline, prepared, splits
from md2tf.deploy import calibration
from md2tf.evaluation import gt_depth
from md2tf.tfds import builders
from tests.data import fake_kitti

H, W = 32, 64
TINY_KITTI = {"dataset": "kitti", "split": "eigen_zhou", "height": H, "width": W,
              "frame_offsets": (0, -1, 1), "use_stereo": True, "intrinsics": "fixed",
              "image_ext": ".png"}


@pytest.fixture(scope="module")
def kitti_tree(tmp_path_factory):
    """A fake KITTI raw root (lidar, no dense GT) with the split folders the kitti config reads."""
    root = fake_kitti.write_tree(str(tmp_path_factory.mktemp("kitti_raw")), frames=6, with_gt=False,
                                 with_velodyne=True)
    for split in ("eigen_zhou", "eigen"):
        shutil.copytree(os.path.join(root, "splits", "synthetic"), os.path.join(root, "splits", split))
    return root


@pytest.fixture(scope="module")
def kitti_tfds(kitti_tree, tmp_path_factory):
    """The tree prepared with ``Md2tfKitti`` (PNG frames) into a TFDS data_dir, 2 shards."""
    import tensorflow_datasets as tfds

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    config = builders.Md2tfConfig(name="tiny", test_split="eigen", image_format="png", data=TINY_KITTI)
    builder = builders.Md2tfKitti(config=config, data_dir=data_dir)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=kitti_tree, num_shards=2))
    return data_dir


def _online(tree, **kwargs):
    return DataConfig(**{**TINY_KITTI, "data_dir": tree, "gt_height": fake_kitti.RAW_HEIGHT,
                         "gt_width": fake_kitti.RAW_WIDTH, "num_parallel_calls": 2, **kwargs})


def _prepared(data_dir, **kwargs):
    kwargs = {"dataset": "tfds:md2tf_kitti/tiny", "data_dir": data_dir, **kwargs}
    return _online("", **kwargs)


def _batches(config, split="train", batch_size=1, training=False):
    ds = pipeline.make_dataset(config, split, batch_size, training=training, deterministic=True)
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds]


def _key(image):
    """(frame, side) of a fake-KITTI frame from its constant channels 0 and 1."""
    r, g = image[..., 0].mean() * 255, image[..., 1].mean() * 255
    return int(round((r - 20) / 30)), "l" if g > 130 else "r"


def _assert_batches_match(got, want):
    assert len(got) == len(want) > 0
    want = {_key(b.target[0][0]): b for b in want}
    assert len(want) == len(got)
    for b in got:
        ref = want[_key(b.target[0][0])]
        for s in range(4):  # uint8 storage: half a grey level, times the Lanczos gain for s > 0
            atol = (0.5 if s == 0 else 1.0) / 255 + 1e-6
            np.testing.assert_allclose(b.target[s], ref.target[s], atol=atol)
            np.testing.assert_allclose(b.sources[s], ref.sources[s], atol=atol)
        np.testing.assert_allclose(b.target_aug, ref.target_aug, atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.intrinsics, ref.intrinsics, rtol=1e-6)
        np.testing.assert_array_equal(b.stereo_source_from_target, ref.stereo_source_from_target)
        np.testing.assert_array_equal(b.depth_gt, ref.depth_gt)
        np.testing.assert_array_equal(b.temporal_source_from_target, ref.temporal_source_from_target)


def test_kitti_batches_equal_the_online_pipeline(kitti_tree, kitti_tfds):
    _assert_batches_match(_batches(_prepared(kitti_tfds)), _batches(_online(kitti_tree)))
    lidar = _batches(_prepared(kitti_tfds), "train")[0].depth_gt
    assert (lidar > 0).sum() >= 2  # the projected scan, not the all-zero "no GT"


@pytest.mark.slow
def test_kitti_validation_split_equals_the_online_pipeline(kitti_tree, kitti_tfds):
    _assert_batches_match(_batches(_prepared(kitti_tfds), "val"), _batches(_online(kitti_tree), "val"))


@pytest.mark.slow
def test_kitti_reads_a_subset_of_the_stored_frames(kitti_tree, kitti_tfds):
    mono = dict(frame_offsets=(0, 1, -1), use_stereo=False)  # another order than stored
    _assert_batches_match(_batches(_prepared(kitti_tfds, **mono)), _batches(_online(kitti_tree, **mono)))
    stereo = dict(frame_offsets=(0,), use_stereo=True)
    _assert_batches_match(_batches(_prepared(kitti_tfds, **stereo)),
                          _batches(_online(kitti_tree, **stereo)))


def test_kitti_augmentation_happens_at_read_time(kitti_tree, kitti_tfds):
    reference = {_key(b.target[0][0]): b for b in _batches(_online(kitti_tree))}
    flipped = _batches(_prepared(kitti_tfds, flip_prob=1.0, color_aug_prob=0.0), training=True)
    assert flipped
    for b in flipped:
        ref = reference[_key(b.target[0][0])]
        np.testing.assert_allclose(b.target[0][0], ref.target[0][0][:, ::-1], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.sources[0][0], ref.sources[0][0][:, :, ::-1], atol=0.5 / 255 + 1e-6)
        np.testing.assert_array_equal(b.depth_gt[0], ref.depth_gt[0][:, ::-1])
        assert b.stereo_source_from_target[0, 0, 3] == -ref.stereo_source_from_target[0, 0, 3] != 0


def test_workers_read_disjoint_file_shards(kitti_tree, kitti_tfds):
    """Two input pipelines (two workers) each read one of the two files, TFDS's per-worker sharding."""
    config = _prepared(kitti_tfds)
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker,
                                             num_replicas_in_sync=2)
        ds = pipeline.make_dataset(config, "train", 2, training=False, input_context=context)
        seen.append([_key(t) for b in ds for t in b.target[0].numpy()])  # per-replica batch 1
    everything = sorted(_key(b.target[0][0]) for b in _batches(config))
    assert seen[0] and seen[1] and not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == everything


def test_kitti_test_split_holds_the_evaluators_gt_in_file_order(kitti_tree, kitti_tfds):
    source = prepared.PreparedDataset("tfds:md2tf_kitti/tiny")
    examples = list(source.examples(_prepared(kitti_tfds), "test", training=False).as_numpy_iterator())
    lines = splits.read_split(os.path.join(kitti_tree, "splits", "eigen", "test_files.txt"), kind="raw")
    assert len(examples) == len(lines) == 6
    for example, line in zip(examples, lines, strict=True):
        assert example["frames"].shape == (1,)  # the target only
        want = gt_depth.load_gt_depth(kitti_tree, line, "velodyne")
        np.testing.assert_array_equal(example["depth_gt"], want)
        assert example["name"].decode().split()[:2] == [line.folder, str(line.frame_index)]


def test_prepared_dataset_errors_name_the_flags(kitti_tfds, tmp_path):
    with pytest.raises(ValueError, match=r"--height=64 --width=64 differ from .*prepared at 64x32"):
        pipeline.make_dataset(_prepared(kitti_tfds, height=64), "train", 1)
    with pytest.raises(ValueError, match=r"--frame_offsets=0,-2: .* stores frames 0,-1,1 \+ stereo"):
        pipeline.make_dataset(_prepared(kitti_tfds, frame_offsets=(0, -2), use_stereo=False), "train", 1)
    with pytest.raises(ValueError, match=r"--intrinsics=calib: .* stores K from --intrinsics=fixed"):
        pipeline.make_dataset(_prepared(kitti_tfds, intrinsics="calib"), "train", 1)
    with pytest.raises(ValueError, match=r"test split stores only the target frame"):
        pipeline.make_dataset(_prepared(kitti_tfds), "test", 1, training=False)
    empty = _prepared(str(tmp_path))
    with pytest.raises(ValueError, match=r"not prepared in --data_dir=.*scripts/prepare_tfds.py "
                                         r"--name md2tf_kitti/tiny --manual_dir"):
        datasets.get_dataset(empty.dataset).check_layout(empty)


def test_registry_resolves_prepared_names():
    assert datasets.get_dataset("tfds:md2tf_kitti/eigen_zhou_640x192").eval_split == "eigen"
    assert datasets.get_dataset("tfds:md2tf_synthetic/320x96").eval_split == "synthetic"
    assert datasets.get_dataset("tfds:someone_else/x").eval_split == ""
    with pytest.raises(ValueError, match=r"--dataset='tfds:md2tf_kitti': .*tfds:<builder>/<config>"):
        datasets.get_dataset("tfds:md2tf_kitti")


def test_registered_configs_cover_the_splits_and_resolutions():
    names = {c.name for c in builders.Md2tfKitti.BUILDER_CONFIGS}
    assert names == {f"{s}_{r}" for s in ("eigen_zhou", "eigen_full", "benchmark")
                     for r in ("640x192", "1024x320")}
    assert {c.name for c in builders.Md2tfKittiOdom.BUILDER_CONFIGS} == {"odom_640x192", "odom_1024x320"}
    for config in builders.Md2tfKitti.BUILDER_CONFIGS:  # every config is a valid DataConfig
        data = config.data_config("/x")
        assert f"{data.width}x{data.height}" in config.name and data.num_sources == 3
        assert datasets.gt_source_for_split(config.test_split) in ("velodyne", "png")
    with pytest.raises(ValueError, match=r"unknown config 'eigen_zhou' of md2tf_kitti; one of"):
        builders.get_builder("md2tf_kitti/eigen_zhou", "/tmp")


def test_synthetic_configs_render_their_world_and_record_it_as_json():
    import json

    from md2tf.data.datasets.synthetic import rendered_world

    worlds = {}
    for config in builders.Md2tfSynthetic.BUILDER_CONFIGS:
        data = config.data_config("/x")
        worlds[config.name] = rendered_world(data)
        recorded = json.loads(json.dumps(config.settings()))["data"]["synthetic"]
        assert WorldConfig(**recorded) == data.synthetic
    assert (worlds["320x96"].height, worlds["320x96"].width, worlds["320x96"].ext) == (96, 320, "png")
    assert (worlds["640x192"].height, worlds["640x192"].width, worlds["640x192"].ext) == (375, 1242, "jpg")
    assert worlds["320x96"].drives == worlds["640x192"].drives == 4


def test_carried_fields_follow_the_sample_record():
    fields = builders.carried_fields(3)
    assert fields["intrinsics"] == ((3, 3), tf.float32)
    assert fields["side_sign"] == ((), tf.float32)
    # known poses: one per stored temporal frame, none in the target-only test examples
    assert fields["temporal_source_from_target"] == ((None, 4, 4), tf.float32)
    assert not {"target", "sources", "depth_gt", "velo_projection"} & set(fields)


@pytest.mark.slow
def test_synthetic_world_is_rendered_by_the_builder_and_matches_online(tmp_path):
    from md2tf.data import synthetic

    world = {"synthetic": WorldConfig(drives=1, frames=8, height=24, width=48, seed=3)}
    data = {"dataset": "synthetic", "split": "synthetic", "height": H, "width": W,
            "frame_offsets": (0, -1, 1), "use_stereo": True, "intrinsics": "calib",
            "image_ext": ".png", **world}
    config = builders.Md2tfConfig(name="tiny", test_split="synthetic", image_format="png", data=data)
    builders.Md2tfSynthetic(config=config, data_dir=str(tmp_path / "tfds")).download_and_prepare()
    # The same world rendered for the online pipeline (rendering is deterministic per seed).
    online = DataConfig(**data, data_dir=str(tmp_path / "world"), gt_height=24, gt_width=48)
    synthetic.ensure_world(online.data_dir, world["synthetic"], ext="png")
    tfds_config = DataConfig(**{**data, "dataset": "tfds:md2tf_synthetic/tiny"},
                             data_dir=str(tmp_path / "tfds"), gt_height=24, gt_width=48)
    got, want = _batches(tfds_config, "val"), _batches(online, "val")
    assert len(got) == len(want) > 0
    # Dense GT identifies each sample (its order differs: the prepared one is shuffled once).
    want = {b.depth_gt.tobytes(): b for b in want}
    for b in got:
        ref = want[b.depth_gt.tobytes()]
        np.testing.assert_allclose(b.target[0], ref.target[0], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.sources[0], ref.sources[0], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.intrinsics, ref.intrinsics, rtol=1e-6)
        np.testing.assert_allclose(b.temporal_source_from_target, ref.temporal_source_from_target,
                                   atol=1e-6)
        assert np.isfinite(b.temporal_source_from_target).all()  # the world's known poses
    # A subset of the stored frames (+1 only) carries the pose of that frame.
    got = _batches(dataclasses.replace(tfds_config, frame_offsets=(0, 1)), "val")
    want = {b.depth_gt.tobytes(): b for b in _batches(dataclasses.replace(online, frame_offsets=(0, 1)),
                                                         "val")}
    for b in got:
        np.testing.assert_allclose(b.temporal_source_from_target,
                                   want[b.depth_gt.tobytes()].temporal_source_from_target, atol=1e-6)


@pytest.mark.slow
def test_folder_of_frames_matches_online(tmp_path):
    import json

    import tensorflow_datasets as tfds
    from PIL import Image

    frames = tmp_path / "clip"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 96, 3), np.uint8)).save(frames / f"{i:06d}.png")
    (frames / "intrinsics.json").write_text(json.dumps({"fx": 0.6, "fy": 1.5, "cx": 0.5, "cy": 0.5}))
    data = {"dataset": "folder", "height": H, "width": W, "frame_offsets": (0, -1, 1),
            "use_stereo": False, "image_ext": ".png"}
    config = builders.Md2tfConfig(name="tiny", image_format="png", data=data)
    builder = builders.Md2tfFolder(config=config, data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(frames)))
    assert set(builder.info.splits) == {"train", "validation"}
    online = DataConfig(**data, data_dir=str(frames), gt_height=8, gt_width=8)
    read = DataConfig(**{**data, "dataset": "tfds:md2tf_folder/tiny"}, data_dir=str(tmp_path / "tfds"),
                      gt_height=8, gt_width=8)
    want = {b.target[0].tobytes(): b for b in _batches(online)}
    got = _batches(read)
    assert len(got) == len(want) == 9  # frames 1..10 minus the validation frame 5
    for b in got:  # match each prepared target to the online target it was resized from
        ref = min(want.values(), key=lambda r: np.abs(r.target[0] - b.target[0]).max())
        np.testing.assert_allclose(b.target[0], ref.target[0], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.sources[0], ref.sources[0], atol=0.5 / 255 + 1e-6)
        np.testing.assert_allclose(b.intrinsics, ref.intrinsics, rtol=1e-6)


def _script(name):
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_tfds_lists_configs_and_refuses_a_missing_manual_dir(tmp_path, capsys):
    script = _script("prepare_tfds")
    assert script.main(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert "md2tf_kitti/eigen_zhou_640x192:" in listed and "md2tf_synthetic/320x96:" in listed
    assert script.main(["--name", "md2tf_kitti/eigen_zhou_640x192", "--data_dir", str(tmp_path),
                        "--manual_dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "error: --manual_dir=" in err and "is not a directory" in err and "download_kitti.py" in err
    assert script.main(["--name", "md2tf_kitti/nope", "--data_dir", str(tmp_path)]) == 2
    assert "unknown config 'nope' of md2tf_kitti" in capsys.readouterr().err


@pytest.mark.slow
def test_train_entry_point_reads_a_prepared_dataset(tmp_path):
    """``python -m md2tf.train --dataset=tfds:...``: 2 steps and a validation from the TFDS files."""
    import subprocess
    import sys

    data = {"dataset": "synthetic", "split": "synthetic", "height": 64, "width": 128,
            "frame_offsets": (0, -1, 1), "use_stereo": True, "intrinsics": "calib", "image_ext": ".png",
            "synthetic": WorldConfig(drives=1, frames=8)}
    config = builders.Md2tfConfig(name="smoke", test_split="synthetic", image_format="png", data=data)
    builders.Md2tfSynthetic(config=config, data_dir=str(tmp_path / "tfds")).download_and_prepare()
    run_dir = tmp_path / "run"
    repo = os.path.join(os.path.dirname(__file__), "..", "..")
    cmd = [sys.executable, "-m", "md2tf.train", "--flagfile=configs/smoke.flags",
           "--dataset=tfds:md2tf_synthetic/smoke", f"--data_dir={tmp_path / 'tfds'}", f"--run_dir={run_dir}"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-2")
    assert "abs_rel" in proc.stdout + proc.stderr  # validated on the prepared validation split


def test_pose_source_gt_refuses_a_prepared_dataset_without_poses(kitti_tfds):
    from md2tf.config import ExperimentConfig, TrainConfig
    from md2tf.training import inputs

    config = ExperimentConfig(data=_prepared(kitti_tfds), train=TrainConfig(pose_source="gt"))
    with pytest.raises(ValueError, match=r"--pose_source=gt needs known camera poses, but "
                                         r"--dataset=tfds:md2tf_kitti/tiny .* train sample 'example 0'"):
        inputs.check_poses_available(config)


def test_prepared_dataset_serves_the_dataset_protocol(kitti_tfds):
    """Poses and frames come through the protocol, as from a dataset of files: no type switch."""
    config = _prepared(kitti_tfds)
    source = datasets.get_dataset(config.dataset)
    assert source.first_without_poses(config, "train") == "example 0"  # KITTI raw has no poses
    frames, count = source.draw_frames(config, "train", 3, seed=5)
    stored = list(source.examples(config, "train", training=False).as_numpy_iterator())
    assert count == len(stored) and len(frames) == 3
    keys = [_key(f / 255.0) for f in frames]
    assert len(set(keys)) == 3 and set(keys) <= {_key(b.target[0][0]) for b in _batches(config)}
    assert all(f.dtype == np.uint8 and f.shape == (H, W, 3) for f in frames)
    again, _ = source.draw_frames(config, "train", 3, seed=5)
    np.testing.assert_array_equal(np.stack(frames), np.stack(again))  # seeded: the same draw


def test_int8_calibration_of_a_prepared_dataset_reads_its_frames(kitti_tfds):
    config = _prepared(kitti_tfds)
    frames, description = calibration.calibration_images("auto", 4, H, W, data_config=config, seed=0)
    assert "structured" not in description and config.dataset in description
    real = {_key(b.target[0][0]) for b in _batches(config)}
    assert len(frames) == 4 and {_key(f / 255.0) for f in frames} <= real
