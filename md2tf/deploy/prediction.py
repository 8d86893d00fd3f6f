"""``md2tf.predict`` as a library: depth for an image, a folder or an animated GIF, any input size.

For each frame named ``<name>`` it writes, at the frame's original resolution:
  * ``<name>_disp.png``: magma-coloured disparity (min -> dark, 95th percentile -> bright);
  * ``<name>_disp.npy``: float32 ``[H, W]`` scaled disparity (``disp_to_depth``'s first output, the
    quantity Monodepth2 evaluates), bilinearly resized from the model size;
  * ``<name>_depth.npy``: float32 ``[H, W]`` depth = ``metric_scale / scaled disparity`` (metres for
    stereo-trained models, relative otherwise; see the model card).

Video files (``.mp4 .mov .mkv .avi .webm .m4v``, decoded with PyAV, `md2tf.data.video_io`) give frames
``<stem>_<frame index>`` (every ``frame_stride``-th, at most ``max_frames``) and by default only the
depth video ``<out>/<stem>_depth.mp4``: input and coloured disparity side by side, at the input's size
and frame rate / stride. The per-frame files above are written for a video only with
``save_frames``; ``video_out`` writes the side-by-side video for image folders and GIFs too.

With ``point_cloud`` every frame also gets ``<name>.ply``: a coloured point cloud of the depth in the
camera frame (x right, y down, z forward; depth's units), see `md2tf.deploy.pointcloud`; it needs the
camera's normalised intrinsics (``intrinsics.json`` as for ``--dataset=folder``).

With ``camera_height`` (`md2tf.deploy.height_scale`) the depth (``_depth.npy``, ``.ply``) is scaled to
metres from the camera's known height above a flat road: per image, or smoothed over a video's or
GIF's frames. The disparity files and colours are the network's, unscaled.

Unreadable files are reported and skipped; the run goes on and ends with a summary. An input under
1/8 of the network's input size in height or width is predicted with a warning naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageSequence
from tqdm import tqdm

from md2tf.data import video_io
from md2tf.data.datasets.folder import INTRINSICS_FILE, read_intrinsics
from md2tf.deploy import height_scale, pointcloud
from md2tf.deploy.images import (
    IMAGE_EXTENSIONS,
    colorize,
    list_images,
    load_image_rgb,
    resize_map,
    resize_rgb,
)
from md2tf.deploy.inference import Predictor
from md2tf.progress import Progress

logger = logging.getLogger(__name__)

#: An input smaller than the network's input size times this, in height or width, gets a warning:
#: the network then sees an image upsampled more than 8x, mostly interpolation, and its depth is
#: little more than a guess.
SMALL_INPUT_FRACTION = 1 / 8


@dataclasses.dataclass
class PredictSummary:
    """Outcome of a prediction run (``out_dir``: where the files went)."""

    written: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    num_frames: int = 0
    video: str = ""
    video_frames: int = 0
    out_dir: str = ""
    camera_height_m: float = 0.0
    scales: list[float] = dataclasses.field(default_factory=list)
    no_ground: int = 0
    filled: int = 0
    unscaled: list[str] = dataclasses.field(default_factory=list)

    #: Unscaled frames named one by one in `lines` before the rest are counted.
    MAX_NAMED = 10

    def lines(self) -> list[str]:
        """The end-of-run report: counts, the video, the camera-height scale, failures."""
        where = f" to {self.out_dir}" if self.out_dir else ""
        out = [f"predicted {self.num_frames} frame(s), wrote {len(self.written)} file(s){where}, "
               f"{len(self.failed)} failure(s)"]
        if self.video:
            out.append(f"  depth video ({self.video_frames} frames, input | disparity): {self.video}")
        if self.camera_height_m:
            out += self._height_lines()
        out += [f"  FAILED {path}: {reason}" for path, reason in self.failed]
        return out

    def _height_lines(self) -> list[str]:
        out = []
        if self.scales:
            filled = (f" (scale from neighbouring frames for {self.filled})" if self.filled else "")
            out.append(f"  depth (.npy, .ply) in metres from a camera height of {self.camera_height_m:g} m: "
                       f"median scale {np.median(self.scales):.4g} over {len(self.scales)} frame(s); "
                       f"{self.no_ground} frame(s) had too little ground visible{filled}")
        for name in self.unscaled[: self.MAX_NAMED]:
            out.append(f"  WARNING {name}: too little ground visible for the camera-height scale; its "
                       "depth is left unscaled (the model's units)")
        if len(self.unscaled) > self.MAX_NAMED:
            out.append(f"  WARNING ... and {len(self.unscaled) - self.MAX_NAMED} more frame(s) left unscaled")
        return out


def depth_units_line(info, camera_height_m: float = 0.0) -> str:
    """What the written depth is measured in and how it became metric (the predict summary's last line).

    Args:
      info: the model's `md2tf.deploy.inference.ModelInfo` (``depth_units``, ``metric_source``).
      camera_height_m: ``--camera_height`` (0 = not given).
    """
    if camera_height_m:
        return (f"  depth units: metres, from the ground plane and a camera height of {camera_height_m:g} m "
                f"(the model itself: {info.depth_units})")
    if info.depth_units == "metres":
        return f"  depth units: metres, from the training's {info.metric_source or 'metric scale'}"
    return ("  depth units: relative (monocular training is scale-free); --camera_height=<metres> "
            "scales it from the ground")


def _gif_frames(path: str) -> Iterator[tuple[str, np.ndarray]]:
    stem = os.path.splitext(os.path.basename(path))[0]
    with Image.open(path) as img:
        for i, frame in enumerate(ImageSequence.Iterator(img)):
            yield f"{stem}_{i:06d}", np.asarray(frame.convert("RGB"), np.uint8)


def _is_animated(path: str) -> bool:
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except (OSError, SyntaxError, ValueError):
        return False


def list_inputs(path: str) -> list[str]:
    """Files to process: ``path`` itself (image, GIF or video) or the images of a folder.

    Raises:
      ValueError: ``path`` does not exist, or is a folder without images.
    """
    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            raise ValueError(f"--input: no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path!r}")
        return files
    if not os.path.exists(path):
        raise ValueError(f"--input: {path!r} does not exist")
    return [path]


def make_out_dir(out_dir: str) -> None:
    """Creates ``--out`` (parents too) and checks that files can be written there.

    Raises:
      ValueError: ``out_dir`` is an existing file, cannot be created, or is not writable (a
        read-only file system), naming ``--out``.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out={out_dir} is an existing file, not a directory")
    try:
        os.makedirs(out_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):  # every output would fail the same way
            pass
    except OSError as e:
        raise ValueError(f"--out={out_dir} is not a writable directory: {e.strerror or e}") from None


def warn_if_small(path: str, image: np.ndarray, height: int, width: int) -> bool:
    """Logs one warning when ``image`` ``[h, w, 3]`` is under `SMALL_INPUT_FRACTION` of
    ``height`` x ``width`` (the network's input size) in either dimension; returns whether it did."""
    h, w = image.shape[:2]
    if h >= height * SMALL_INPUT_FRACTION and w >= width * SMALL_INPUT_FRACTION:
        return False
    with tqdm.external_write_mode(file=sys.stderr):  # on its own line, not glued onto a progress bar
        logger.warning("%s is %dx%d pixels (width x height), under 1/%d of the network's %dx%d input: "
                       "its depth is upsampled from very little image", path, w, h,
                       round(1 / SMALL_INPUT_FRACTION), width, height)
    return True


def predict_image(predictor: Predictor, image: np.ndarray) -> dict[str, np.ndarray]:
    """Depth of one uint8 RGB image ``[h, w, 3]`` of any size, returned at ``[h, w]``.

    Returns:
      ``disparity`` (sigmoid), ``scaled_disparity`` and ``depth``, each float32 ``[h, w]``. The sigmoid
      disparity is resized (bilinear) and the other two are derived from it, so that
      ``depth == metric_scale / scaled_disparity`` holds at the original size (float32 rounding).
    """
    h, w = image.shape[:2]
    out = predictor.predict(resize_rgb(image, predictor.height, predictor.width)[None])
    disp = np.clip(resize_map(out["disparity"][0], h, w), 0.0, 1.0).astype(np.float32)
    scaled, depth = predictor.info.disp_to_depth(disp)
    return {"disparity": disp, "scaled_disparity": scaled, "depth": depth}


def point_cloud_intrinsics(input_path: str, intrinsics_file: str = "",
                           learned: Mapping[str, Sequence[float]] | None = None,
                           needed_by: str = "--point_cloud") -> tuple[np.ndarray, str]:
    """The normalised K for point clouds (and the camera-height scale), and where it came from.

    In order: ``intrinsics_file``; ``intrinsics.json`` beside the input; the K the model learned in
    training (``ModelInfo.learned_intrinsics``, when it learned one camera's).

    Args:
      input_path: the ``--input`` (a folder: its ``intrinsics.json``; a file: the one in its folder).
      intrinsics_file: an explicit ``intrinsics.json`` (format of ``--dataset=folder``).
      learned: the model's learned K, camera name -> normalised ``(fx, fy, cx, cy)``.
      needed_by: the flag that needs the intrinsics, named when there are none.

    Returns:
      ``(K, source)``: float32 ``[3, 3]`` normalised K and a few words saying where it came from.

    Raises:
      ValueError: no intrinsics (naming the paths tried and the flag), or a bad file.
    """
    if intrinsics_file:
        path = intrinsics_file
        if not os.path.isfile(path):
            raise ValueError(f"--intrinsics_file={path!r} does not exist")
    else:
        folder = input_path if os.path.isdir(input_path) else os.path.dirname(input_path) or "."
        path = os.path.join(folder, INTRINSICS_FILE)
        if not os.path.isfile(path):
            if learned and len(learned) == 1:
                fx, fy, cx, cy = next(iter(learned.values()))
                K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], np.float32)
                return K, "the K the model learned in training"
            several = (f"; the model learned {len(learned)} cameras' K, give one of them" if learned
                       else "")
            raise ValueError(f"{needed_by} needs the camera intrinsics: no {path}{several}; give "
                             "--intrinsics_file=intrinsics.json (fx, fy, cx, cy; see --dataset=folder)")
    first = list_inputs(input_path)[0]
    if video_io.is_video(first):
        info = video_io.probe(first)
        size = (info.width, info.height)
    else:
        image = load_image_rgb(first)
        size = (image.shape[1], image.shape[0])
    return read_intrinsics(path, size), path


