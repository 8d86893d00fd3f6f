"""``--only data``: input-pipeline throughput (samples/s) at 640x192, 3 frames, pyramid, augmentation.

Reads the built-in synthetic world as 375x1242 JPEGs (quality 92, 4:2:0 like the reference's KITTI
JPEGs; generated once into ``<workdir>/data_world``), then the same samples from a prepared cache
of pre-resized frames (`md2tf.data.cache`). One timed run = ``--data-batches`` batches of 12 from a
repeating training pipeline (shuffle, flip + colour jitter, Lanczos pyramid, GT depth). Rows also
report ``cpu_ms_per_sample`` (this process's CPU time per sample, so 1000 / it = samples/s per core),
which other processes on a shared machine do not distort.
"""

from __future__ import annotations

import argparse
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
    from md2tf.data import cache, pipeline

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
    cache_dir = os.path.join(args.workdir, "data_cache_192x640")
    if not os.path.isfile(os.path.join(cache_dir, cache.MANIFEST)):
        print(f"  preparing cache in {cache_dir} ...", flush=True)
        cache.prepare_cache(config, "train", cache_dir, num_shards=8)
    timed("cache (pre-resized jpg q95), 3 frames, aug",
          cache.make_cached_dataset(cache_dir, config, BATCH), source="cache")
    return rows

