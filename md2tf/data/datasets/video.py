"""``--dataset=video``: training on video files, decoded once into the frame folders of ``folder``.

Layout of ``--data_dir``::

    clips/
      intrinsics.json              # as for --dataset=folder (md2tf/data/datasets/folder.py)
      drive1.mp4 drive2.mov ...    # .mp4 .mov .mkv .avi .webm .m4v, decoded with PyAV

On first use (`VideoClips.prepare`, the chief only) every clip is decoded once into a prepared
folder ``<video.cache_dir or data_dir/.md2tf_frames>/<settings>-<hash>/``; the name holds the
decoding settings (``DataConfig.video``: ``frame_stride`` or ``target_fps``, ``static_threshold``;
and ``image_ext``) and a hash of them and of the clips' names, sizes and modification times, so
changing the stride or a
clip decodes again and an unchanged setup never does. Decoding keeps every stride-th frame, measures
the motion between consecutive kept frames (`md2tf.data.video_io.motion`) and cuts the clip where it is
below ``static_threshold`` (a stop at a traffic light, a parked start): each moving run of at least
three frames becomes one sub-folder ``<clip>_<ext>_<run>/<frame index>.jpg``, the layout
``--dataset=folder`` reads, and training reads it exactly as a folder of frames (same samples, same
train / val rule, same intrinsics). Neighbours in a run are one stride apart in the video, so no
sample spans a removed stop. The count of dropped frames is logged per clip and kept, with every
measured motion value, in the prepared folder's manifest ``video_frames.json`` (written last).
One process decodes a prepared folder at a time (`prepare_videos`); a second training on the same
clips waits for it and then reads its frames.

With ``--speed_source=file`` the velocity loss reads ``<clip name>.speeds.csv`` beside each clip
(``drive1.speeds.csv``: time in seconds from the clip's start, speed in m/s; `md2tf.data.speeds`),
at the decoded frames' times (each run folder's ``times.txt``).

Intrinsics refer to the frames as decoded (display orientation, full size); ``intrinsics.json`` is
copied into the prepared folder whenever it changes, without decoding again. Without it the paper's
KITTI K trains, with one warning before training (``--intrinsics=calib`` requires the file).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from PIL import Image

from md2tf import locks
from md2tf.config import DataConfig
from md2tf.data import video_io
from md2tf.data.datasets.base import FileDataset, missing_data_error
from md2tf.data.datasets.folder import (
    INTRINSICS_FILE,
    TIMES_FILE,
    folder_samples,
    read_intrinsics,
    warn_fallback_intrinsics,
)
from md2tf.data.sample import Sample

logger = logging.getLogger(__name__)

MANIFEST = "video_frames.json"
SPEEDS_SUFFIX = ".speeds.csv"  # --speed_source=file: <clip name>.speeds.csv beside the clip
FORMAT_VERSION = 2  # 2: each run folder holds times.txt
#: Default cache folder inside ``data_dir``.
CACHE_FOLDER = ".md2tf_frames"
#: Shortest moving run written: a target with its -1 and +1 neighbours.
MIN_RUN = 3
JPEG_QUALITY = 92  # as the reference's KITTI JPEGs (with 4:2:0 chroma)


def list_videos(data_dir: str) -> list[str]:
    """The video files directly in ``data_dir`` (`md2tf.data.video_io.VIDEO_EXTENSIONS`), sorted by name.

    Raises:
      ValueError: naming ``--data_dir`` if it is not a directory or holds no video file.
    """
    if not os.path.isdir(data_dir):
        raise ValueError(f"--data_dir={data_dir!r} is not a directory of video files")
    paths = sorted(os.path.join(data_dir, n) for n in os.listdir(data_dir)
                   if video_io.is_video(n) and os.path.isfile(os.path.join(data_dir, n)))
    if not paths:
        raise ValueError(f"--data_dir={data_dir!r} holds no video file "
                         f"({', '.join(video_io.VIDEO_EXTENSIONS)}) for --dataset=video")
    return paths


def decoding_settings(config: DataConfig) -> dict:
    """Everything that changes the prepared frames: the folder name is a hash of this."""
    clips = []
    for path in list_videos(config.data_dir):
        stat = os.stat(path)
        clips.append([os.path.basename(path), stat.st_size, stat.st_mtime_ns])
    settings = config.video
    return {"format_version": FORMAT_VERSION, "frame_stride": settings.frame_stride,
            "target_fps": settings.target_fps, "static_threshold": settings.static_threshold,
            "image_ext": config.image_ext, "min_run": MIN_RUN, "clips": clips}


def prepared_dir(config: DataConfig) -> str:
    """The prepared folder of ``config``'s clips and decoding settings (see the module docstring)."""
    settings = decoding_settings(config)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    video_config = config.video
    rate = (f"fps{video_config.target_fps:g}" if video_config.target_fps > 0
            else f"stride{video_config.frame_stride}")
    name = f"{rate}_static{video_config.static_threshold:g}_{config.image_ext.lstrip('.')}-{digest}"
    root = video_config.cache_dir or os.path.join(config.data_dir, CACHE_FOLDER)
    return os.path.join(root, name)


