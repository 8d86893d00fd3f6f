"""Metric depth at prediction time from the camera's known height above a flat road.

A monocular model's depth has one unknown scale. ``md2tf.predict --camera_height=H`` fits the ground
plane to each frame's predicted depth (`md2tf.geometry.ground`, after Xue et al., IROS 2020) and
multiplies the depth by ``H / fitted height``, so it comes out in metres:

* Still images: each on its own. An image with too little visible ground keeps its depth unscaled,
  and the run says so.
* A video or an animated GIF: one scale per frame is noisy (cars passing, bumps), and the camera's
  height does not change, so the scale is smoothed over time (`ScaleSmoother`): the median of the
  log-scales of the frames with enough ground within a centred window of `SMOOTHING_WINDOW` frames
  (4 before, 4 after). A frame without enough ground takes that median of its neighbours; where
  none of them has ground either, the last smoothed scale before it (at the start of a video: the
  first one after it).

Host-side NumPy only; never part of an exported graph.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from md2tf.geometry import ground

#: Frames in the centred window of the running median of a video's per-frame log-scales: 9 frames
#: (under a second at 10-30 fps) outvote a few frames with a car in front of the camera, and are
#: short enough to follow a change of the scene's apparent scale.
SMOOTHING_WINDOW = 9
#: At the start of a video, frames without a scale yet wait (in memory) for the first frame with
#: enough ground, at most this many; beyond that the oldest is written unscaled.
MAX_HELD_FRAMES = 64
#: The ground is fitted on a map at most about this many pixels wide (every n-th pixel of larger
#: frames, with K scaled to match): ample points for a plane, and a fast fit per video frame.
FIT_WIDTH = 640


@dataclass(frozen=True)
class CameraHeight:
    """What `frame_scale` needs: the height and the camera.

    Attributes:
      height_m: the camera centre's height above the road, metres (> 0).
      intrinsics: ``[3, 3]`` normalised K of the input camera (fx, cx / width; fy, cy / height).
    """

    height_m: float
    intrinsics: np.ndarray

    def __post_init__(self) -> None:
        if not (math.isfinite(self.height_m) and self.height_m > 0):
            raise ValueError(f"--camera_height must be a finite number > 0 metres, got {self.height_m}")
        if np.shape(self.intrinsics) != (3, 3):
            raise ValueError(f"intrinsics must have shape [3, 3], got {list(np.shape(self.intrinsics))}")


def frame_scale(depth: np.ndarray, camera: CameraHeight) -> tuple[float, ground.GroundFit]:
    """The camera-height scale of one frame's depth.

    Args:
      depth: ``[H, W]`` predicted depth (any units) at the frame's size.
      camera: the camera's height and normalised intrinsics.

    Returns:
      ``(scale, fit)``: ``depth * scale`` is in metres; NaN when the frame shows too little ground
      (`ground.GroundFit.reliable`).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must have shape [H, W], got {list(depth.shape)}")
    step = max(1, round(depth.shape[1] / FIT_WIDTH))
    sub = depth[::step, ::step]
    # Pixel centres u = 0, step, 2 step, ... become 0, 1, 2, ...: K's first two rows divided by step.
    K = ground.intrinsics_in_pixels(camera.intrinsics, *depth.shape)
    K[:2] /= step
    return ground.camera_height_scale(sub, K, camera.height_m)


class ScaleSmoother:
    """Running median of a sequence's per-frame log-scales over a centred window (module docstring).

    Frames go in in order with their own scale (NaN: too little ground) and come out in the same
    order, ``window // 2`` frames later (the window's future half), with the scale to apply::

        smoother = ScaleSmoother()
        for frame in frames:
            for item, scale, own in smoother.push(frame, frame_scale(...)[0]):
                write(item, scale)
        for item, scale, own in smoother.finish():
            write(item, scale)

    Args:
      window: odd number of frames in the centred window.
      max_held: frames that may wait at the start for a first scale (`MAX_HELD_FRAMES`).
    """

    def __init__(self, window: int = SMOOTHING_WINDOW, max_held: int = MAX_HELD_FRAMES) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be an odd number >= 1, got {window}")
        if max_held < 0:
            raise ValueError(f"max_held must be >= 0, got {max_held}")
        self._half, self._max_held = window // 2, max_held
        self._logs: list[float] = []  # per frame pushed: log-scale, NaN without enough ground
        self._pending: collections.deque[tuple[int, Any]] = collections.deque()
        self._last = math.nan  # the last smoothed log-scale given out

    def push(self, item: Any, scale: float) -> list[tuple[Any, float, bool]]:
        """Adds the next frame; returns the frames whose scale is now known.

        Args:
          item: anything (the frame and its outputs), returned as given.
          scale: the frame's own camera-height scale; NaN (or <= 0) when it had too little ground.

        Returns:
          ``[(item, scale, own)]`` in input order: the smoothed scale to apply (NaN: no frame had
          enough ground, leave unscaled) and whether the frame's own fit was reliable.
        """
        self._logs.append(math.log(scale) if math.isfinite(scale) and scale > 0 else math.nan)
        self._pending.append((len(self._logs) - 1, item))
        return self._release(final=False)

    def finish(self) -> list[tuple[Any, float, bool]]:
        """The frames still waiting, at the end of the sequence (their windows end with it)."""
        return self._release(final=True)

    def _window(self, index: int) -> float:
        lo, hi = max(0, index - self._half), index + self._half + 1
        values = [v for v in self._logs[lo:hi] if not math.isnan(v)]
        return float(np.median(values)) if values else math.nan

    def _complete(self, index: int, final: bool) -> bool:
        return final or index + self._half < len(self._logs)

    def _release(self, final: bool) -> list[tuple[Any, float, bool]]:
        out = []
        while self._pending:
            index, item = self._pending[0]
            if not self._complete(index, final):
                break
            value = self._window(index)
            if math.isnan(value):
                value = self._last
            if math.isnan(value):  # no scale yet: the first one after this frame, if known
                value = next((v for i, _ in self._pending if self._complete(i, final)
                              and not math.isnan(v := self._window(i))), math.nan)
                if math.isnan(value) and not final and len(self._pending) <= self._max_held + self._half:
                    break  # wait for a frame with ground
            self._pending.popleft()
            self._last = value if not math.isnan(value) else self._last
            scale = math.exp(value) if not math.isnan(value) else math.nan
            out.append((item, scale, not math.isnan(self._logs[index])))
        return out
