"""``intrinsics.json`` validation of the folder dataset: every bad value is refused, naming file and key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from md2tf.data.datasets import folder

GOOD = {"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5}


def write(tmp_path, text: str) -> str:
    path = tmp_path / "intrinsics.json"
    path.write_text(text)
    return str(path)


def test_valid_normalised_and_pixel_files(tmp_path):
    K = folder.read_intrinsics(write(tmp_path, json.dumps(GOOD)))
    np.testing.assert_allclose(K, [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]], rtol=1e-6)
    pixels = {"fx": 74.4, "fy": 61.4, "cx": 64.0, "cy": 16.0, "units": "pixels"}
    K = folder.read_intrinsics(write(tmp_path, json.dumps(pixels)), image_size=(128, 32))
    np.testing.assert_allclose(K[:2], [[74.4 / 128, 0, 0.5], [0, 61.4 / 32, 0.5]], rtol=1e-6)


@pytest.mark.parametrize("key, value, message", [
    ("fx", "NaN", r"'fx' must be finite, got nan"),
    ("fy", "Infinity", r"'fy' must be finite"),
    ("fx", '"abc"', r"'fx' must be a number, got 'abc'"),
    ("cy", "true", r"'cy' must be a number, got True"),
    ("fx", "null", r"'fx' must be a number, got None"),
    ("fx", "0", r"'fx' must be > 0"),
    ("fy", "-1.5", r"'fy' must be > 0"),
    ("cx", "1.7", r"'cx' puts the principal point outside the image"),
    ("cy", "-0.1", r"'cy' puts the principal point outside the image"),
    ("fx", "74.4", r"normalised 'fx' = 74.4 is implausible.*\"units\": \"pixels\""),
])
def test_bad_value_names_file_and_key(tmp_path, key, value, message):
    text = json.dumps(GOOD).replace(f'"{key}": {json.dumps(GOOD[key])}', f'"{key}": {value}')
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"intrinsics.json: {message}"):
        folder.read_intrinsics(path)


def test_pixel_values_outside_the_frame_are_refused(tmp_path):
    pixels = {"fx": 74.4, "fy": 61.4, "cx": 300.0, "cy": 16.0, "units": "pixels"}
    with pytest.raises(ValueError, match=r"intrinsics.json: 'cx' puts the principal point outside"):
        folder.read_intrinsics(write(tmp_path, json.dumps(pixels)), image_size=(128, 32))


def test_not_an_object(tmp_path):
    with pytest.raises(ValueError, match="intrinsics.json: expected a JSON object"):
        folder.read_intrinsics(write(tmp_path, "[0.58, 1.92, 0.5, 0.5]"))


# --- poses.txt (known camera poses for --pose_source=gt) ---------------------------------------------


def write_frames(root, count: int, poses_lines: list[str] | None = None) -> None:
    from PIL import Image  # noqa: PLC0415

    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((32, 64, 3), 10 * i, np.uint8)).save(root / f"{i:04d}.png")
    (root / "intrinsics.json").write_text(json.dumps(GOOD))
    if poses_lines is not None:
        (root / "poses.txt").write_text("".join(line + "\n" for line in poses_lines))


def driving_forward(count: int, step: float = 0.8) -> list[str]:
    """camera-to-world poses of a camera moving ``step`` metres along its z axis per frame."""
    return [f"1 0 0 0 0 1 0 0 0 0 1 {step * i}" for i in range(count)]


def test_poses_become_relative_source_poses(tmp_path):
    write_frames(tmp_path / "clip", 4, driving_forward(4))
    samples = folder.folder_samples(str(tmp_path / "clip"), temporal_offsets=(-1, 1), image_ext=".png",
                                    subset="test")
    assert [s.name for s in samples] == ["0001.png", "0002.png"]
    for sample in samples:
        relative = sample.temporal_source_from_target  # [2, 4, 4]
        np.testing.assert_allclose(relative[:, :3, :3], np.stack([np.eye(3)] * 2), atol=1e-7)
        # The previous camera is 0.8 m behind: target points are 0.8 m farther from it; the next
        # one is 0.8 m ahead.
        np.testing.assert_allclose(relative[:, :3, 3], [[0, 0, 0.8], [0, 0, -0.8]], atol=1e-6)


def test_pipeline_carries_folder_poses(tmp_path):
    from md2tf.config import DataConfig  # noqa: PLC0415
    from md2tf.data import pipeline  # noqa: PLC0415

    write_frames(tmp_path / "clip", 4, driving_forward(4, step=0.5))
    config = DataConfig(dataset="folder", data_dir=str(tmp_path / "clip"), image_ext=".png", height=32,
                        width=64, frame_offsets=(0, 1, -1), gt_height=32, gt_width=64)
    batches = list(pipeline.make_dataset(config, "test", batch_size=2, training=False))
    poses = np.concatenate([b.temporal_source_from_target.numpy() for b in batches])
    assert poses.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(poses[:, :, 2, 3], [[-0.5, 0.5], [-0.5, 0.5]], atol=1e-6)  # offsets +1, -1


def test_without_poses_file_the_poses_are_unknown(tmp_path):
    write_frames(tmp_path / "clip", 3)
    (sample,) = folder.folder_samples(str(tmp_path / "clip"), image_ext=".png", subset="test")
    assert sample.temporal_source_from_target.shape == (2, 4, 4)
    assert np.all(np.isnan(sample.temporal_source_from_target))


@pytest.mark.parametrize("lines, message", [
    (driving_forward(3), r"clip/poses.txt: 3 poses for 4 frames"),
    (driving_forward(3) + ["1 0 0 0 0 1 0 0 0 0 1 inf"], r"clip/poses.txt:4: pose values must be finite"),
    (driving_forward(3) + ["1 0 0 0 0 1 0 0 0 0 1"], r"clip/poses.txt:4: expected 12 numbers"),
])
def test_bad_poses_file_names_it(tmp_path, lines, message):
    write_frames(tmp_path / "clip", 4, lines)
    with pytest.raises(ValueError, match=message):
        folder.folder_samples(str(tmp_path / "clip"), image_ext=".png", subset="test")


# --- checks before training (FrameFolder.prepare) ----------------------------------------------------


def _folder_config(root, **overrides):
    from md2tf.config import DataConfig  # noqa: PLC0415

    return DataConfig(**{"dataset": "folder", "data_dir": str(root), "image_ext": ".png", "height": 32,
                         "width": 64, **overrides})


def _write_frame(path, height: int, width: int) -> None:
    from PIL import Image  # noqa: PLC0415

    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(path)


@pytest.mark.parametrize("odd_size", [(48, 64), (32, 32), (64, 128)], ids=["size", "aspect", "scale"])
def test_a_frame_of_another_size_is_named(tmp_path, odd_size):
    write_frames(tmp_path / "clip", 5)  # 64x32
    _write_frame(tmp_path / "clip" / "0003.png", *odd_size)
    h, w = odd_size
    with pytest.raises(ValueError, match=rf"^{tmp_path}/clip/0003.png: a {w}x{h} frame among 64x32 "
                                         rf"frames in {tmp_path}/clip \(from 0000.png on\); give"):
        folder.DATASET.prepare(_folder_config(tmp_path / "clip"))


def test_sizes_are_checked_per_clip_and_unreadable_frames_are_left_to_the_pipeline(tmp_path):
    write_frames(tmp_path / "clips" / "a", 4)  # 64x32
    (tmp_path / "clips" / "b").mkdir()
    for i in range(4):  # another clip, another camera: fine
        _write_frame(tmp_path / "clips" / "b" / f"{i:04d}.png", 48, 64)
    (tmp_path / "clips" / "b" / "0004.png").write_bytes(b"not an image")
    folder.DATASET.prepare(_folder_config(tmp_path / "clips"))
    _write_frame(tmp_path / "clips" / "b" / "0005.png", 32, 64)
    with pytest.raises(ValueError, match=r"clips/b/0005.png: a 64x32 frame among 64x48 frames"):
        folder.DATASET.prepare(_folder_config(tmp_path / "clips"))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]


def test_frames_without_intrinsics_say_once_which_camera_trains(tmp_path, caplog):
    write_frames(tmp_path / "clip", 3)
    (tmp_path / "clip" / "intrinsics.json").unlink()
    with caplog.at_level("WARNING"):
        folder.DATASET.prepare(_folder_config(tmp_path / "clip"))
    (message,) = _warnings(caplog)
    assert message.startswith(f"--data_dir={tmp_path / 'clip'}: no intrinsics.json, so training uses "
                              "the paper's KITTI K (--intrinsics=fixed: normalised fx 0.58, fy 1.92, "
                              "cx 0.5, cy 0.5), which is right only for a KITTI-like camera; put your "
                              'camera\'s K beside the frames as {"fx": ..., "fy": ..., "cx": ..., "cy": '
                              '..., "units": "pixels"}')
    assert "--intrinsics=calib to require it" in message
    # The K it names is the one the samples get.
    (sample,) = folder.folder_samples(str(tmp_path / "clip"), image_ext=".png", subset="test")
    np.testing.assert_allclose(sample.intrinsics, [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]])


def test_clips_without_intrinsics_are_counted_in_one_warning(tmp_path, caplog):
    for name in ("a", "b", "c"):
        write_frames(tmp_path / "clips" / name, 3)
    for name in ("b", "c"):
        (tmp_path / "clips" / name / "intrinsics.json").unlink()
    with caplog.at_level("WARNING"):
        folder.DATASET.prepare(_folder_config(tmp_path / "clips"))
        folder.DATASET.prepare(_folder_config(tmp_path / "clips" / "a"))  # has its K: silent
        folder.DATASET.prepare(_folder_config(tmp_path / "clips", intrinsics="calib"))  # refuses later
    (message,) = _warnings(caplog)
    assert message.startswith(f"2 of the 3 frame folders of --data_dir={tmp_path / 'clips'} (first "
                              f"{tmp_path / 'clips' / 'b'}): no intrinsics.json")
    caplog.clear()
    (tmp_path / "clips" / "intrinsics.json").write_text(json.dumps(GOOD))  # one K for all clips
    with caplog.at_level("WARNING"):
        folder.DATASET.prepare(_folder_config(tmp_path / "clips"))
    assert not _warnings(caplog)
