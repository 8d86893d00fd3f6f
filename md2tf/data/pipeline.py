"""The tf.data input pipeline: a dataset's decoded samples -> batched `Batch` es with image pyramids.

    ds = make_dataset(config, "train", batch_size=12, training=True, seed=0)

`make_dataset` asks the dataset (`md2tf.data.datasets.get_dataset(config.dataset)`) for its decoded
samples through the dataset protocol (`md2tf.data.datasets.base.Dataset.read`: files via
`md2tf.data.decoding`, a prepared TFDS dataset via `md2tf.data.prepared`), batches them (dropping
the remainder when training), builds the scale pyramids and prefetches. Scales 1..3 follow the
reference's cascade (scale s resized from scale s-1 with the antialiased Lanczos-3 filter of
`md2tf.data.decoding.resize_image`): measured on a textured 375x1242 image, <= 0.32 grey levels
(max 1.5) from PIL's; the cheaper ``avg_pool`` pyramid (`build_pyramid`) differs from the cascade by
2-6 grey levels on average on the same image.

Multi-replica: build the dataset inside
``strategy.distribute_datasets_from_function(lambda ctx: make_dataset(..., input_context=ctx))``;
with several input pipelines (multi-worker), each reads its shard of the dataset and batches
``ctx.get_per_replica_batch_size(batch_size)``. ``deterministic`` also keeps the element order of the
parallel maps; evaluation data (``training=False``) always keeps the file order.
"""

from __future__ import annotations

import tensorflow as tf

from md2tf.config import DataConfig
from md2tf.data.batch import Batch
from md2tf.data.datasets import get_dataset
from md2tf.data.decoding import parallel_calls, resize_image

NUM_SCALES = 4
PYRAMID_METHOD = "lanczos3"


def build_pyramid(images: tf.Tensor, num_scales: int = NUM_SCALES,
                  method: str = PYRAMID_METHOD) -> tuple[tf.Tensor, ...]:
    """Scales 0..n-1 of ``[N, H, W, C]`` images (H and W divisible by 2^(n-1)).

    Args:
      images: scale 0, ``[N, H, W, C]``.
      num_scales: number of levels n.
      method: ``"lanczos3"``: a cascade like the reference (scale s = antialiased Lanczos-3 resize
        of scale s-1, clipped to [0, 1]); ``"avg_pool"``: scale s = 2^s x 2^s box average of scale 0.

    Returns:
      Tuple of ``[N, H/2^s, W/2^s, C]``, scale 0 first.
    """
    if method not in ("lanczos3", "avg_pool"):
        raise ValueError(f"pyramid method must be 'lanczos3' or 'avg_pool', got {method!r}")
    height, width = images.shape[-3], images.shape[-2]
    out = [images]
    for s in range(1, num_scales):
        k = 2**s
        if method == "avg_pool":
            out.append(tf.nn.avg_pool2d(images, ksize=k, strides=k, padding="VALID"))
        else:
            out.append(resize_image(out[-1], height // k, width // k))
    return tuple(out)


def to_batch(element: dict) -> Batch:
    """Batched `finish_sample` dicts -> `Batch` (builds the pyramids, splits target/sources)."""
    clean = element["clean"]  # [B, N, H, W, 3]
    shape = tf.shape(clean)
    b, n, h, w = shape[0], shape[1], clean.shape[2], clean.shape[3]
    pyramid = build_pyramid(tf.reshape(clean, [b * n, h, w, 3]))
    target, sources = [], []
    for s, level in enumerate(pyramid):
        level = tf.reshape(level, [b, n, h // 2**s, w // 2**s, 3])
        target.append(level[:, 0])
        sources.append(level[:, 1:])
    aug = element["aug"]
    return Batch(
        target=tuple(target),
        sources=tuple(sources),
        target_aug=aug[:, 0],
        sources_aug=aug[:, 1:],
        intrinsics=element["intrinsics"],
        stereo_source_from_target=element["stereo"],
        depth_gt=element["depth_gt"],
        temporal_source_from_target=element["poses"],
        camera=element["camera"],
        flipped=element["flipped"],
        temporal_distance=element["distance"],
    )


def make_dataset(
    config: DataConfig,
    split: str = "train",
    batch_size: int = 12,
    training: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    seed: int = 0,
    *,
    deterministic: bool = False,
    skip_corrupt_images: bool = False,
    corrupt_counter: tf.Variable | None = None,
) -> tf.data.Dataset:
    """The input pipeline of one subset, yielding `md2tf.data.batch.Batch` es.

    Args:
      config: data configuration.
      split: ``"train"``, ``"val"`` or ``"test"``.
      batch_size: global batch size (divided per replica when ``input_context`` is given).
      training: shuffle, augment and drop the last incomplete batch. False: file order, no
        augmentation, keep the remainder.
      input_context: from ``strategy.distribute_datasets_from_function``; the dataset reads the
        shard ``input_pipeline_id`` when there are several input pipelines.
      seed: shuffle / augmentation seed.
      deterministic: keep the element order of training data reproducible (parallel maps in
        order). Evaluation data (``training=False``) always keeps the file order.
      skip_corrupt_images: drop (log to stderr and count) samples with a corrupt or truncated image
        instead of failing with an error naming the file (datasets that decode files).
      corrupt_counter: with ``skip_corrupt_images``, an int64 scalar ``tf.Variable`` incremented
        for every dropped sample (optional).

    Returns:
      A one-epoch, prefetched ``tf.data.Dataset`` of `Batch` (static H, W, S; batch dimension static
      when ``training``).

    Raises:
      ValueError, FileNotFoundError: at construction, for a bad config, split file or missing file.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    deterministic = deterministic or not training
    samples = get_dataset(config.dataset).read(
        config, split, training=training, input_context=input_context, seed=int(seed or 0),
        deterministic=deterministic, skip_corrupt_images=skip_corrupt_images,
        corrupt_counter=corrupt_counter)
    per_replica_batch = (batch_size if input_context is None
                         else input_context.get_per_replica_batch_size(batch_size))
    return batch_and_prefetch(samples, config, per_replica_batch, training, deterministic)


def batch_and_prefetch(ds: tf.data.Dataset, config: DataConfig, batch_size: int,
                       training: bool, deterministic: bool = False) -> tf.data.Dataset:
    """Batches per-sample dicts (dropping the remainder when training), builds `Batch`, prefetches."""
    parallel = parallel_calls(config)
    ds = ds.batch(batch_size, drop_remainder=training, num_parallel_calls=parallel,
                  deterministic=deterministic)
    ds = ds.map(to_batch, num_parallel_calls=parallel, deterministic=deterministic)
    options = tf.data.Options()
    options.deterministic = deterministic
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