def _clip_label(path: str) -> str:
    return os.path.basename(path).replace(".", "_")


def _save(image, path: str, ext: str) -> None:
    if ext == ".jpg":
        Image.fromarray(image).save(path, quality=JPEG_QUALITY, subsampling=2)
    else:
        Image.fromarray(image).save(path, compress_level=3)


def decode_clip(path: str, out_dir: str, *, frame_stride: int, target_fps: float, static_threshold: float,
                image_ext: str, progress: bool = True) -> dict:
    """Decodes one clip into moving runs ``<out_dir>/<clip>_<run>/<frame index><image_ext>``.

    Args:
      path: the video file.
      out_dir: the (staging) prepared folder.
      frame_stride, target_fps: the stride (`md2tf.data.video_io.stride_for` of the clip's frame rate).
      static_threshold: cut where `md2tf.data.video_io.motion` of consecutive kept frames is below this.
      image_ext: ``.jpg`` or ``.png``.
      progress: draw a progress bar.

    Returns:
      The clip's manifest entry: ``file``, ``fps``, ``stride``, ``decoded`` (frames kept by the
      stride), ``kept``, ``dropped``, ``runs`` (``[first, last]`` frame indices of each run) and
      ``motion`` (per decoded frame, vs the previous one; 0 for the first).
    """
    fps = video_io.probe(path).fps
    stride = video_io.stride_for(fps, frame_stride, target_fps)
    label = _clip_label(path)
    scratch = os.path.join(out_dir, label + ".all")
    os.makedirs(scratch)
    indices, motions, previous = [], [], None
    for index, image in video_io.read_frames(path, stride=stride, progress=progress, desc=label):
        thumb = video_io.thumbnail(image)
        motions.append(0.0 if previous is None else video_io.motion(previous, thumb))
        previous = thumb
        indices.append(index)
        _save(image, os.path.join(scratch, f"{index:06d}{image_ext}"), image_ext)
    runs = video_io.moving_runs(motions, static_threshold, MIN_RUN)
    for k, run in enumerate(runs):
        folder = os.path.join(out_dir, f"{label}_{k:03d}")
        os.makedirs(folder)
        for i in run:
            name = f"{indices[i]:06d}{image_ext}"
            os.replace(os.path.join(scratch, name), os.path.join(folder, name))
        with open(os.path.join(folder, TIMES_FILE), "w", encoding="utf-8") as f:  # for speeds.csv
            f.writelines(f"{indices[i] / fps:.6f}\n" for i in run)
    shutil.rmtree(scratch)
    kept = sum(len(r) for r in runs)
    return {"file": os.path.basename(path), "fps": fps, "stride": stride, "decoded": len(indices),
            "kept": kept, "dropped": len(indices) - kept,
            "runs": [[indices[r[0]], indices[r[-1]]] for r in runs],
            "motion": [round(m, 6) for m in motions]}


def _sync_intrinsics(config: DataConfig, prepared: str) -> None:
    """Copies ``<data_dir>/intrinsics.json`` into the prepared folder (removes it when gone)."""
    source, target = os.path.join(config.data_dir, INTRINSICS_FILE), os.path.join(prepared, INTRINSICS_FILE)
    if not os.path.isfile(source):
        if os.path.isfile(target):
            os.remove(target)
        return
    with open(source, "rb") as f:
        data = f.read()
    if os.path.isfile(target):
        with open(target, "rb") as f:
            if f.read() == data:
                return
    partial = f"{target}.{os.getpid()}.partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, target)


def prepare_videos(config: DataConfig, progress: bool = True, wait_s: float = 3600.0) -> str:
    """Decodes every clip of ``config.data_dir`` unless the prepared folder is complete.

    One process decodes a prepared folder at a time: it holds the lock ``<prepared folder>.lock``
    (`md2tf.locks`) while it decodes into ``<prepared folder>.partial`` and renames that into place.
    Another process (a second training on the same clips) waits for it, then uses its result.

    Args:
      config: the data settings (``data_dir``, ``image_ext``, the decoding settings ``video``).
      progress: draw a progress bar per clip.
      wait_s: seconds to wait for another process's decoding of the same folder.

    Returns:
      The prepared folder (`prepared_dir`).

    Raises:
      ValueError: no video file, a clip that cannot be decoded, a bad ``intrinsics.json`` (naming
        the file), no moving run of at least `MIN_RUN` frames in any clip, or another process still
        decoding after ``wait_s`` seconds (naming its PID).
    """
    out = prepared_dir(config)
    manifest = os.path.join(out, MANIFEST)
    if not os.path.isfile(manifest):
        with locks.hold(f"{out}.lock", f"the prepared frames {out}",
                        "another process is still decoding these clips: wait for it to finish, or "
                        "give this run its own --video_cache_dir", wait_s=wait_s):
            if not os.path.isfile(manifest):  # else decoded by the holder this process waited for
                _decode_clips(config, out, progress)
    _sync_intrinsics(config, out)
    return out


