"""The dataset protocol and registry: every registered dataset lists samples from a tiny tree, its
layout errors carry the expected layout, and a new dataset needs nothing outside its own module."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from md2tf.config import SYNTHETIC_DATA_DIR, DataConfig, ExperimentConfig, VideoConfig, WorldConfig
from md2tf.data import datasets, poses, synthetic
from md2tf.data.datasets import base
from md2tf.data.datasets import synthetic as synthetic_dataset
from tests.data import fake_kitti

H, W = 32, 64


def _kitti_tree(root: str) -> DataConfig:
    fake_kitti.write_tree(root, frames=5)
    shutil.copytree(os.path.join(root, "splits", "synthetic"), os.path.join(root, "splits", "eigen_zhou"))
    return DataConfig(dataset="kitti", data_dir=root, image_ext=".png", height=H, width=W)


def _kitti_odom_tree(root: str) -> DataConfig:
    for side, camera in (("l", "image_2"), ("r", "image_3")):
        os.makedirs(os.path.join(root, "sequences", "03", camera))
        for i in range(4):
            Image.fromarray(fake_kitti.frame_image(i, side)).save(
                os.path.join(root, "sequences", "03", camera, f"{i:06d}.png"))
    with open(os.path.join(root, "sequences", "03", "calib.txt"), "w") as f:
        f.write("P2: 40 0 40 0 0 30 12 0 0 0 1 0\nP3: 40 0 40 -20 0 30 12 0 0 0 1 0\n")
    os.makedirs(os.path.join(root, "splits", "odom"))
    for subset, lines in (("train", "3 1 l\n3 2 r\n"), ("val", "3 2 l\n"), ("test", "3 1 l\n")):
        with open(os.path.join(root, "splits", "odom", f"{subset}_files.txt"), "w") as f:
            f.write(lines)
    return DataConfig(dataset="kitti_odom", data_dir=root, image_ext=".png", height=H, width=W)


def _synthetic_tree(root: str) -> DataConfig:
    """Nothing on disk: ``prepare`` renders a tiny world (3 drives: train, val, test; 4 frames)."""
    return DataConfig(dataset="synthetic", data_dir=root, image_ext=".png", height=H, width=W,
                      synthetic=WorldConfig(drives=3, frames=4, height=12, width=40))


def _folder_tree(root: str) -> DataConfig:
    os.makedirs(root)
    for i in range(12):
        Image.fromarray(fake_kitti.frame_image(i % 5, "l")).save(os.path.join(root, f"{i:04d}.png"))
    return DataConfig(dataset="folder", data_dir=root, image_ext=".png", height=H, width=W)


def _video_tree(root: str) -> DataConfig:
    """One 12-frame clip; every frame kept (threshold 0), decoded into one run as for ``folder``."""
    from md2tf.data.video_io import VideoWriter

    os.makedirs(root)
    with VideoWriter(os.path.join(root, "clip.mp4"), fps=10) as writer:
        for i in range(12):
            writer.write(fake_kitti.frame_image(i % 5, "l"))
    return DataConfig(dataset="video", data_dir=root, image_ext=".png", height=H, width=W,
                      video=VideoConfig(static_threshold=0.0))


def _video_target(config: DataConfig) -> str:
    from md2tf.data.datasets.video import prepared_dir

    return os.path.relpath(os.path.join(prepared_dir(config), "clip_mp4_000", "000001.png"), config.data_dir)


#: name -> (tiny tree writer, expected (train, val) sample counts, one expected train target or a
#: function of the config that gives it).
FIXTURES = {
    "kitti": (_kitti_tree, (6, 3), os.path.join(fake_kitti.DRIVE, "image_02", "data", "0000000001.png")),
    "kitti_odom": (_kitti_odom_tree, (2, 1), os.path.join("sequences", "03", "image_2", "000001.png")),
    # Drive 0 trains (interior frames 1, 2, both cameras), drive 1 validates, drive 2 is the test drive.
    "synthetic": (_synthetic_tree, (4, 4),
                  os.path.join("2019_10_27", "2019_10_27_drive_0000_sync", "image_03", "data", "0000000002.png")),
    "folder": (_folder_tree, (9, 1), "0001.png"),  # frames 1..10 usable; frame 5 is val
    "video": (_video_tree, (9, 1), _video_target),  # as folder, from the decoded frames
}


def test_every_registered_dataset_has_a_fixture_here():
    assert set(datasets.names()) == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_registered_dataset_lists_samples_from_a_tiny_tree(tmp_path, name):
    write, counts, train_target = FIXTURES[name]
    config = write(str(tmp_path / name))
    dataset = datasets.get_dataset(name)
    assert isinstance(dataset, datasets.Dataset) and dataset.name == name
    dataset.check_layout(config)
    dataset.prepare(config, is_chief=True)  # renders the synthetic world; a no-op for the others
    listed = {s: dataset.list_samples(config, s) for s in ("train", "val")}
    assert (len(listed["train"]), len(listed["val"])) == counts
    train = listed["train"]
    if callable(train_target):
        train_target = train_target(config)
    assert train_target in {os.path.relpath(s.target, config.data_dir) for s in train}
    for sample in train:  # temporal neighbours -1, +1 of the default frame_offsets, all on disk
        assert len(sample.sources) == 2 and all(os.path.isfile(p) for p in (sample.target, *sample.sources))
        assert sample.intrinsics.shape == (3, 3)
        # Known poses: the synthetic world writes them; these kitti/odom/folder trees have none.
        assert sample.temporal_source_from_target.shape == (2, 4, 4)
        assert poses.has_poses(sample.temporal_source_from_target) == (name == "synthetic")
    again = datasets.list_samples(config, "val")  # the same samples (NaN = NaN for unknown poses)
    assert len(again) == len(listed["val"])
    for a, b in zip(again, listed["val"]):
        np.testing.assert_equal(tuple(a), tuple(b))
    with pytest.raises(ValueError, match="split must be train, val or test"):
        dataset.list_samples(config, "training")


@pytest.mark.parametrize("name", ["kitti", "kitti_odom", "folder", "video"])
def test_missing_data_dir_error_carries_the_expected_layout(tmp_path, name):
    dataset = datasets.get_dataset(name)
    config = DataConfig(dataset=name, data_dir=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match=rf"--data_dir='.*nope' does not exist \(--dataset={name}\)\. "
                                         rf"Expected layout: {re.escape(dataset.layout)}\..*"
                                         r"configs/synthetic\.flags"):
        dataset.check_layout(config)


def test_synthetic_layout_needs_only_a_directory_name(tmp_path):
    dataset = datasets.get_dataset("synthetic")
    dataset.check_layout(DataConfig(dataset="synthetic", data_dir=str(tmp_path / "not_yet")))
    default = DataConfig(dataset="synthetic", data_dir="")  # empty = the default cache folder
    assert default.data_dir == SYNTHETIC_DATA_DIR
    dataset.check_layout(default)


@pytest.mark.parametrize("name, hint", [("kitti", "download_kitti.py --splits_only"),
                                        ("synthetic", "python -m md2tf.data.synthetic")])
def test_missing_split_file_names_the_file_and_the_hint(tmp_path, name, hint):
    config = DataConfig(dataset=name, data_dir=str(tmp_path), split="mine")
    with pytest.raises(FileNotFoundError, match=rf"split file not found: .*mine.train_files\.txt .*{hint}"):
        datasets.list_samples(config, "train")


def test_unknown_dataset_names_the_flag_and_the_choices():
    with pytest.raises(ValueError, match=r"--dataset must be one of kitti, kitti_odom, synthetic, folder, video "
                                         r"or tfds:<builder>/<config>, got 'cityscapes'"):
        datasets.get_dataset("cityscapes")


def test_split_name_default_is_per_dataset():
    assert datasets.get_dataset("synthetic").split_name(DataConfig(dataset="synthetic")) == "synthetic"
    assert datasets.get_dataset("kitti_odom").split_name(DataConfig(dataset="kitti_odom")) == "odom"
    assert datasets.get_dataset("kitti").split_name(DataConfig(dataset="kitti")) == "eigen_zhou"
    assert datasets.get_dataset("synthetic").split_name(DataConfig(split="mine")) == "mine"
    # An explicit --split wins everywhere, the former default's name included.
    kitti_odom = datasets.get_dataset("kitti_odom")
    assert kitti_odom.split_name(DataConfig(dataset="kitti_odom", split="eigen_zhou")) == "eigen_zhou"


def test_evaluation_split_and_gt_source_come_from_the_dataset():
    assert datasets.get_dataset("kitti").eval_split == "eigen"  # Garg crop + 80 m cap in validation
    assert datasets.get_dataset("synthetic").eval_split == "synthetic"
    assert datasets.gt_source_for_split("eigen_benchmark") == "png"
    assert datasets.gt_source_for_split("synthetic") == "dense"
    assert datasets.gt_source_for_split("my_kitti_split") is None


def test_a_new_dataset_is_one_object_in_the_registry(tmp_path, monkeypatch):
    """A dataset the rest of md2tf has never heard of: pipeline and trainer checks work unchanged."""
    from md2tf.data import pipeline
    from md2tf.training import inputs

    root = str(tmp_path / "mine")
    fake_kitti.write_tree(root, frames=5)
    os.rename(os.path.join(root, "splits", "synthetic"), os.path.join(root, "splits", "drives"))
    mine = base.SplitFileDataset(name="my_drives", layout="<data_dir>/<date>/<drive>/image_02/data/*.png",
                                 how_to_get="Copy the drives there", default_split="drives")
    monkeypatch.setitem(datasets._REGISTRY, mine.name, mine)
    config = DataConfig(dataset="my_drives", data_dir=root, image_ext=".png", height=H, width=W,
                        gt_height=fake_kitti.RAW_HEIGHT, gt_width=fake_kitti.RAW_WIDTH)
    batch = next(iter(pipeline.make_dataset(config, "val", 2, training=False)))
    assert batch.target[0].shape == (2, H, W, 3)
    inputs.check_data_available(ExperimentConfig(data=config))
    missing = ExperimentConfig(data=dataclasses.replace(config, data_dir=str(tmp_path / "gone")))
    with pytest.raises(ValueError, match=r"--dataset=my_drives.*image_02/data/\*\.png.*Copy the drives"):
        inputs.check_data_available(missing)


# --- the synthetic world's settings live in the config -----------------------------------------------


def test_rendered_world_is_the_configs_world_sized_by_the_network_input():
    world = WorldConfig(drives=2, frames=7, seed=3, texture_contrast=0.5, texture_octaves=3,
                        speed_variation=0.1)
    config = DataConfig(height=64, width=128, image_ext=".png", synthetic=world)
    assert synthetic_dataset.rendered_world(config) == dataclasses.replace(world, height=64, width=128,
                                                                           ext="png")
    sized = dataclasses.replace(config, image_ext=".jpg",
                                synthetic=dataclasses.replace(world, height=40, width=90))
    assert synthetic_dataset.rendered_world(sized) == dataclasses.replace(world, height=40, width=90,
                                                                          ext="jpg")
    assert synthetic_dataset.rendered_world(DataConfig()) == WorldConfig(height=192, width=640, ext="jpg")


def test_world_format_follows_image_ext_and_may_not_contradict_it():
    assert DataConfig(image_ext=".png", synthetic=WorldConfig(ext="png")).synthetic.ext == "png"
    with pytest.raises(ValueError, match=r"^--synthetic_ext=jpg contradicts --image_ext=.png: leave "
                                         "--synthetic_ext empty"):
        DataConfig(image_ext=".png", synthetic=WorldConfig(ext="jpg"))


@pytest.mark.parametrize("field, value", [("drives", 0), ("frames", 2), ("height", 4), ("width", -1),
                                          ("texture_contrast", -0.5), ("texture_octaves", 0),
                                          ("texture_octaves", 7), ("speed_variation", 1.0),
                                          ("baseline", 0.0), ("camera_height", 0.1), ("date", "2019-10-27"),
                                          ("lidar_beams", 0), ("lidar_azimuth_step_deg", 0.0),
                                          ("fov_deg", 5.0), ("principal_offset_x", 0.5),
                                          ("principal_offset_y", -0.5)])
def test_bad_world_setting_names_its_flag(field, value):
    """Checked once, in `WorldConfig`; the flags' prefix is the command's (tests/test_flags.py)."""
    with pytest.raises(ValueError, match=rf"^--{field} must "):
        WorldConfig(**{field: value})


def test_config_json_replays_the_world():
    config = ExperimentConfig(data=DataConfig(synthetic=WorldConfig(drives=2, frames=12, height=40)))
    assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = config.to_dict()
    del old["data"]["synthetic"]  # a config.json written before the world had settings
    assert ExperimentConfig.from_dict(old).data.synthetic == WorldConfig()


def test_synthetic_prepare_renders_the_configured_world_once(tmp_path, capfd):
    root = str(tmp_path / "world")
    config = DataConfig(dataset="synthetic", data_dir=root, image_ext=".png", height=H, width=W,
                        synthetic=WorldConfig(drives=1, frames=3, height=12, width=40))
    dataset = datasets.get_dataset("synthetic")
    with pytest.raises(TimeoutError, match="synthetic_world.json"):
        dataset.prepare(config, is_chief=False, timeout_s=0.0)  # a worker waits for the chief's world
    capfd.readouterr()
    dataset.prepare(config, is_chief=True, progress=False)
    assert "synthetic world" not in capfd.readouterr().err  # --noprogress_bar: no bar in the log
    with open(os.path.join(root, synthetic.MANIFEST)) as f:
        written = json.load(f)["config"]
    assert {k: written[k] for k in ("drives", "frames", "height", "width", "ext")} == {
        "drives": 1, "frames": 3, "height": 12, "width": 40, "ext": "png"}
    mtime = os.path.getmtime(os.path.join(root, synthetic.MANIFEST))
    dataset.prepare(config, is_chief=True)  # complete world with the same parameters: untouched
    dataset.prepare(config, is_chief=False)  # the manifest is there: no wait
    assert os.path.getmtime(os.path.join(root, synthetic.MANIFEST)) == mtime
    samples = dataset.list_samples(config, "train")
    with Image.open(samples[0].target) as image:
        assert image.size == (40, 12)
    assert np.load(samples[0].depth_gt).shape == (12, 40)
    with pytest.raises(ValueError, match="other parameters"):
        dataset.prepare(dataclasses.replace(config, synthetic=dataclasses.replace(config.synthetic, frames=4)),
                        is_chief=True)


def test_synthetic_wider_frame_offsets_skip_frames_without_sources(tmp_path):
    config = DataConfig(dataset="synthetic", data_dir=str(tmp_path / "world"), image_ext=".png", height=H,
                        width=W, synthetic=WorldConfig(drives=1, frames=10, height=12, width=40))
    dataset = datasets.get_dataset("synthetic")
    dataset.prepare(config)
    near = {int(os.path.basename(s.target)[:-4]) for s in dataset.list_samples(config, "train")}
    wide = dataset.list_samples(dataclasses.replace(config, frame_offsets=(0, -2, 2)), "train")
    frames = {int(os.path.basename(s.target)[:-4]) for s in wide}
    assert frames == {f for f in near if 2 <= f <= 7} and frames  # drive of 10 frames: sources at f +- 2
    for sample in wide:
        assert all(os.path.exists(p) for p in sample.sources)
