"""``python -m md2tf.convert.imagenet --pth resnet18-f37072fd.pth --out resnet18.npz``.

Turns torchvision ImageNet ResNet weights into a portable ``.npz`` (same keys, NumPy arrays) that
``--encoder_weights`` reads without torch. Get the ``.pth`` from the official torchvision URLs listed in
`md2tf.convert.pretrained.TORCHVISION_URLS`; md2tf never downloads.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def pth_to_npz(pth_path: str, out_path: str) -> int:
    """Writes every array of a ``.pth`` state dict to ``out_path`` (``.npz``); returns the count.

    ``num_batches_tracked`` entries and non-array values are dropped.
    """
    from md2tf.convert.torch_weights import read_pth

    state = read_pth(pth_path)
    arrays = {
        k: v for k, v in state.items()
        if isinstance(v, np.ndarray) and not k.endswith(".num_batches_tracked")
    }
    if not arrays:
        raise ValueError(f"{pth_path} holds no tensors")
    np.savez(out_path, **arrays)
    return len(arrays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m md2tf.convert.imagenet", description=__doc__)
    parser.add_argument("--pth", required=True, help="torchvision resnet*.pth")
    parser.add_argument("--out", required=True, help="output .npz")
    args = parser.parse_args(argv)
    try:
        count = pth_to_npz(args.pth, args.out)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {count} arrays to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
