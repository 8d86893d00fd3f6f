"""Video files in and out with PyAV (FFmpeg in its wheel): frames, frame rates, motion, encoding.

Reading (`probe`, `read_frames`): frames come out as uint8 RGB ``[H, W, 3]`` in display orientation
(a rotation stored in the stream's display matrix, as phones write it, is applied), every
``stride``-th decoded frame, optionally at most ``max_frames`` of them. The frame rate is the
stream's average rate. `stride_for` turns a target frame rate into a stride (a phone's 30 fps at
``target_fps=10`` gives stride 3, KITTI's 10 Hz).

Static frames (`motion`, `moving_runs`): the paper trains on KITTI with static frames removed
(Sec. 4.1, following Zhou et al.), because a pair of frames from a standing camera gives the
photometric loss nothing to learn from. The measure between two frames is the median absolute
difference of their grey thumbnails (`thumbnail`: area-averaged to `THUMBNAIL_WIDTH` pixels wide,
values in [0, 1]). The median ignores what moves in a minority of the image (other cars at a traffic
light) and the thumbnail averages out sensor and coding noise; its threshold is measured in
``docs/data.md``.

Writing (`VideoWriter`): H.264 (``libx264``) when the wheel has it, else MPEG-4 part 2, yuv420p.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np

from md2tf.progress import Progress

#: File name endings read as video (lower case).
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")

#: Width in pixels of the grey thumbnail on which inter-frame motion is measured.
THUMBNAIL_WIDTH = 64

#: Luma weights of ITU-R BT.601 (grey = 0.299 R + 0.587 G + 0.114 B).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def is_video(path: str) -> bool:
    """Whether ``path`` names a video file by its extension (`VIDEO_EXTENSIONS`)."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


class VideoInfo(NamedTuple):
    """What a video's first video stream says about itself.

    Attributes:
      path: the file.
      fps: average frame rate in frames per second.
      num_frames: frame count from the container (0 when it does not say).
      width, height: decoded frame size in pixels, after the display rotation.
      rotation: counter-clockwise display rotation in degrees (0, 90, 180 or 270).
    """

    path: str
    fps: float
    num_frames: int
    width: int
    height: int
    rotation: int


def _open(path: str):
    if not os.path.isfile(path):
        raise ValueError(f"video {path!r} does not exist")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError) as error:
        raise ValueError(f"cannot open video {path!r}: {error}") from error
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path!r} has no video stream")
    return container


def _rotation_steps(frame) -> int:
    """Quarter turns counter-clockwise that bring a decoded frame into display orientation."""
    degrees = int(getattr(frame, "rotation", 0) or 0)
    return (round(degrees / 90.0)) % 4


