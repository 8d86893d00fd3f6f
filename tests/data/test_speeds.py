"""Speeds to distances: integration against closed forms, speeds.csv and KITTI oxts readers, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from md2tf.data import speeds


def _csv(tmp_path, text: str) -> str:
    path = str(tmp_path / "speeds.csv")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_distance_integrates_the_interpolated_speed():
    """Linear speed v(t) = 2 t on [0, 4]: distance from a to b is b^2 - a^2; a stop adds nothing."""
    profile = speeds.SpeedProfile([0.0, 4.0, 5.0, 6.0], [0.0, 8.0, 0.0, 0.0])
    assert profile.distance_between(1.0, 3.0) == pytest.approx(8.0)
    assert profile.distance_between(3.0, 1.0) == pytest.approx(8.0)
    assert profile.distance_between(4.0, 5.0) == pytest.approx(4.0)  # braking 8 -> 0 in 1 s
    assert profile.distance_between(5.0, 6.0) == pytest.approx(0.0)
    assert np.isnan(profile.distance_between(5.5, 6.5))  # after the last measurement


def test_speeds_csv_with_header_interpolated_to_frame_times(tmp_path):
    profile = speeds.read_speeds_csv(_csv(tmp_path, "time,speed\n0,10\n1,10\n2,12\n"))
    frame_times = np.arange(0, 2.01, 0.1)  # 10 fps
    d = speeds.frame_distances(profile, frame_times, 15, (-1, 1, 10))
    # v = 10 + 2 (t - 1) on [1, 2]: frames 14, 15, 16 at 10.8, 11.0, 11.2 m/s, trapezoids of 0.1 s
    np.testing.assert_allclose(d[:2], [0.1 * (10.8 + 11.0) / 2, 0.1 * (11.0 + 11.2) / 2], rtol=1e-5)
    # v = 10 + 2 (t - 1) for t in [1, 2]: 1.4 -> 1.6 s gives 0.2 * (10.8 + 11.2) / 2
    np.testing.assert_allclose(speeds.frame_distances(profile, frame_times, 14, (2,)), [2.2], rtol=1e-6)
    assert np.isnan(d[2])  # frame 25 does not exist


@pytest.mark.parametrize("text, match", [
    ("0,1,2\n1,1,2\n", "expected two columns"),
    ("0,1\n1,nan\n", "must be finite"),
    ("0,1\n1,-2\n", "negative speed -2"),
    ("0,1\n1,1\n1,1\n", "times must increase"),
    ("0,1\nx,1\n", "not a number"),
    ("time,speed\n0,1\n", "at least two"),
])
def test_bad_speeds_csv_is_one_line_naming_the_file_and_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match) as error:
        speeds.read_speeds_csv(_csv(tmp_path, text))
    assert "speeds.csv" in str(error.value) and "\n" not in str(error.value)


def _oxts_drive(root, vf: list[float], dt: float = 0.1) -> str:
    drive = os.path.join(root, "2011_09_26", "2011_09_26_drive_0001_sync")
    os.makedirs(os.path.join(drive, "oxts", "data"))
    with open(os.path.join(drive, "oxts", "timestamps.txt"), "w") as f:
        for i in range(len(vf)):
            seconds = 25.0 + i * dt
            f.write(f"2011-09-26 13:02:{seconds:012.9f}\n")
    for i, v in enumerate(vf):
        values = [49.0, 8.4, 112.0, 0.02, 0.01, 1.2, 3.0, 4.0, v] + [0.5] * 21
        with open(os.path.join(drive, "oxts", "data", f"{i:010d}.txt"), "w") as f:
            f.write(" ".join(f"{x:.6f}" for x in values) + "\n")
    return drive


def test_oxts_forward_velocity_gives_frame_distances(tmp_path):
    drive = _oxts_drive(str(tmp_path), [10.0, 10.0, 12.0, -12.0])
    times, profile = speeds.read_oxts_speeds(drive)
    np.testing.assert_allclose(np.diff(times), 0.1, atol=1e-6)
    np.testing.assert_allclose(speeds.frame_distances(profile, times, 1, (-1, 1)), [1.0, 1.1], rtol=1e-5)
    np.testing.assert_allclose(speeds.frame_distances(profile, times, 2, (1,)), [1.2], rtol=1e-5)  # |vf|


def test_oxts_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="timestamps.txt"):
        speeds.read_oxts_speeds(str(tmp_path))
    drive = _oxts_drive(str(tmp_path), [1.0, 2.0])
    with open(os.path.join(drive, "oxts", "data", "0000000001.txt"), "w") as f:
        f.write("1 2 3\n")
    with pytest.raises(ValueError, match="0000000001.txt: expected 30 numbers"):
        speeds.read_oxts_speeds(drive)


def test_binary_speeds_file_is_one_line(tmp_path):
    path = tmp_path / "speeds.csv"
    path.write_bytes(b"\xff\xfe\x00bin")
    with pytest.raises(ValueError, match="speeds.csv: not a text file"):
        speeds.read_speeds_csv(str(path))
