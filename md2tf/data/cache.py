"""A prepared cache: sharded TFRecords of pre-resized frames, for when JPEG decoding is the bottleneck.

Decoding a 375x1242 KITTI JPEG and resizing it costs far more than decoding a 192x640 one. The
cache stores, per sample, the target and source frames already resized to ``height x width``
(antialiased Lanczos-3, exactly as `md2tf.data.pipeline`) and re-encoded (JPEG quality 95 without
chroma subsampling by default, or lossless PNG), plus K, the stereo side and the GT depth (16-bit PNG,
``depth * 256`` like KITTI's depth maps: 1/256 m resolution, 0 = unknown, at the raw image size).

Augmentation still runs at read time. The horizontal flip is applied after the resize here, before
it online: with the symmetric Lanczos kernel on pixel centres the two orders agree to float precision.
The colour jitter, the pyramid and the `Batch` layout are shared with the online pipeline.

Usage::

    prepare_cache(config, "train", "/data/md2tf_cache/train", num_shards=64)
    ds = make_cached_dataset("/data/md2tf_cache/train", config, batch_size=12, training=True)

A cache holds what ``dataset, height, width, frame_offsets, use_stereo, intrinsics, image_ext`` selected
when it was made; `make_cached_dataset` checks these against its config (augmentation settings,
``stereo_baseline`` and the GT size may differ).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from md2tf.config import DataConfig
from md2tf.data import augment, datasets, pipeline

MANIFEST = "cache.json"
FORMAT_VERSION = 1
_MATCH_FIELDS = ("height", "width", "frame_offsets", "use_stereo", "intrinsics", "dataset",
                 "image_ext")


def _bytes_feature(values: list[bytes]) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _float_feature(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _depth_png(depth: tf.Tensor) -> tf.Tensor:
    """``[H, W]`` metres -> 16-bit PNG of ``depth * 256`` (KITTI's depth-map encoding)."""
    depth = tf.clip_by_value(tf.round(depth * 256.0), 0.0, 65535.0)
    return tf.io.encode_png(tf.cast(depth, tf.uint16)[..., None])


def prepare_cache(config: DataConfig, split: str, out_dir: str, num_shards: int = 16,
                  image_format: str = "jpg", quality: int = 95) -> str:
    """Writes the cache of one subset (file order; the reader shuffles).

    Args:
      config: data configuration (samples are validated as in `md2tf.data.pipeline.make_dataset`).
      split: ``"train"``, ``"val"`` or ``"test"``.
      out_dir: output directory (created); shards ``data-XXXXX-of-YYYYY.tfrecord`` and ``cache.json``.
      num_shards: number of TFRecord files (>= the number of input pipelines you will read with).
      image_format: ``"jpg"`` or ``"png"`` (lossless, ~3x larger).
      quality: JPEG quality.

    Returns:
      ``out_dir``.

    Raises:
      ValueError: for bad arguments or (from the reader) missing files.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    samples = datasets.list_samples(config, split)
    os.makedirs(out_dir, exist_ok=True)

    def encode(element):
        paths = tf.concat([element["target"][None], element["sources"]], axis=0)
        frames, raw_shape = [], None
        for i in range(1 + config.num_sources):
            contents, _ = pipeline.read_image_bytes(paths[i], config.image_ext)
            image = pipeline.decode_image(contents, config.image_ext)
            if i == 0:
                raw_shape = tf.shape(image)
            resized = pipeline.resize_image(image, config.height, config.width)
            pixels = tf.cast(tf.round(resized * 255.0), tf.uint8)  # resized is clipped to [0, 1]
            frames.append(tf.io.encode_png(pixels) if image_format == "png" else
                          tf.io.encode_jpeg(pixels, quality=quality, chroma_downsampling=False))
        gt_path = element["depth_gt"]

        def gt_png():
            depth = pipeline.decode_npy_float32(tf.io.read_file(gt_path), raw_shape[0],
                                                raw_shape[1], gt_path)
            return _depth_png(depth)

        velo_path = element["velodyne"]

        def velo_png():
            depth = pipeline.velodyne_depth_map(tf.io.read_file(velo_path), element["velo_projection"],
                                                raw_shape[0], raw_shape[1])
            return _depth_png(depth)

        gt = tf.cond(tf.strings.length(gt_path) > 0, gt_png,
                     lambda: tf.cond(tf.strings.length(velo_path) > 0, velo_png,
                                     lambda: tf.constant(b"")))
        return tf.stack(frames), gt, element["intrinsics"], element["side_sign"]

    ds = pipeline.samples_to_dataset(samples).map(encode, num_parallel_calls=tf.data.AUTOTUNE,
                                                  deterministic=True)
    names = [os.path.join(out_dir, f"data-{k:05d}-of-{num_shards:05d}.tfrecord")
             for k in range(num_shards)]
    writers = [tf.io.TFRecordWriter(name) for name in names]
    try:
        for index, (frames, gt, K, side_sign) in enumerate(ds.as_numpy_iterator()):
            example = tf.train.Example(features=tf.train.Features(feature={
                "frames": _bytes_feature(list(frames)),
                "depth_gt": _bytes_feature([gt]),
                "intrinsics": _float_feature(K.reshape(-1)),
                "side_sign": _float_feature([side_sign]),
                "name": _bytes_feature([samples[index].name.encode()]),
            }))
            writers[index % num_shards].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    manifest = {"format_version": FORMAT_VERSION, "split": split, "num_samples": len(samples),
                "files": [os.path.basename(n) for n in names], "image_format": image_format,
                "config": {k: getattr(config, k) for k in _MATCH_FIELDS}}
    with open(os.path.join(out_dir, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
    return out_dir


def read_manifest(cache_dir: str, config: DataConfig) -> dict:
    """Reads ``cache.json`` and checks it matches ``config``.

    Raises:
      FileNotFoundError: if there is no manifest.
      ValueError: naming the fields whose values differ from the config.
    """
    path = os.path.join(cache_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no cache manifest {path}: run prepare_cache first")
    with open(path) as f:
        manifest = json.load(f)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: cache format {manifest.get('format_version')}, expected {FORMAT_VERSION}")
    stored = manifest["config"]
    wanted = json.loads(json.dumps({k: getattr(config, k) for k in _MATCH_FIELDS}))
    diff = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
    if diff:
        raise ValueError(f"{path} was prepared with other settings (cached, wanted): {diff}")
    return manifest


def make_cached_dataset(cache_dir: str, config: DataConfig, batch_size: int = 12,
                        training: bool = True,
                        input_context: tf.distribute.InputContext | None = None,
                        seed: int = 0, deterministic: bool = False) -> tf.data.Dataset:
    """Like `md2tf.data.pipeline.make_dataset`, reading a prepared cache.

    Multi-worker: shards by file when there are at least as many files as input pipelines,
    otherwise by record. Training shuffles the file order and ``config.shuffle_buffer`` samples.

    Returns:
      One-epoch, prefetched dataset of `md2tf.data.batch.Batch`.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    deterministic = deterministic or not training  # evaluation data keeps the file order
    manifest = read_manifest(cache_dir, config)
    seed = int(seed or 0)
    files = [os.path.join(cache_dir, name) for name in manifest["files"]]
    per_replica_batch = batch_size
    pipeline_id = 0
    ds = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context is not None:
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
        num = input_context.num_input_pipelines
        if num > 1:
            pipeline_id = input_context.input_pipeline_id
            if len(files) >= num:
                ds = ds.shard(num, pipeline_id)
            else:
                shard_records = True
    if training:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    parallel = tf.data.AUTOTUNE if config.num_parallel_calls < 0 else config.num_parallel_calls
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                       num_parallel_calls=parallel, deterministic=deterministic)
    if shard_records:
        ds = ds.shard(input_context.num_input_pipelines, pipeline_id)
    if training:
        ds = ds.shuffle(max(config.shuffle_buffer, 1), seed=seed, reshuffle_each_iteration=True)
    seeds = tf.data.Dataset.random(seed=seed * 1000003 + pipeline_id,
                                   rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)
    n = 1 + config.num_sources
    spec = {
        "frames": tf.io.FixedLenFeature([n], tf.string),
        "depth_gt": tf.io.FixedLenFeature([], tf.string),
        "intrinsics": tf.io.FixedLenFeature([9], tf.float32),
        "side_sign": tf.io.FixedLenFeature([], tf.float32),
    }

    def load(record, sample_seed):
        ex = tf.io.parse_single_example(record, spec)
        params = (augment.draw_params(sample_seed, config.flip_prob, config.color_aug_prob)
                  if training else augment.identity_params())
        frames = [tf.image.convert_image_dtype(tf.io.decode_image(ex["frames"][i], channels=3,
                                                                  expand_animations=False), tf.float32)
                  for i in range(n)]
        clean = augment.flip_horizontal(tf.stack(frames), params.flip)

        def gt():
            depth = tf.cast(tf.io.decode_png(ex["depth_gt"], dtype=tf.uint16), tf.float32) / 256.0
            return pipeline.resize_depth(augment.flip_horizontal(depth, params.flip), config)

        depth_gt = tf.cond(tf.strings.length(ex["depth_gt"]) > 0, gt,
                           lambda: tf.zeros([config.gt_height, config.gt_width, 1], tf.float32))
        return pipeline.finish_sample(config, clean, params, tf.reshape(ex["intrinsics"], [3, 3]),
                                      ex["side_sign"], depth_gt)

    ds = ds.map(load, num_parallel_calls=parallel, deterministic=deterministic)
    return pipeline.batch_and_prefetch(ds, config, per_replica_batch, training, deterministic)