def _decode_clips(config: DataConfig, out: str, progress: bool) -> None:
    """`prepare_videos`' decoding into ``<out>.partial``, renamed to ``out`` when complete."""
    clips = list_videos(config.data_dir)
    intrinsics = os.path.join(config.data_dir, INTRINSICS_FILE)
    if os.path.isfile(intrinsics):  # fail before decoding, not after
        info = video_io.probe(clips[0])
        read_intrinsics(intrinsics, (info.width, info.height))
    staging = f"{out}.partial"
    if os.path.isdir(staging):
        shutil.rmtree(staging)
    os.makedirs(staging)
    entries = []
    for path in clips:
        entry = decode_clip(path, staging, frame_stride=config.video.frame_stride,
                            target_fps=config.video.target_fps,
                            static_threshold=config.video.static_threshold, image_ext=config.image_ext,
                            progress=progress)
        logger.info("%s: %.3g fps, stride %d: %d frames, %d static dropped (--static_threshold=%g), "
                    "%d kept in %d runs", entry["file"], entry["fps"], entry["stride"], entry["decoded"],
                    entry["dropped"], config.video.static_threshold, entry["kept"], len(entry["runs"]))
        entries.append(entry)
    decoded, dropped = sum(e["decoded"] for e in entries), sum(e["dropped"] for e in entries)
    if decoded == dropped:
        shutil.rmtree(staging)
        raise ValueError(f"--data_dir={config.data_dir!r}: every frame of the {len(clips)} clip(s) is "
                         f"static at --static_threshold={config.video.static_threshold:g} (no moving run of "
                         f"{MIN_RUN} frames); lower it, or 0 keeps every frame")
    logger.info("video: %d of %d frames dropped as static, prepared frames in %s", dropped, decoded, out)
    with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as f:
        json.dump({"settings": decoding_settings(config), "clips": entries}, f)
    if os.path.isdir(out):  # an incomplete folder without manifest
        shutil.rmtree(out)
    os.replace(staging, out)


@dataclass(frozen=True)
class VideoClips(FileDataset):
    """The `md2tf.data.datasets.base.Dataset` of video files (module docstring); no depth GT."""

    name: str = "video"
    layout: str = ("<data_dir>/<clip>.mp4 (.mov .mkv .avi ...) + intrinsics.json; decoded once into "
                   "<data_dir>/.md2tf_frames/ (or --video_cache_dir)")
    eval_split: str = ""
    gt_sources: Mapping[str, str] = field(default_factory=dict)

    def check_layout(self, config: DataConfig) -> None:
        """See `md2tf.data.datasets.base.Dataset.check_layout`; also needs at least one video file."""
        if not config.data_dir or not os.path.isdir(config.data_dir):
            raise missing_data_error(config, self.layout,
                                     "Put your video files there (see md2tf/data/datasets/video_io.py)")
        list_videos(config.data_dir)

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """Decodes the clips once (`prepare_videos`); other workers wait for the chief's manifest.

        Without ``intrinsics.json`` beside the clips, logs which K trains and how to give one
        (`md2tf.data.datasets.folder.warn_fallback_intrinsics`).

        Raises:
          ValueError: as `prepare_videos`.
          TimeoutError: if a non-chief worker waited longer than ``timeout_s`` seconds.
        """
        self.check_layout(config)
        if config.intrinsics == "fixed" and not os.path.isfile(
                os.path.join(config.data_dir, INTRINSICS_FILE)):
            warn_fallback_intrinsics(f"--data_dir={config.data_dir}", "beside the video files")
        if is_chief:
            prepare_videos(config, progress=progress, wait_s=timeout_s)
            return
        manifest = os.path.join(prepared_dir(config), MANIFEST)
        deadline = time.time() + timeout_s
        while not os.path.exists(manifest):
            if time.time() > deadline:
                raise TimeoutError(f"worker waited {timeout_s:.0f} s for the chief to write {manifest}")
            time.sleep(2.0)

    def list_samples(self, config: DataConfig, subset: str) -> list[Sample]:
        """`md2tf.data.datasets.folder.folder_samples` of the prepared folder (decoded if needed).

        Raises:
          ValueError: with ``use_stereo`` (a video has no stereo partner), and as `prepare_videos`
            and `folder_samples`.
        """
        if config.use_stereo:
            raise ValueError("--use_stereo is not available with --dataset=video (no stereo partner)")
        self.check_layout(config)
        root = prepare_videos(config)
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            clips = {_clip_label(e["file"]): e["file"] for e in json.load(f)["clips"]}

        def clip_of(folder: str) -> str:  # <clip label>_<run> -> the clip's file name: its camera
            return clips[os.path.basename(folder).rsplit("_", 1)[0]]

        def speeds(folder: str) -> str:  # -> <data_dir>/<clip name>.speeds.csv
            return os.path.join(config.data_dir, os.path.splitext(clip_of(folder))[0] + SPEEDS_SUFFIX)

        return folder_samples(root, temporal_offsets=config.temporal_offsets,
                              image_ext=config.image_ext, intrinsics=config.intrinsics, subset=subset,
                              speeds_file=speeds if config.speed_source == "file" else None,
                              camera_of=clip_of)


DATASET = VideoClips()
