"""``python -m md2tf.convert --model_dir DIR --out_dir OUT``: official Monodepth2 weights -> md2tf run dir.

The output directory is accepted by ``md2tf.evaluate``, ``md2tf.export`` and ``md2tf.predict``.
"""

from __future__ import annotations

from md2tf import flags as md2tf_flags
from md2tf.config import ConfigError, ConvertConfig


def main(config: ConvertConfig, flag_values=None) -> int:
    from md2tf.convert.torch_checkpoint import convert_monodepth2  # noqa: PLC0415  (torch, optional)

    try:
        prefix = convert_monodepth2(config.model_dir, config.out_dir, config.height or None,
                                    config.width or None, not config.no_pose)
    except ImportError as e:  # torch is an optional extra
        raise ConfigError(str(e)) from e
    print(f"wrote {prefix}")
    return 0


if __name__ == "__main__":
    md2tf_flags.run_command(main, ConvertConfig, __doc__)