def _side_by_side(image: np.ndarray, colored: np.ndarray) -> np.ndarray:
    return np.concatenate([image, colored], axis=1)


def run_predict(predictor: Predictor, input_path: str, out_dir: str, save_npy: bool = True,
                save_color: bool = True, vmax_percentile: float = 95.0,
                progress: bool = True, *, frame_stride: int = 1, max_frames: int = 0,
                video_out: str = "", save_frames: bool = False,
                intrinsics: np.ndarray | None = None,
                camera_height: height_scale.CameraHeight | None = None) -> PredictSummary:
    """Predicts every frame of ``input_path`` and writes the outputs listed in the module docstring.

    Args:
      predictor: from `md2tf.deploy.inference.load_predictor`.
      input_path: image file, folder of images, animated GIF or video file.
      out_dir: output directory (created).
      save_npy, save_color: which per-frame files to write.
      vmax_percentile: disparity percentile mapped to the brightest colour.
      progress: draw a progress bar on stderr.
      frame_stride: video input: predict every ``frame_stride``-th frame.
      max_frames: video input: at most this many frames (0 = all).
      video_out: side-by-side depth video to write; empty = ``<out_dir>/<stem>_depth.mp4`` for a
        video input, none otherwise.
      save_frames: video input: also write the per-frame files.
      intrinsics: normalised ``[3, 3]`` K of the input camera: writes ``<name>.ply`` per frame.
      camera_height: scale the depth to metres from the camera's height (`height_scale`); a video's
        or animated GIF's frames are written `height_scale.SMOOTHING_WINDOW` // 2 frames late.

    Returns:
      A `PredictSummary` (files written, failures with reasons, camera-height scales).

    Raises:
      ValueError: a missing input, a folder without images, ``frame_stride < 1``,
        ``max_frames < 0`` or an ``out_dir`` that cannot be written (`make_out_dir`).
    """
    if frame_stride < 1 or max_frames < 0:
        raise ValueError(f"frame_stride must be >= 1 and max_frames >= 0, got {frame_stride}, {max_frames}")
    files = list_inputs(input_path)
    make_out_dir(out_dir)
    summary = PredictSummary(out_dir=out_dir, camera_height_m=camera_height.height_m if camera_height else 0.0)
    is_video = len(files) == 1 and video_io.is_video(files[0])
    if is_video and not video_out:
        stem = os.path.splitext(os.path.basename(files[0]))[0]
        video_out = os.path.join(out_dir, f"{stem}_depth.mp4")
    per_frame = save_frames or not is_video
    writer, used = None, set()

    def write(frame: _Frame, scale: float | None) -> None:
        """The frame's files; ``scale``: camera-height factor of its depth (None, NaN: unscaled)."""
        nonlocal writer
        name, image, fps, res = frame
        depth = res["depth"]
        if scale is not None and np.isfinite(scale):
            depth = (depth * scale).astype(np.float32)
            summary.scales.append(float(scale))
        elif scale is not None:
            summary.unscaled.append(name)
        base = os.path.join(out_dir, name)
        colored = None
        if (save_color and per_frame) or video_out:
            colored = colorize(res["scaled_disparity"], percentile=vmax_percentile)
        if save_color and per_frame:
            Image.fromarray(colored).save(base + "_disp.png")
            summary.written.append(base + "_disp.png")
        if save_npy and per_frame:
            np.save(base + "_disp.npy", res["scaled_disparity"])
            np.save(base + "_depth.npy", depth)
            summary.written += [base + "_disp.npy", base + "_depth.npy"]
        if intrinsics is not None:
            pointcloud.write_depth_ply(base + ".ply", depth, image, intrinsics)
            summary.written.append(base + ".ply")
        if video_out:
            if writer is None:
                writer = video_io.VideoWriter(video_out, fps / frame_stride if is_video else fps)
            writer.write(_side_by_side(image, colored))

    def write_smoothed(released: list[tuple[_Frame, float, bool]]) -> None:
        for frame, scale, own in released:
            summary.no_ground += not own
            summary.filled += not own and np.isfinite(scale)
            write(frame, scale)

    bar = Progress(len(files), "predict", unit="file", enabled=progress and not is_video)
    try:
        for path in files:
            checked = False  # the size of a file's first frame (a video's frames share it)
            smoother = None
            if camera_height is not None and (video_io.is_video(path) or _is_animated_gif(path)):
                smoother = height_scale.ScaleSmoother()
            try:
                for name, image, fps in _frames(path, used, frame_stride, max_frames, progress):
                    if not checked:
                        warn_if_small(path, image, predictor.height, predictor.width)
                        checked = True
                    res = predict_image(predictor, image)
                    summary.num_frames += 1
                    frame = _Frame(name, image, fps, res)
                    if camera_height is None:
                        write(frame, None)
                        continue
                    scale, _ = height_scale.frame_scale(res["depth"], camera_height)
                    if smoother is not None:
                        write_smoothed(smoother.push(frame, scale))
                    else:
                        summary.no_ground += not np.isfinite(scale)
                        write(frame, scale)
                if smoother is not None:  # the last frames, whose windows end with the sequence
                    write_smoothed(smoother.finish())
            except (ValueError, OSError) as e:
                summary.failed.append((path, str(e)))
                if smoother is not None:  # frames predicted before the error still get their files
                    try:
                        write_smoothed(smoother.finish())
                    except (ValueError, OSError) as again:
                        summary.failed.append((path, f"writing its last frames: {again}"))
            bar.update(1, postfix=os.path.basename(path)[-40:])
    finally:
        bar.close()
        if writer is not None:
            writer.close()
            summary.written.append(video_out)
            summary.video, summary.video_frames = video_out, writer.num_frames
    return summary


