"""Inter-frame motion of a video, the measure ``--static_threshold`` of ``--dataset=video`` cuts on.

    python scripts/video_motion.py --video clips/drive.mp4 --stride 3      # your clip
    python scripts/video_motion.py --synthetic /tmp/stop_and_go.mp4 --height 192 --width 640

Prints `md2tf.data.video_io.motion` (median absolute grey difference of 64 px wide thumbnails, grey
levels in [0, 1]) between consecutive frames at the stride. ``--synthetic`` first renders the
stop-and-go clip of `md2tf.data.synthetic.clip` (known speed per frame) to that path and then
summarises the motion of pairs at cruising speed, while braking or accelerating, and standing still:
the numbers of ``docs/data.md``. On your own clip, pick a threshold between the values of the stops
and those of normal driving.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from md2tf.data import video  # noqa: E402
from md2tf.data.synthetic import clip  # noqa: E402


def motions(path: str, stride: int) -> tuple[list[int], list[float]]:
    """Frame indices at the stride and the motion of each vs the previous one (0 for the first)."""
    indices, values, previous = [], [], None
    for index, image in video.read_frames(path, stride=stride, progress=True):
        thumb = video.thumbnail(image)
        values.append(0.0 if previous is None else video.motion(previous, thumb))
        indices.append(index)
        previous = thumb
    return indices, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--video", help="a video file")
    source.add_argument("--synthetic", help="render the synthetic stop-and-go clip to this .mp4 first")
    parser.add_argument("--stride", type=int, default=1, help="frame stride (1 = every frame)")
    parser.add_argument("--height", type=int, default=clip.HEIGHT, help="--synthetic: frame height")
    parser.add_argument("--width", type=int, default=clip.WIDTH, help="--synthetic: frame width")
    parser.add_argument("--noise", type=float, default=0.0,
                        help="--synthetic: std of Gaussian noise added per frame (grey levels), as a sensor's")
    args = parser.parse_args()
    path = args.video or args.synthetic
    if args.synthetic:
        frames = clip.render_clip(args.height, args.width)
        if args.noise:
            noise = np.random.default_rng(0).normal(0.0, args.noise, frames.shape)
            frames = np.clip(np.round(frames + noise), 0, 255).astype(np.uint8)
        clip.write_clip(path, frames)
    indices, values = motions(path, args.stride)
    for index, value in zip(indices[1:], values[1:]):
        print(f"frame {index:6d}  motion {value:.4f}")
    if args.synthetic:
        z = np.concatenate([[0.0], np.cumsum(clip.SPEED)])
        groups = {"standing still": [], "braking / accelerating": [], "cruising": []}
        for (a, b), value in zip(zip(indices, indices[1:]), values[1:]):
            speeds = clip.SPEED[a:b]
            key = ("standing still" if z[b] == z[a] else "cruising" if np.all(speeds == clip.SPEED[0])
                   else "braking / accelerating")
            groups[key].append(value)
        print(f"{args.width}x{args.height}, noise {args.noise:g}, {clip.FPS} fps, stride {args.stride} "
              f"({clip.SPEED[0] * args.stride:.1f} m per pair when cruising):")
        for key, group in groups.items():
            if group:
                print(f"  {key:24s} {len(group):3d} pairs: motion {min(group):.4f} .. {max(group):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
