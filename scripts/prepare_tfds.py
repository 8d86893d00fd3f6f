#!/usr/bin/env python
"""Prepares an md2tf TFDS dataset (frames pre-resized, K, stereo side, GT depth) for training.

Examples::

    python scripts/prepare_tfds.py --name md2tf_kitti/eigen_zhou_640x192 --manual_dir kitti_data \\
        --data_dir tfds_data --num_shards 64
    python scripts/prepare_tfds.py --name md2tf_synthetic/320x96 --data_dir tfds_data
    python scripts/prepare_tfds.py --name md2tf_folder/640x192 --manual_dir my_video --data_dir tfds_data
    python -m md2tf.train --flagfile=configs/mono.flags --dataset=tfds:md2tf_kitti/eigen_zhou_640x192 \\
        --data_dir tfds_data --run_dir runs/mono

``--list`` shows every builder and config (md2tf.tfds.builders). ``tfds.load(name, data_dir=...)``
reads the result after ``import md2tf.tfds.builders``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="", help="<builder>/<config>, e.g. md2tf_kitti/eigen_zhou_640x192")
    parser.add_argument("--data_dir", default="", help="TFDS data directory (written)")
    parser.add_argument("--manual_dir", default="",
                        help="the source data: KITTI raw root, KITTI odometry root or a frame folder "
                             "(not for md2tf_synthetic, which is rendered)")
    parser.add_argument("--num_shards", type=int, default=0,
                        help="files per split (0 = TFDS's choice): at least the number of training workers, "
                             "at most the smallest split's examples")
    parser.add_argument("--image_ext", default="", choices=["", ".jpg", ".png"],
                        help="extension of the source frames when it is not the config's (.jpg for KITTI)")
    parser.add_argument("--list", action="store_true", help="list the builders and configs and exit")
    args = parser.parse_args(argv)
    from md2tf import tf_start

    tf_start.start_tensorflow()  # as md2tf's commands: quiet, oneDNN kernels
    import tensorflow_datasets as tfds

    from md2tf.tfds import builders

    if args.list:
        for cls in (builders.Md2tfKitti, builders.Md2tfKittiOdom, builders.Md2tfSynthetic,
                    builders.Md2tfFolder):
            for config in cls.BUILDER_CONFIGS:
                print(f"{cls.name}/{config.name}: {config.description}")
        return 0
    if not args.name or not args.data_dir:
        print("error: --name and --data_dir are required (--list shows the names)", file=sys.stderr)
        return 2
    if args.num_shards < 0:
        print(f"error: --num_shards must be >= 0, got {args.num_shards}", file=sys.stderr)
        return 2
    overrides = {"image_ext": args.image_ext} if args.image_ext else {}
    try:
        builder = builders.get_builder(args.name, args.data_dir, **overrides)
        if builder.MANUAL_DOWNLOAD_INSTRUCTIONS and not Path(args.manual_dir or "-").is_dir():
            raise ValueError(f"--manual_dir={args.manual_dir!r} is not a directory: "
                             f"{builder.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        start = time.perf_counter()
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=args.manual_dir or None, num_shards=args.num_shards or None))
    except (ValueError, FileNotFoundError, AssertionError) as error:  # TFDS asserts, e.g. too many shards
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{k} {v.num_examples}" for k, v in builder.info.splits.items())
    print(f"prepared {builder.data_dir} ({splits}) in {time.perf_counter() - start:.1f} s; train with "
          f"--dataset=tfds:{args.name.removeprefix('tfds:')} --data_dir={args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
