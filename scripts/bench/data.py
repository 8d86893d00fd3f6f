"""``--only data``: input-pipeline throughput (samples/s) at 640x192, 3 frames, pyramid, augmentation.

Reads the built-in synthetic world as 375x1242 JPEGs (quality 92, 4:2:0 like the reference's KITTI
JPEGs; generated once into ``<workdir>/data_world``), then the same samples from a prepared TFDS
dataset of pre-resized frames (`md2tf.tfds.builders`, the KITTI builder on the world's KITTI layout,
JPEG q95 4:4:4, 4 shards, in ``<workdir>/data_tfds``). One timed run = ``--data-batches`` batches of 12 from a
repeating training pipeline (shuffle, flip + colour jitter, Lanczos pyramid, GT depth). Rows also
report ``cpu_ms_per_sample`` (this process's CPU time per sample, so 1000 / it = samples/s per core),
which other processes on a shared machine do not distort.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from bench.harness import _own_cpu_seconds, measure, section

BATCH = 12


def _world(args: argparse.Namespace) -> str:
    from md2tf.data.synthetic import ensure_world

    root = os.path.join(args.workdir, "data_world")
    print(f"  synthetic world (375x1242 jpg) in {root} ...", flush=True)
    return ensure_world(root, drives=1, frames=getattr(args, "data_frames", 24), ext="jpg", lidar=False,
                        odometry=False)


@section("data")
def data_section(args: argparse.Namespace) -> list[dict]:
    from md2tf.config import DataConfig
    from md2tf.data import pipeline

    root = _world(args)
    config = DataConfig(dataset="synthetic", data_dir=root, height=192, width=640,
                        frame_offsets=(0, -1, 1), image_ext=".jpg")
    batches = getattr(args, "data_batches", 4)
    rows = []

    def timed(name, ds, **extra):
        iterator = iter(ds.repeat())

        def run():
            for _ in range(batches):
                next(iterator)

        cpu0 = _own_cpu_seconds()
        timing = measure(name, run, warmup=args.warmup, repeats=args.repeats,
                         items_per_run=batches * BATCH, **extra)
        samples = (args.warmup + args.repeats) * batches * BATCH
        # CPU time per sample is robust to other processes on a shared machine: samples/s per core.
        timing.extra["cpu_ms_per_sample"] = round((_own_cpu_seconds() - cpu0) / samples * 1e3, 2)
        rows.append(timing.to_dict(args.contaminated))
        print(f"  {name}: {timing.extra['cpu_ms_per_sample']} CPU ms/sample", flush=True)

    timed("jpeg 375x1242 -> 192x640, 3 frames, aug", pipeline.make_dataset(config, "train", BATCH),
          source="jpeg")
    prepared = dataclasses.replace(config, dataset=f"tfds:md2tf_kitti/{_TFDS_CONFIG}",
                                   data_dir=_prepare_tfds(args, root))
    timed("tfds (pre-resized jpg q95), 3 frames, aug", pipeline.make_dataset(prepared, "train", BATCH),
          source="tfds")
    return rows


_TFDS_CONFIG = "bench_640x192"


def _prepare_tfds(args: argparse.Namespace, world: str) -> str:
    """Prepares the world's training split with the KITTI builder (once); returns the data_dir."""
    import tensorflow_datasets as tfds

    from md2tf.tfds import builders

    data_dir = os.path.join(args.workdir, "data_tfds")
    config = builders.Md2tfConfig(
        name=_TFDS_CONFIG, description="benchmark: the synthetic world's split at 640x192",
        data={"dataset": "kitti", "split": "synthetic", "height": 192, "width": 640,
              "frame_offsets": (0, -1, 1), "use_stereo": False, "image_ext": ".jpg"})
    builder = builders.Md2tfKitti(config=config, data_dir=data_dir)
    print(f"  preparing tfds:md2tf_kitti/{_TFDS_CONFIG} in {data_dir} ...", flush=True)
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=world,
                                                                              num_shards=4))
    return data_dir

