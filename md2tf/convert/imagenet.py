"""``python -m md2tf.convert.imagenet --pth resnet18-f37072fd.pth --out_dir resnet18.npz``.

Turns torchvision ImageNet ResNet weights into a portable ``.npz`` (same keys, NumPy arrays) that
``--encoder_weights`` reads without torch. Get the ``.pth`` from the official torchvision URLs listed in
`md2tf.convert.pretrained.TORCHVISION_URLS`; md2tf never downloads.
"""

from __future__ import annotations

import numpy as np

from md2tf import flags as md2tf_flags
from md2tf.config import ConfigError, ImagenetConvertConfig


def pth_to_npz(pth_path: str, out_path: str) -> int:
    """Writes every array of a ``.pth`` state dict to ``out_path`` (``.npz``); returns the count.

    ``num_batches_tracked`` entries and non-array values are dropped.
    """
    from md2tf.convert.torch_weights import read_pth  # noqa: PLC0415  (TF only when converting)

    state = read_pth(pth_path)
    arrays = {
        k: v for k, v in state.items()
        if isinstance(v, np.ndarray) and not k.endswith(".num_batches_tracked")
    }
    if not arrays:
        raise ValueError(f"{pth_path} holds no tensors")
    np.savez(out_path, **arrays)
    return len(arrays)


def main(config: ImagenetConvertConfig, flag_values=None) -> int:
    try:
        count = pth_to_npz(config.pth, config.out_dir)
    except ImportError as e:  # torch is an optional extra
        raise ConfigError(str(e)) from e
    print(f"wrote {count} arrays to {config.out_dir}")
    return 0


if __name__ == "__main__":
    md2tf_flags.run_command(main, ImagenetConvertConfig, __doc__)
