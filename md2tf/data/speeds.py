"""Distances travelled between frames, from speeds: the supervision of the velocity loss.

Guizilini et al., "3D Packing for Self-Supervised Monocular Depth Estimation" (PackNet-SfM, CVPR
2020), Sec. 3.3, make a monocular model metric with the distance the camera travelled between two
frames: a vehicle's speed (GPS, OBD/CAN, an IMU's velocity) integrated over the time between them.
This module reads speeds and integrates them; `md2tf.losses.velocity` is the loss.

Sources:

* ``speeds.csv``: two columns, time in seconds and speed in metres per second, one row per
  measurement, times increasing (an optional header line ``time,speed``). Speeds are interpolated
  linearly between rows; frames outside the measured time span get no distance (NaN).
* KITTI raw ``oxts``: ``<drive>/oxts/timestamps.txt`` (``YYYY-MM-DD hh:mm:ss.fffffffff``, one line
  per synchronised frame) and ``<drive>/oxts/data/<index:010d>.txt`` (30 numbers; the ninth, ``vf``,
  is the forward velocity in m/s).

A distance is the integral of the speed, so a stop between two frames is accounted for exactly and
a changing speed to the accuracy of the linear interpolation.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Sequence

import numpy as np

#: Column of the forward velocity ``vf`` (m/s) in a KITTI oxts line (lat, lon, alt, roll, pitch,
#: yaw, vn, ve, vf, ...).
OXTS_FORWARD_VELOCITY = 8
OXTS_VALUES = 30


class SpeedProfile:
    """A speed as a function of time: piecewise linear through ``(times, speeds)``.

    Args:
      times: ``[N]`` seconds, strictly increasing, N >= 2.
      speeds: ``[N]`` metres per second, finite and >= 0.
      source: where the values came from (for error messages).
    """

    def __init__(self, times: Sequence[float], speeds: Sequence[float], source: str = "speeds") -> None:
        self.times = np.asarray(times, np.float64)
        self.speeds = np.asarray(speeds, np.float64)
        if self.times.ndim != 1 or self.times.shape != self.speeds.shape or len(self.times) < 2:
            raise ValueError(f"{source}: need at least two (time, speed) rows, got {len(self.times)}")
        # Cumulative distance at each row (trapezoids of the linear interpolation).
        steps = np.diff(self.times) * (self.speeds[1:] + self.speeds[:-1]) / 2.0
        self._distance = np.concatenate([[0.0], np.cumsum(steps)])
        self.source = source

    def distance_at(self, t: np.ndarray | float) -> np.ndarray:
        """Distance travelled from the first row to time ``t`` (metres); NaN outside the rows' span."""
        t = np.asarray(t, np.float64)
        i = np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2)
        t0, v0 = self.times[i], self.speeds[i]
        slope = (self.speeds[i + 1] - v0) / (self.times[i + 1] - t0)
        dt = t - t0
        out = self._distance[i] + v0 * dt + 0.5 * slope * dt * dt
        return np.where((t >= self.times[0]) & (t <= self.times[-1]), out, np.nan)

    def distance_between(self, t0: np.ndarray | float, t1: np.ndarray | float) -> np.ndarray:
        """``|distance_at(t1) - distance_at(t0)|``: metres travelled between two times (NaN outside)."""
        return np.abs(self.distance_at(t1) - self.distance_at(t0))


