"""``python -m md2tf.data.synthetic --out_dir DIR [--drives N --frames M --height H --width W ...]``.

Renders the built-in synthetic driving world in the KITTI raw layout (stereo images, calibration,
dense depth, lidar, poses and split files). ``python -m md2tf.train`` does this by itself on first use;
this command is for worlds of other sizes or seeds. The world's flags are `WorldConfig`'s fields, the
same settings as training's ``--synthetic_<field>``; an open size or format (0, "") is KITTI's
375x1242 in PNG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from md2tf import flags as md2tf_flags
from md2tf.config import ConfigBase, ConfigError, WorldConfig, setting
from md2tf.data.synthetic import writer


@dataclass(frozen=True)
class GenerateConfig(ConfigBase):
    """Where and how to write a world; the world itself is `WorldConfig`."""

    out_dir: str = setting("", "Output root (KITTI raw layout).", aliases=("out",))
    workers: int = setting(1, "Processes (one drive each).")
    force: bool = setting(False, "Regenerate even if a complete world with these parameters exists.")
    world: WorldConfig = field(default_factory=WorldConfig)

    def validate(self) -> None:
        if not self.out_dir:
            raise ConfigError("--out_dir is required (output root of the world)")


def main(config: GenerateConfig, flag_values=None) -> int:
    start = time.perf_counter()
    if config.force:
        writer.generate_world(config.out_dir, config.world, progress=True, workers=config.workers)
    else:
        writer.ensure_world(config.out_dir, config.world, progress=True, overwrite=True,
                            workers=config.workers)
    elapsed = time.perf_counter() - start
    n = config.world.drives * config.world.frames
    print(f"{config.out_dir}: {n} stereo frames in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.2f} frames/s)")
    return 0


if __name__ == "__main__":
    md2tf_flags.run_command(main, GenerateConfig, __doc__)
