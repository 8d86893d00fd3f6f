"""Split-file parsing: all official formats, line-numbered errors, the real split files if present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from md2tf.data import splits

# The official split files (third-party data, never committed) lie beside the checkout in CI.
SHARED_SPLITS = os.environ.get(
    "MD2TF_KITTI_SPLITS", str(Path(__file__).resolve().parents[3] / "shared" / "kitti_splits")
)


def _write(tmp_path, text, name="train_files.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_raw_line():
    entry = splits.parse_split_line("2011_09_26/2011_09_26_drive_0022_sync 473 r")
    assert entry.folder == "2011_09_26/2011_09_26_drive_0022_sync"
    assert (entry.frame_index, entry.side, entry.kind) == (473, "r", "raw")


def test_zero_padded_index():
    entry = splits.parse_split_line("2011_09_26/2011_09_26_drive_0002_sync 0000000069 l")
    assert (entry.frame_index, entry.side) == (69, "l")


def test_odom_and_benchmark_lines():
    odom = splits.parse_split_line("8 4056 r")
    assert (odom.folder, odom.frame_index, odom.side, odom.kind) == ("8", 4056, "r", "odom")
    bench = splits.parse_split_line("image 12")
    assert (bench.folder, bench.frame_index, bench.side, bench.kind) == ("image", 12, None, "benchmark")


def test_read_split_skips_blank_lines_and_numbers_lines(tmp_path):
    path = _write(tmp_path, "a/b_sync 1 l\n\na/b_sync 2 r\n")
    entries = splits.read_split(path)
    assert [e.frame_index for e in entries] == [1, 2]
    assert [e.line_number for e in entries] == [1, 3]
    assert entries[1].where == f"{path}:3"


@pytest.mark.parametrize("bad, message", [
    ("a/b_sync 1 x", r"side must be 'l' or 'r'"),
    ("a/b_sync one l", r"frame index must be a non-negative integer"),
    ("a/b_sync 1 l extra", r"malformed split line"),
    ("justone", r"malformed split line"),
    ("a/b_sync -1 l", r"frame index"),
])
def test_malformed_line_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, f"a/b_sync 1 l\n{bad}\n")
    with pytest.raises(ValueError, match=message) as info:
        splits.read_split(path)
    assert f"{path}:2" in str(info.value)


def test_mixed_formats_rejected(tmp_path):
    path = _write(tmp_path, "a/b_sync 1 l\n8 5 r\n")
    with pytest.raises(ValueError, match=rf"{path}:2: malformed.*<date>/<drive>_sync"):
        splits.read_split(path)


def test_forced_kind(tmp_path):
    path = _write(tmp_path, "a/b_sync 1 l\n")
    with pytest.raises(ValueError, match=r":1: malformed.*<sequence>"):
        splits.read_split(path, kind="odom")
    with pytest.raises(ValueError, match="kind must be"):
        splits.read_split(path, kind="nope")


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="has no entries"):
        splits.read_split(_write(tmp_path, "\n\n"))
    with pytest.raises(FileNotFoundError, match="split file not found"):
        splits.read_split(str(tmp_path / "nope.txt"))


def test_split_file_path():
    assert splits.split_file_path("/s", "eigen_zhou", "val") == "/s/eigen_zhou/val_files.txt"
    assert splits.splits_dir("/data") == os.path.join("/data", "splits")
    assert splits.splits_dir("/data", "/elsewhere") == "/elsewhere"
    with pytest.raises(ValueError, match="split must be one of"):
        splits.split_file_path("/s", "eigen_zhou", "training")


# Line counts and formats of the official split files; skipped where the files are absent.
OFFICIAL = [
    ("eigen_zhou/train_files.txt", 39810, "raw"),
    ("eigen_zhou/val_files.txt", 4424, "raw"),
    ("eigen_full/val_files.txt", 1776, "raw"),
    ("eigen/test_files.txt", 697, "raw"),
    ("eigen_benchmark/test_files.txt", 652, "raw"),
    ("benchmark/val_files.txt", 6060, "raw"),
    ("benchmark/test_files.txt", 500, "benchmark"),
    ("odom/test_files_09.txt", 1590, "odom"),
    ("odom/val_files.txt", 4075, "odom"),
]


@pytest.mark.parametrize("name, count, kind", OFFICIAL)
def test_official_split_files(name, count, kind):
    path = os.path.join(SHARED_SPLITS, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} not available")
    entries = splits.read_split(path)
    assert len(entries) == count
    assert {e.kind for e in entries} == {kind}
    if name.startswith("eigen/"):
        assert {e.side for e in entries} == {"l"}
