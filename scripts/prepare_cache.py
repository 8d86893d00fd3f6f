#!/usr/bin/env python
"""Writes a prepared cache (sharded TFRecords of pre-resized frames) for one subset of a dataset.

Example::

    python scripts/prepare_cache.py --dataset kitti --data_dir /data/kitti --split eigen_zhou \\
        --subset train --height 192 --width 640 --out /data/cache/eigen_zhou_640x192_train --num_shards 64

Read it with ``md2tf.data.cache.make_cached_dataset(out, config, batch_size, training)`` using a
``DataConfig`` with the same dataset, size, frame offsets, stereo, intrinsics and image extension.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from md2tf.data import datasets  # noqa: E402  (after the sys.path line: runs from a checkout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="kitti", choices=datasets.names())
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--split", default="eigen_zhou")
    parser.add_argument("--splits_dir", default="")
    parser.add_argument("--subset", default="train", choices=["train", "val", "test"])
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--frame_offsets", default="0,-1,1")
    parser.add_argument("--use_stereo", action="store_true")
    parser.add_argument("--intrinsics", default="fixed", choices=["fixed", "calib"])
    parser.add_argument("--image_ext", default=".jpg", choices=[".jpg", ".png"])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num_shards", type=int, default=16)
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"])
    args = parser.parse_args(argv)

    from md2tf.config import DataConfig
    from md2tf.data import cache

    config = DataConfig(dataset=args.dataset, data_dir=args.data_dir, split=args.split,
                        splits_dir=args.splits_dir, height=args.height, width=args.width,
                        frame_offsets=tuple(int(v) for v in args.frame_offsets.split(",")),
                        use_stereo=args.use_stereo, intrinsics=args.intrinsics,
                        image_ext=args.image_ext)
    start = time.perf_counter()
    cache.prepare_cache(config, args.subset, args.out, num_shards=args.num_shards,
                        image_format=args.format)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