class _Frame(NamedTuple):
    """One predicted frame on its way to the files: output name, uint8 RGB, frame rate, outputs."""

    name: str
    image: np.ndarray
    fps: float
    outputs: dict[str, np.ndarray]


def _is_animated_gif(path: str) -> bool:
    return path.lower().endswith(".gif") and _is_animated(path)


#: Frame rate of the side-by-side video of image and GIF inputs.
IMAGE_SEQUENCE_FPS = 10.0


def _frames(path: str, used: set[str], frame_stride: int, max_frames: int,
            progress: bool) -> Iterator[tuple[str, np.ndarray, float]]:
    """``(output name, uint8 RGB frame, frame rate)`` of one input file."""
    if video_io.is_video(path):
        info = video_io.probe(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        for index, image in video_io.read_frames(path, stride=frame_stride, max_frames=max_frames,
                                              progress=progress, desc="predict"):
            yield f"{stem}_{index:06d}", image, info.fps or IMAGE_SEQUENCE_FPS
    elif _is_animated_gif(path):
        for name, image in list(_gif_frames(path)):
            used.add(name)
            yield name, image, IMAGE_SEQUENCE_FPS
    else:
        name = os.path.splitext(os.path.basename(path))[0]
        if name in used:
            name = os.path.basename(path).replace(".", "_")
        image = load_image_rgb(path)
        used.add(name)
        yield name, image, IMAGE_SEQUENCE_FPS