def probe(path: str) -> VideoInfo:
    """Reads the stream's frame rate and frame count and decodes the first frame (size, rotation).

    Raises:
      ValueError: naming the file if it is missing, not a video, has no video stream or no frame.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        first = next(container.decode(stream), None)
        if first is None:
            raise ValueError(f"video {path!r} has no decodable frame")
        steps = _rotation_steps(first)
        width, height = (first.height, first.width) if steps % 2 else (first.width, first.height)
        return VideoInfo(path, fps, int(stream.frames or 0), width, height, 90 * steps)


def stride_for(fps: float, frame_stride: int = 1, target_fps: float = 0.0) -> int:
    """The frame stride: ``frame_stride``, or with ``target_fps > 0`` the stride nearest to it.

    Args:
      fps: the video's frame rate (frames per second).
      frame_stride: keep every ``frame_stride``-th frame (>= 1).
      target_fps: if > 0, the wanted frame rate: stride ``max(1, round(fps / target_fps))``.

    Returns:
      The stride, >= 1.
    """
    if target_fps > 0:
        if fps <= 0:
            raise ValueError("target_fps needs the video's frame rate, which the file does not give; "
                             "use frame_stride instead")
        return max(1, round(fps / target_fps))
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
    return frame_stride


def read_frames(path: str, *, stride: int = 1, max_frames: int = 0, progress: bool = False,
                desc: str | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decodes ``path`` and yields every ``stride``-th frame as ``(frame index, RGB image)``.

    Args:
      path: a video file.
      stride: keep frames ``0, stride, 2 stride, ...`` (indices in decoding order).
      max_frames: stop after yielding this many frames (0 = all).
      progress: draw a progress bar (in decoded frames; the total comes from the container).
      desc: the bar's label (default: the file name).

    Yields:
      ``(index, image)``: the frame's index in the video and uint8 ``[H, W, 3]`` RGB in display
      orientation.

    Raises:
      ValueError: naming the file if it cannot be opened or decoding fails.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = int(stream.frames or 0)
        if max_frames:
            total = min(total, (max_frames - 1) * stride + 1) if total else 0
        bar = Progress(total or None, desc or os.path.basename(path), unit="frame", enabled=progress)
        yielded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                bar.update(1)
                if index % stride:
                    continue
                image = frame.to_ndarray(format="rgb24")
                steps = _rotation_steps(frame)
                if steps:
                    image = np.ascontiguousarray(np.rot90(image, steps))
                yield index, image
                yielded += 1
                if max_frames and yielded >= max_frames:
                    break
        except av.FFmpegError as error:
            raise ValueError(f"cannot decode video {path!r}: {error}") from error
        finally:
            bar.close()


def thumbnail(image: np.ndarray, width: int = THUMBNAIL_WIDTH) -> np.ndarray:
    """Grey, area-averaged thumbnail of an RGB frame: the input of `motion`.

    Args:
      image: uint8 ``[H, W, 3]`` RGB.
      width: thumbnail width in pixels (the block side is ``max(1, W // width)``).

    Returns:
      float32 ``[H // f, W // f]`` grey in [0, 1], ``f = max(1, W // width)``.
    """
    grey = image.astype(np.float32) @ _LUMA / 255.0
    h, w = grey.shape
    f = max(1, w // width)
    return grey[:h // f * f, :w // f * f].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def motion(a: np.ndarray, b: np.ndarray) -> float:
    """Inter-frame motion: median absolute difference of two `thumbnail` s (grey levels in [0, 1]).

    0 for a camera that stands still in a still scene; other cars moving in less than half of the
    image leave it near 0; a moving camera changes most pixels.
    """
    if a.shape != b.shape:
        raise ValueError(f"thumbnails differ in shape: {a.shape} vs {b.shape}")
    return float(np.median(np.abs(a - b)))


def moving_runs(motions: Sequence[float], threshold: float, min_length: int = 3) -> list[range]:
    """Splits a frame sequence into runs whose consecutive frames all move.

    The sequence is cut between frames ``i - 1`` and ``i`` wherever ``motions[i] < threshold``;
    runs shorter than ``min_length`` frames are dropped. Within a returned run every pair of
    neighbours moved, and neighbours stay exactly one (strided) frame apart: temporal samples never
    span a removed stop.

    Args:
      motions: ``motions[i]`` = `motion` between frames ``i - 1`` and ``i`` (``motions[0]`` unused).
      threshold: pairs with motion below this are static; 0 keeps every frame in one run.
      min_length: shortest run kept (3 = a target with its -1 and +1 neighbours).

    Returns:
      Ranges of frame positions, in order.
    """
    runs, start = [], 0
    for i in range(1, len(motions) + 1):
        if i == len(motions) or motions[i] < threshold:
            if i - start >= min_length:
                runs.append(range(start, i))
            start = i
    return runs


class VideoWriter:
    """Encodes uint8 RGB frames into a video file (context manager).

    Frames of odd size are padded by one row / column (yuv420p needs even sizes). H.264
    (``libx264``, CRF 18) when the PyAV wheel has the encoder, else MPEG-4 part 2.

    Args:
      path: output file (``.mp4``, ``.mkv``, ``.mov`` or ``.avi``).
      fps: frame rate of the output, frames per second (> 0).
      codec: FFmpeg encoder name; None = ``libx264`` if available, else ``mpeg4``.
      rotation: display rotation stored in the stream, degrees counter-clockwise (0 = none).
    """

    def __init__(self, path: str, fps: float, codec: str | None = None, rotation: int = 0) -> None:
        if not fps > 0 or not math.isfinite(fps):
            raise ValueError(f"video frame rate must be > 0, got {fps}")
        if codec is None:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self.path = path
        self.num_frames = 0
        self._codec = codec
        self._rate = Fraction(fps).limit_denominator(1001)
        self._container = av.open(path, "w")
        self._stream = None
        self._size: tuple[int, int] | None = None
        self._rotation = rotation

    def write(self, image: np.ndarray) -> None:
        """Appends one uint8 ``[H, W, 3]`` RGB frame (every frame must have the first one's size)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        if self._stream is None:
            self._size = (h, w)
            self._stream = self._container.add_stream(self._codec, rate=self._rate)
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
            self._stream.pix_fmt = "yuv420p"
            if self._codec == "libx264":
                self._stream.options = {"crf": "18"}
            else:
                self._stream.options = {"qscale": "3"}
            if self._rotation:
                self._stream.set_display_rotation(self._rotation)
        elif (h, w) != self._size:
            raise ValueError(f"{self.path}: frame size {h}x{w} differs from the first frame's "
                             f"{self._size[0]}x{self._size[1]}")
        if h % 2 or w % 2:
            image = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.num_frames += 1

    def close(self) -> None:
        """Flushes the encoder and closes the file."""
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
