"""Video decoding (PyAV), static-frame removal and ``--dataset=video`` on a rendered clip with a stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from md2tf.config import ConfigError, DataConfig, ExperimentConfig, VideoConfig
from md2tf.data import datasets, video_io
from md2tf.data.datasets import video as video_dataset
from md2tf.data.synthetic import clip as vw

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """``{"frames": rendered uint8 frames, "dir": a clips folder, "path": its one .mp4}``."""
    root = tmp_path_factory.mktemp("clips")
    frames = vw.render_clip()
    path = str(root / "drive.mp4")
    vw.write_clip(path, frames)
    (root / "intrinsics.json").write_text(json.dumps({"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5}))
    return {"frames": frames, "dir": str(root), "path": path}


def config(clip, **overrides) -> DataConfig:
    values = dict(dataset="video", data_dir=clip["dir"], height=64, width=128, frame_offsets=(0, -1, 1))
    values.update(overrides)
    return DataConfig(**values)


def frame_index(path: str) -> int:
    return int(os.path.splitext(os.path.basename(path))[0])


# --- decoding ---------------------------------------------------------------------------------------


def test_probe_reads_rate_count_and_size(clip):
    info = video_io.probe(clip["path"])
    assert (info.fps, info.num_frames, info.width, info.height, info.rotation) == (
        vw.FPS, vw.NUM_FRAMES, vw.WIDTH, vw.HEIGHT, 0)


def test_stride_and_max_frames_are_honoured(clip):
    frames = list(video_io.read_frames(clip["path"], stride=3))
    assert [i for i, _ in frames] == list(range(0, vw.NUM_FRAMES, 3))
    assert [i for i, _ in video_io.read_frames(clip["path"], stride=4, max_frames=3)] == [0, 4, 8]
    # Each decoded frame is the rendered frame of its index (lossy coding), not a neighbour's.
    for index, image in frames[:4]:
        errors = [np.abs(image.astype(float) - f).mean() for f in clip["frames"]]
        assert int(np.argmin(errors)) == index and errors[index] < 0.5 * sorted(errors)[1]


@pytest.mark.parametrize("fps, frame_stride, target_fps, expected", [
    (30.0, 1, 10.0, 3), (29.97, 1, 10.0, 3), (24.0, 1, 10.0, 2), (10.0, 1, 30.0, 1), (30.0, 5, 0.0, 5)])
def test_stride_for(fps, frame_stride, target_fps, expected):
    assert video_io.stride_for(fps, frame_stride, target_fps) == expected


def test_display_rotation_is_applied(tmp_path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:8, :16] = 255  # a white block in the stored frame's top-left corner
    path = str(tmp_path / "phone.mp4")
    vw.write_clip(path, np.stack([image] * 2), rotation=90)
    assert video_io.probe(path)[3:] == (32, 64, 90)  # width, height swapped
    (_, decoded), = list(video_io.read_frames(path, max_frames=1))
    np.testing.assert_allclose(decoded, np.rot90(image, 1), atol=40)  # counter-clockwise quarter turn


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="nope.mp4.*does not exist"):
        video_io.probe(str(tmp_path / "nope.mp4"))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="cannot open video.*broken.mp4"):
        video_io.probe(str(tmp_path / "broken.mp4"))


def test_writer_round_trip_pads_odd_sizes(tmp_path, rng):
    frames = rng.integers(0, 256, (5, 33, 47, 3), dtype=np.uint8)
    path = str(tmp_path / "out.mp4")
    with video_io.VideoWriter(path, fps=12.5) as writer:
        for f in frames:
            writer.write(f)
    info = video_io.probe(path)
    assert (info.num_frames, info.width, info.height, info.fps) == (5, 48, 34, 12.5)
    with pytest.raises(ValueError, match="differs from the first frame"):
        with video_io.VideoWriter(str(tmp_path / "bad.mp4"), fps=10) as writer:
            writer.write(frames[0])
            writer.write(frames[0][:32])


# --- static frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize("motions, threshold, expected", [
    ([0, 5, 5, 5, 0, 0, 5, 5, 5], 1.0, [range(0, 4), range(5, 9)]),  # the stop splits the clip
    ([0, 5, 0, 5, 5], 1.0, [range(2, 5)]),                               # a 2-frame run is dropped
    ([0, 0, 0, 0], 1.0, []),
    ([0, 0, 0, 0], 0.0, [range(0, 4)]),                                  # threshold 0 keeps all
])
def test_moving_runs(motions, threshold, expected):
    assert video_io.moving_runs(motions, threshold, min_length=3) == expected


def test_default_threshold_separates_stopped_from_cruising(clip):
    threshold = VideoConfig().static_threshold
    thumbs = [video_io.thumbnail(image) for _, image in video_io.read_frames(clip["path"])]
    motion = [0.0] + [video_io.motion(a, b) for a, b in zip(thumbs, thumbs[1:])]
    stopped = [motion[i] for i in vw.STOPPED]
    cruising = [motion[i] for i in vw.CRUISING]
    assert max(stopped) < 0.2 * threshold and threshold < 0.8 * min(cruising)


# --- --dataset=video --------------------------------------------------------------------------------


def test_dataset_drops_the_stop_and_keeps_neighbours(clip):
    cfg = config(clip)
    samples = datasets.list_samples(cfg, "train") + datasets.list_samples(cfg, "val")
    manifest = json.load(open(os.path.join(video_dataset.prepared_dir(cfg), video_dataset.MANIFEST)))
    (entry,) = manifest["clips"]
    assert entry["decoded"] == vw.NUM_FRAMES and entry["dropped"] == vw.NUM_FRAMES - entry["kept"]
    used = set()
    for s in samples:
        t = frame_index(s.target)
        assert [frame_index(p) - t for p in s.sources] == [-1, 1]  # neighbours one stride apart
        used |= {t, *map(frame_index, s.sources)}
    assert not used & set(vw.STOPPED)
    assert set(vw.CRUISING) <= used
    assert entry["dropped"] >= len(vw.STOPPED)
    np.testing.assert_allclose(samples[0].intrinsics, [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]])


def test_stride_decodes_again_and_is_kept_by_samples(clip):
    one, two = config(clip), config(clip, video=VideoConfig(frame_stride=2))
    assert video_dataset.prepared_dir(one) != video_dataset.prepared_dir(two)
    samples = datasets.list_samples(two, "test")
    assert samples and all(frame_index(s.target) % 2 == 0 for s in samples)
    assert all([frame_index(p) - frame_index(s.target) for p in s.sources] == [-2, 2] for s in samples)
    # A prepared folder is decoded once: listing again does not rewrite it.
    manifest = os.path.join(video_dataset.prepared_dir(two), video_dataset.MANIFEST)
    before = os.stat(manifest).st_mtime_ns
    datasets.list_samples(two, "train")
    assert os.stat(manifest).st_mtime_ns == before


def test_threshold_zero_keeps_every_frame(clip):
    samples = datasets.list_samples(config(clip, video=VideoConfig(static_threshold=0.0)), "test")
    assert len(samples) == vw.NUM_FRAMES - 2


def test_errors_name_the_flag(clip, tmp_path):
    with pytest.raises(ValueError, match="--data_dir=.*holds no video file"):
        datasets.get_dataset("video").check_layout(config(clip, data_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="--use_stereo is not available with --dataset=video"):
        datasets.list_samples(config(clip, use_stereo=True), "train")
    with pytest.raises(ConfigError, match="--target_fps or --frame_stride, not both"):
        VideoConfig(frame_stride=2, target_fps=10.0)
    with pytest.raises(ConfigError, match="--static_threshold must be >= 0"):
        VideoConfig(static_threshold=-1.0)


def test_video_flags_keep_their_names_and_errors_name_the_commands_flag(capsys):
    """``--video_<field>`` by the prefix rule; the earlier names are aliases of the same settings."""
    from md2tf.flags import call_command, flag_names

    names = flag_names(ExperimentConfig)
    for field in ("frame_stride", "target_fps", "static_threshold"):
        assert f"video_{field}" in names and field in names
    assert "video_cache_dir" in names and "cache_dir" not in names
    seen = []

    def main(config, flag_values):
        seen.append(config.data.video)

    assert call_command(main, ExperimentConfig, ["--target_fps=10", "--static_threshold=0",
                                                 "--video_cache_dir=/tmp/frames"]) == 0
    assert call_command(main, ExperimentConfig, ["--video_frame_stride=3"]) == 0
    assert seen == [VideoConfig(target_fps=10.0, static_threshold=0.0, cache_dir="/tmp/frames"),
                    VideoConfig(frame_stride=3)]
    capsys.readouterr()
    assert call_command(main, ExperimentConfig, ["--frame_stride=2", "--target_fps=10"]) == 2
    assert capsys.readouterr().err == (
        "error: give --video_target_fps or --video_frame_stride, not both\n")


@pytest.mark.slow
def test_train_from_video_cli(clip, tmp_path):
    """``python -m md2tf.train --dataset=video`` decodes the clip at 10 fps and trains 3 steps."""
    cmd = [sys.executable, "-m", "md2tf.train", "--dataset=video", f"--data_dir={clip['dir']}",
           f"--video_cache_dir={tmp_path / 'frames'}", "--target_fps=10", "--nouse_stereo",
           "--frame_offsets=0,-1,1", "--height=64", "--width=128", "--batch_size=2", "--num_epochs=1",
           "--steps_per_epoch=3", "--max_steps=3", "--val_steps=1", "--log_every=1",
           "--image_log_every=0", "--noprogress_bar", "--gt_height=64", "--gt_width=128",
           f"--run_dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (prepared,) = os.listdir(tmp_path / "frames")
    assert prepared.startswith("fps10_")
    (entry,) = json.load(open(tmp_path / "frames" / prepared / video_dataset.MANIFEST))["clips"]
    assert entry["stride"] == 3 and entry["decoded"] == 15
    assert any(name.startswith("ckpt-3") for name in os.listdir(tmp_path / "run" / "checkpoints"))


@pytest.mark.slow
def test_uncalibrated_video_learns_its_k_and_predicts_point_clouds_with_it(clip, tmp_path):
    """No intrinsics.json: ``--intrinsics=learned`` starts at 60 degrees, trains, writes its K, and
    ``md2tf.predict --point_cloud`` builds point clouds with that K."""
    clips = tmp_path / "clips"
    clips.mkdir()
    os.symlink(clip["path"], clips / "drive.mp4")
    run = tmp_path / "run"
    train = [sys.executable, "-m", "md2tf.train", "--dataset=video", f"--data_dir={clips}",
             f"--video_cache_dir={tmp_path / 'frames'}", "--target_fps=10", "--intrinsics=learned",
             "--frame_offsets=0,-1,1", "--nouse_stereo", "--height=64", "--width=128", "--batch_size=2",
             "--num_epochs=1", "--steps_per_epoch=3", "--val_steps=1", "--image_log_every=0",
             "--noprogress_bar", "--gt_height=64", "--gt_width=128", f"--run_dir={run}"]
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.run(train, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # One camera: the clip (its runs before and after the stop share it), in the single-camera format.
    learned = json.load(open(run / "intrinsics_learned.json"))
    start = 1 / (2 * np.tan(np.radians(30.0)))  # the 60 degree start, moved by 3 steps
    assert learned["units"] == "normalized" and 0 < abs(learned["fx"] / start - 1) < 0.05
    assert f"learned K:       drive.mp4: fx {learned['fx']:.4f}" in proc.stdout
    predict = [sys.executable, "-m", "md2tf.predict", f"--model={run}", f"--input={clips / 'drive.mp4'}",
               f"--out={tmp_path / 'out'}", "--max_frames=1", "--point_cloud", "--save_frames"]
    proc = subprocess.run(predict, cwd=REPO, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "point clouds with the intrinsics of the K the model learned in training" in proc.stdout
    assert os.path.isfile(tmp_path / "out" / "drive_000000.ply")


# --- one decoder per prepared folder, and the camera it trains with ---------------------------------


def test_two_decodes_of_one_folder_decode_once_and_share_the_result(clip, tmp_path, monkeypatch):
    import threading

    cfg = config(clip, video=VideoConfig(cache_dir=str(tmp_path)))
    calls, second_decode = [], threading.Event()
    decode = video_dataset.decode_clip

    def slow_decode(*args, **kwargs):  # the first decode waits (up to 1 s) for a second one
        calls.append(threading.current_thread().name)
        if len(calls) > 1:
            second_decode.set()
        else:
            second_decode.wait(1.0)
        return decode(*args, **kwargs)

    monkeypatch.setattr(video_dataset, "decode_clip", slow_decode)
    results, errors = [], []

    def prepare():
        try:
            results.append(video_dataset.prepare_videos(cfg, progress=False))
        except Exception as e:  # noqa: BLE001  (reported by the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=prepare, name=f"training {i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and len(calls) == 1  # the second waited, then used the first one's frames
    assert results == [video_dataset.prepared_dir(cfg)] * 2
    assert os.listdir(tmp_path) == [os.path.basename(results[0])]  # no .partial, no .lock
    assert len(datasets.list_samples(cfg, "test")) > 0


def test_a_decode_held_elsewhere_times_out_in_one_line(clip, tmp_path):
    from md2tf import locks

    cfg = config(clip, video=VideoConfig(cache_dir=str(tmp_path)))
    out = video_dataset.prepared_dir(cfg)
    with locks.hold(f"{out}.lock", "another training's decode"):
        with pytest.raises(ValueError, match=rf"^the prepared frames {out} is in use by process "
                                             rf"{os.getpid()} after waiting 0.2 s .*another process "
                                             r"is still decoding these clips"):
            video_dataset.prepare_videos(cfg, progress=False, wait_s=0.2)
    assert not os.path.exists(out)


def test_clips_without_intrinsics_say_which_camera_trains(clip, tmp_path, monkeypatch, caplog):
    os.symlink(clip["path"], tmp_path / "drive.mp4")  # the clip, without intrinsics.json
    monkeypatch.setattr(video_dataset, "prepare_videos", lambda config, **kwargs: "")  # no decoding
    dataset = datasets.get_dataset("video")
    with caplog.at_level("WARNING"):
        dataset.prepare(config(clip, data_dir=str(tmp_path)))
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert record.getMessage().startswith(
        f"--data_dir={tmp_path}: no intrinsics.json, so training uses the paper's KITTI K "
        "(--intrinsics=fixed: normalised fx 0.58, fy 1.92, cx 0.5, cy 0.5)")
    assert "put your camera's K beside the video files as {" in record.getMessage()
    assert "\n" not in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING"):
        dataset.prepare(config(clip))  # brings its intrinsics.json
        dataset.prepare(config(clip, data_dir=str(tmp_path), intrinsics="calib"))  # requires one
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_clips_runs_share_one_camera(clip):
    """The stop cuts the clip into runs (frame folders); they are one camera, named by the clip."""
    cfg = config(clip)
    samples = datasets.list_samples(cfg, "train") + datasets.list_samples(cfg, "val")
    assert len({os.path.dirname(s.target) for s in samples}) > 1  # several runs
    assert {s.camera for s in samples} == {"drive.mp4"}
    assert datasets.get_dataset("video").cameras(cfg) == ("drive.mp4",)
