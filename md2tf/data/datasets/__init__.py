"""Every dataset md2tf trains on, behind one protocol (`Dataset`, see ``base.py``) and one registry.

    dataset = datasets.get_dataset(config.data.dataset)
    dataset.check_layout(config.data)            # ValueError naming --data_dir + the expected layout
    dataset.prepare(config.data, is_chief=True)  # the synthetic world renders itself here
    samples = dataset.read(config.data, "train", training=True)  # decoded samples (tf.data)

Nothing outside this package switches on a dataset name. A new dataset is one module here that
defines ``DATASET`` (a `SplitFileDataset` when it comes with split files) and one line in
`_REGISTERED`. A name ``tfds:<builder>/<config>`` is a prepared TFDS dataset of one of these
(`md2tf.data.prepared`; builders ``md2tf_<registered name>`` in `md2tf.tfds.builders`).
"""

from __future__ import annotations

from md2tf.config import DataConfig
from md2tf.data import prepared
from md2tf.data.datasets import folder, kitti, kitti_odom, synthetic, video
from md2tf.data.datasets.base import Dataset, FileDataset, SplitFileDataset
from md2tf.data.sample import Sample

__all__ = ["Dataset", "FileDataset", "SplitFileDataset", "get_dataset", "gt_source_for_split", "list_samples", "names"]

_REGISTERED: tuple[Dataset, ...] = (kitti.DATASET, kitti_odom.DATASET, synthetic.DATASET, folder.DATASET,
                                     video.DATASET)
_REGISTRY: dict[str, Dataset] = {d.name: d for d in _REGISTERED}


def names() -> tuple[str, ...]:
    """The registered ``--dataset`` values, in registration order."""
    return tuple(_REGISTRY)


def get_dataset(name: str) -> Dataset:
    """The registered dataset called ``name``, or the prepared dataset ``tfds:<builder>/<config>``.

    A prepared dataset of builder ``md2tf_<registered name>`` keeps that dataset's evaluation split.

    Raises:
      ValueError: naming ``--dataset`` and the registered names, for an unknown name.
    """
    if name.startswith(prepared.PREFIX):
        builder, _ = prepared.parse_name(name)
        source = _REGISTRY.get(builder.removeprefix("md2tf_"))
        return prepared.PreparedDataset(name, eval_split=source.eval_split if source else "")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"--dataset must be one of {', '.join(_REGISTRY)} or "
                         f"tfds:<builder>/<config>, got {name!r}") from None


def list_samples(config: DataConfig, subset: str) -> list[Sample]:
    """``get_dataset(config.dataset).list_samples(config, subset)`` of a dataset of image files
    (`base.FileDataset`; a prepared TFDS dataset has no files to list)."""
    return get_dataset(config.dataset).list_samples(config, subset)


def gt_source_for_split(split: str) -> str | None:
    """The GT source a registered dataset declares for the evaluation split ``split``, else None."""
    for dataset in _REGISTRY.values():
        if split in dataset.gt_sources:
            return dataset.gt_sources[split]
    return None
