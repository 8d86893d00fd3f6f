"""``--dataset=synthetic``: the built-in driving world, rendered into ``data_dir`` on first use.

The world is written in the KITTI raw layout (see ``md2tf/data/synthetic/README.md``), so samples are
listed from its split files exactly as for KITTI (split ``synthetic``). Its parameters are
``DataConfig.synthetic`` (a `md2tf.config.WorldConfig`, flags ``--synthetic_<field>``); an open image
size and format follow the network input size and ``image_ext`` (`rendered_world`), so
``config.json`` alone regenerates the same world. Dense GT depth exists for every frame:
training-time metrics and evaluation use it.
Camera poses (camera 02, metres, ``<drive>/poses.txt``) exist for every frame too: ``--pose_source=gt``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from md2tf.config import DataConfig, WorldConfig
from md2tf.data import synthetic
from md2tf.data.datasets.base import SplitFileDataset
from md2tf.data.splits import SplitEntry

logger = logging.getLogger(__name__)


def rendered_world(config: DataConfig) -> WorldConfig:
    """The world ``config`` trains on: ``config.synthetic`` sized by the network input and in
    ``image_ext`` where it leaves the size or format open."""
    return config.synthetic.resolved(config.height, config.width, config.image_ext)


@dataclass(frozen=True)
class SyntheticWorld(SplitFileDataset):
    """`SplitFileDataset` whose data is generated, not downloaded."""

    def check_layout(self, config: DataConfig) -> None:
        """Always fine: a missing ``data_dir`` is where the world will be written (empty = the
        config's default folder)."""

    def rig_baseline_m(self, config: DataConfig) -> float | None:
        """See `md2tf.data.datasets.base.Dataset.rig_baseline_m`: the world's (``--synthetic_baseline``)."""
        return config.synthetic.baseline

    def usable_entries(self, config: DataConfig, entries: list[SplitEntry]) -> list[SplitEntry]:
        """The split lines whose temporal sources lie inside their drive.

        The split files keep frames with both +-1 neighbours; wider ``frame_offsets`` (e.g. 0,-2,2)
        drop the frames near the drive ends whose sources do not exist, with a log line.
        """
        offsets = config.temporal_offsets
        lo, hi = -min(offsets, default=0), config.synthetic.frames - 1 - max(offsets, default=0)
        kept = [e for e in entries if lo <= e.frame_index <= hi]
        if len(kept) < len(entries):
            logger.info("frame offsets %s: %d of %d split lines near a drive end have no source "
                        "frame and are skipped", list(offsets), len(entries) - len(kept), len(entries))
        return kept

    def prepare(self, config: DataConfig, *, is_chief: bool = True, timeout_s: float = 3600.0,
                progress: bool = True) -> None:
        """Renders the world into ``data_dir`` unless a complete one with these parameters is there.

        Only the chief renders; other workers wait for its manifest (written last).

        Args:
          config: the data configuration (`rendered_world`).
          is_chief: whether this process renders.
          timeout_s: how long a non-chief worker waits, in seconds.
          progress: show the rendering's progress bar.

        Raises:
          ValueError: if ``data_dir`` holds a world with other parameters.
          TimeoutError: if a non-chief worker waited longer than ``timeout_s``.
        """
        self.check_layout(config)
        if is_chief:
            logger.info("synthetic world in %s (generated on first use)", config.data_dir)
            synthetic.ensure_world(config.data_dir, rendered_world(config), progress=progress)
            return
        manifest = os.path.join(config.data_dir, synthetic.MANIFEST)
        deadline = time.time() + timeout_s
        while not os.path.exists(manifest):
            if time.time() > deadline:
                raise TimeoutError(f"worker waited {timeout_s:.0f} s for the chief to write {manifest}")
            time.sleep(2.0)


DATASET = SyntheticWorld(
    name="synthetic",
    layout="the KITTI raw layout, written by `python -m md2tf.data.synthetic --out <data_dir>`",
    how_to_get="It is generated on first use",
    default_split=synthetic.SPLIT_NAME,
    missing_split_hint="generate the world with `python -m md2tf.data.synthetic --out DIR`",
    eval_split=synthetic.SPLIT_NAME,
    gt_sources={synthetic.SPLIT_NAME: "dense"},
    poses="drive",
)
