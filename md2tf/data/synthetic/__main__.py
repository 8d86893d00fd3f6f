"""``python -m md2tf.data.synthetic --out DIR [--drives N --frames M --height --width --seed --ext]``."""

from __future__ import annotations

import argparse
import sys
import time

from md2tf.data.synthetic import world, writer


def main(argv: list[str] | None = None) -> int:
    defaults = world.WorldConfig()
    p = argparse.ArgumentParser(prog="python -m md2tf.data.synthetic", description=__doc__)
    p.add_argument("--out", required=True, help="output root (KITTI raw layout)")
    p.add_argument("--drives", type=int, default=defaults.drives)
    p.add_argument("--frames", type=int, default=defaults.frames, help="frames per drive")
    p.add_argument("--height", type=int, default=defaults.height)
    p.add_argument("--width", type=int, default=defaults.width)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--ext", choices=("png", "jpg"), default=defaults.ext)
    p.add_argument("--no_lidar", action="store_true", help="skip velodyne_points")
    p.add_argument("--no_odometry", action="store_true", help="skip the odometry view and split")
    p.add_argument("--workers", type=int, default=1, help="processes (one drive each)")
    p.add_argument("--force", action="store_true", help="regenerate even if a complete world exists")
    args = p.parse_args(argv)
    try:
        config = world.WorldConfig(drives=args.drives, frames=args.frames, height=args.height,
                                   width=args.width, seed=args.seed, ext=args.ext,
                                   lidar=not args.no_lidar, odometry=not args.no_odometry)
    except ValueError as e:
        p.error(str(e))
    start = time.perf_counter()
    if args.force:
        writer.generate_world(args.out, config, progress=True, workers=args.workers)
    else:
        writer.ensure_world(args.out, progress=True, overwrite=True, workers=args.workers,
                            **config.to_dict())
    elapsed = time.perf_counter() - start
    n = config.drives * config.frames
    print(f"{args.out}: {n} stereo frames in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.2f} frames/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
