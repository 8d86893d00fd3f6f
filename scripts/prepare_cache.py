#!/usr/bin/env python
"""Replaced: md2tf's prepared data is a TFDS dataset now (scripts/prepare_tfds.py)."""

from __future__ import annotations

import sys

MESSAGE = ("error: the TFRecord cache was replaced by TFDS datasets: python scripts/prepare_tfds.py "
           "--name md2tf_kitti/eigen_zhou_640x192 --manual_dir <KITTI raw> --data_dir <tfds dir>, then "
           "train with --dataset=tfds:md2tf_kitti/eigen_zhou_640x192 --data_dir <tfds dir>")


def main(argv: list[str] | None = None) -> int:
    del argv
    print(MESSAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