def read_speeds_csv(path: str) -> SpeedProfile:
    """Reads ``speeds.csv`` (module docstring).

    Raises:
      ValueError: one line naming the file and the line: not two numeric columns, a NaN or infinite
        value, a negative speed, times that do not increase, fewer than two rows.
    """
    times, speeds = [], []
    header_allowed = True
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (expected 'time (s), speed (m/s)' rows)") from None
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        first, header_allowed = header_allowed, False
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected two columns 'time (s), speed (m/s)', got "
                             f"{len(parts)}: {text[:80]!r}")
        try:
            t, v = float(parts[0]), float(parts[1])
        except ValueError:
            if first:  # a header line such as "time,speed"
                continue
            raise ValueError(f"{path}:{number}: not a number: {text[:80]!r}") from None
        if not (math.isfinite(t) and math.isfinite(v)):
            raise ValueError(f"{path}:{number}: time and speed must be finite, got {text[:80]!r}")
        if v < 0:
            raise ValueError(f"{path}:{number}: negative speed {v:g} m/s (speeds are magnitudes)")
        if times and t <= times[-1]:
            raise ValueError(f"{path}:{number}: times must increase, got {t:g} s after {times[-1]:g} s")
        times.append(t)
        speeds.append(v)
    if len(times) < 2:
        raise ValueError(f"{path}: need at least two (time, speed) rows, got {len(times)}")
    return SpeedProfile(times, speeds, source=path)


def _parse_timestamp(text: str) -> float:
    """Seconds since the epoch of a KITTI timestamp ``YYYY-MM-DD hh:mm:ss.fffffffff`` (nanoseconds)."""
    day, _, clock = text.strip().partition(" ")
    whole, _, fraction = clock.partition(".")
    base = datetime.datetime.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S")
    base = base.replace(tzinfo=datetime.timezone.utc)
    return base.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def read_timestamps(path: str) -> np.ndarray:
    """``[N]`` seconds of a KITTI ``timestamps.txt``, one per line.

    Raises:
      ValueError: naming the file and line of a malformed timestamp, or times that do not increase.
    """
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    times = []
    for number, line in enumerate(lines, start=1):
        try:
            times.append(_parse_timestamp(line))
        except ValueError:
            raise ValueError(f"{path}:{number}: not a timestamp 'YYYY-MM-DD hh:mm:ss.f': {line[:40]!r}") from None
        if len(times) > 1 and times[-1] <= times[-2]:
            raise ValueError(f"{path}:{number}: timestamps must increase")
    return np.asarray(times, np.float64)


def read_oxts_speeds(drive_dir: str) -> tuple[np.ndarray, SpeedProfile]:
    """The frame times and forward speed of a KITTI raw drive (module docstring).

    Args:
      drive_dir: ``<date>/<date>_drive_<nnnn>_sync``.

    Returns:
      ``(times [N] seconds of the N synchronised frames, their speed profile |vf|)``.

    Raises:
      ValueError: a missing or malformed oxts file (naming it), or a frame count that differs from the
        timestamps.
    """
    oxts = os.path.join(drive_dir, "oxts")
    stamps = os.path.join(oxts, "timestamps.txt")
    if not os.path.isfile(stamps):
        raise ValueError(f"no {stamps} (KITTI raw oxts, needed for --speed_source=gt)")
    times = read_timestamps(stamps)
    speeds = []
    for index in range(len(times)):
        path = os.path.join(oxts, "data", f"{index:010d}.txt")
        try:
            with open(path, encoding="utf-8") as f:
                values = f.read().split()
        except OSError:
            raise ValueError(f"missing oxts file {path} ({len(times)} timestamps in {stamps})") from None
        try:
            vf = float(values[OXTS_FORWARD_VELOCITY]) if len(values) == OXTS_VALUES else math.nan
        except ValueError:
            vf = math.nan
        if not math.isfinite(vf):
            raise ValueError(f"{path}: expected {OXTS_VALUES} numbers with a finite forward velocity "
                             f"vf (the {OXTS_FORWARD_VELOCITY + 1}th), got {len(values)} values")
        speeds.append(abs(vf))
    return times, SpeedProfile(times, speeds, source=oxts)


def frame_distances(profile: SpeedProfile, frame_times: np.ndarray, index: int,
                    offsets: Sequence[int]) -> np.ndarray:
    """float32 ``[T]``: metres travelled between frame ``index`` and each ``index + offset`` (NaN
    where a frame lies outside the list or the profile's time span)."""
    out = np.full(len(offsets), np.nan, np.float32)
    for k, offset in enumerate(offsets):
        j = index + offset
        if 0 <= index < len(frame_times) and 0 <= j < len(frame_times):
            out[k] = profile.distance_between(frame_times[index], frame_times[j])
    return out
