"""``python -m md2tf.convert --model_dir DIR --out OUT``: official Monodepth2 weights -> md2tf run dir.

The output directory is accepted by ``md2tf.evaluate``, ``md2tf.export`` and ``md2tf.predict``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m md2tf.convert", description=__doc__)
    parser.add_argument("--model_dir", required=True,
                        help="folder with encoder.pth, depth.pth [, pose_encoder.pth, pose.pth]")
    parser.add_argument("--out", required=True, help="md2tf run directory to write")
    parser.add_argument("--height", type=int, default=0, help="override the height in encoder.pth")
    parser.add_argument("--width", type=int, default=0, help="override the width in encoder.pth")
    parser.add_argument("--no_pose", action="store_true", help="skip the pose network")
    args = parser.parse_args(argv)

    from md2tf.convert.torch_checkpoint import convert_monodepth2

    try:
        prefix = convert_monodepth2(
            args.model_dir, args.out, args.height or None, args.width or None, not args.no_pose
        )
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
