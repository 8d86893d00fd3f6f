"""Split files: parsing every format of the official Monodepth2 ``splits/`` directory.

Formats (one sample per line, whitespace separated; blank lines are ignored):

* ``raw`` (KITTI raw; eigen_zhou, eigen_full, eigen, eigen_benchmark, benchmark train/val, and the
  built-in synthetic world): ``<date>/<drive>_sync <frame_index> <l|r>``, e.g.
  ``2011_09_26/2011_09_26_drive_0022_sync 473 r``. The index may be zero-padded
  (``0000000069`` in ``eigen/test_files.txt``).
* ``odom`` (KITTI odometry): ``<sequence> <frame_index> <l|r>``, e.g. ``8 4056 r``.
* ``benchmark`` (KITTI depth-prediction test images): ``<folder> <frame_index>`` without a side,
  e.g. ``image 0``.

The format is detected per file (``kind="auto"``): a first field containing ``/`` is ``raw``, a
first field made of digits is ``odom``, and a two-field line is ``benchmark``. Every line of a file
must have the same format.
"""

from __future__ import annotations

import os
from typing import NamedTuple

SIDES = ("l", "r")
KINDS = ("raw", "odom", "benchmark")
SPLIT_FILE_NAMES = {"train": "train_files.txt", "val": "val_files.txt", "test": "test_files.txt"}


class SplitEntry(NamedTuple):
    """One line of a split file.

    Attributes:
      folder: ``<date>/<drive>_sync`` (raw), the sequence as written (odom, e.g. ``"8"``) or the image
        folder (benchmark, e.g. ``"image"``).
      frame_index: integer frame index of the target image.
      side: ``"l"`` (camera 2, ``image_02``) or ``"r"`` (camera 3, ``image_03``); ``None`` for
        the benchmark test format.
      kind: ``"raw"``, ``"odom"`` or ``"benchmark"``.
      split_file: path of the split file the entry came from (for error messages).
      line_number: 1-based line number in ``split_file``.
    """

    folder: str
    frame_index: int
    side: str | None
    kind: str
    split_file: str = ""
    line_number: int = 0

    @property
    def camera(self) -> int:
        """The KITTI colour camera of ``side``: 2 for ``l`` (left), 3 for ``r``."""
        return 2 if self.side == "l" else 3

    @property
    def where(self) -> str:
        """``"<split_file>:<line_number>"`` for error messages."""
        return f"{self.split_file}:{self.line_number}"


def _line_kind(fields: list[str]) -> str | None:
    if len(fields) == 2:
        return "benchmark"
    if len(fields) != 3:
        return None
    if "/" in fields[0]:
        return "raw"
    if fields[0].isdigit():
        return "odom"
    return None


def parse_split_line(line: str, kind: str = "auto", split_file: str = "<string>",
                     line_number: int = 1) -> SplitEntry:
    """Parses one non-blank split line.

    Args:
      line: the text of the line, e.g. ``"2011_09_26/2011_09_26_drive_0022_sync 473 r"``.
      kind: ``"auto"``, ``"raw"``, ``"odom"`` or ``"benchmark"``.
      split_file: file name used in error messages.
      line_number: 1-based line number used in error messages.

    Returns:
      The parsed `SplitEntry`.

    Raises:
      ValueError: naming ``split_file:line_number`` and the expected format if the line is malformed.
    """
    if kind != "auto" and kind not in KINDS:
        raise ValueError(f"kind must be 'auto' or one of {KINDS}, got {kind!r}")
    fields = line.split()
    detected = _line_kind(fields)
    where = f"{split_file}:{line_number}"
    expected = {
        "raw": "'<date>/<drive>_sync <frame_index> <l|r>'",
        "odom": "'<sequence> <frame_index> <l|r>'",
        "benchmark": "'<folder> <frame_index>'",
        "auto": "'<date>/<drive>_sync <frame> <l|r>', '<sequence> <frame> <l|r>' or '<folder> <frame>'",
    }[kind]
    if detected is None or (kind != "auto" and detected != kind):
        raise ValueError(f"{where}: malformed split line {line.strip()!r}; expected {expected}")
    folder, index_text = fields[0], fields[1]
    if not index_text.isdigit():
        raise ValueError(f"{where}: frame index must be a non-negative integer, got {index_text!r} "
                         f"in {line.strip()!r}")
    side = None
    if detected != "benchmark":
        side = fields[2]
        if side not in SIDES:
            raise ValueError(f"{where}: side must be 'l' or 'r', got {side!r} in {line.strip()!r}")
    return SplitEntry(folder, int(index_text), side, detected, split_file, line_number)


def read_split(path: str | os.PathLike, kind: str = "auto") -> list[SplitEntry]:
    """Reads a split file in any of the official formats (see the module docstring).

    Args:
      path: the split file, e.g. ``<splits_dir>/eigen_zhou/train_files.txt``.
      kind: ``"auto"`` (detected from the first line, then enforced for all lines) or a fixed kind.

    Returns:
      One `SplitEntry` per non-blank line, in file order.

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: naming the file and line number for a malformed line, a line whose format differs
        from the first line's, or an empty file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"split file not found: {path}")
    entries: list[SplitEntry] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            entry = parse_split_line(line, kind, path, number)
            if kind == "auto":
                kind = entry.kind  # the first line fixes the format of the whole file
            entries.append(entry)
    if not entries:
        raise ValueError(f"split file {path} has no entries")
    return entries


def splits_dir(data_dir: str, splits_dir_option: str = "") -> str:
    """The directory holding split folders: ``splits_dir_option`` or ``<data_dir>/splits``."""
    return splits_dir_option or os.path.join(data_dir, "splits")


def split_file_path(splits_root: str, split_name: str, subset: str) -> str:
    """``<splits_root>/<split_name>/<subset>_files.txt``.

    Args:
      splits_root: directory of split folders (see `splits_dir`).
      split_name: e.g. ``"eigen_zhou"``, ``"synthetic"``, ``"odom"``.
      subset: ``"train"``, ``"val"`` or ``"test"``.

    Raises:
      ValueError: for an unknown subset.
    """
    if subset not in SPLIT_FILE_NAMES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILE_NAMES)}, got {subset!r}")
    return os.path.join(splits_root, split_name, SPLIT_FILE_NAMES[subset])
