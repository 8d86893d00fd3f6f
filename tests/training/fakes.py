"""Tiny stand-in data for the training tests: a seeded fake `Batch` dataset built in the test."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf import geometry
from md2tf.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainConfig
from md2tf.data.batch import Batch
from md2tf.data.poses import unknown_poses

H, W = 64, 64


def tiny_config(run_dir: str, **train_overrides) -> ExperimentConfig:
    """64x128 monocular (frames 0,-1,1) config, batch 2, logging every step."""
    train = dict(run_dir=run_dir, batch_size=2, num_epochs=1, steps_per_epoch=4, log_every=1,
                 image_log_every=2, save_every_steps=2, progress_bar=False, validate_every_epoch=True,
                 val_steps=1, strategy="default")
    train.update(train_overrides)
    return ExperimentConfig(
        data=DataConfig(dataset="synthetic", data_dir="unused", height=H, width=W,
                        frame_offsets=(0, -1, 1), gt_height=H, gt_width=W),
        model=ModelConfig(scales=(0, 1, 2, 3)),
        loss=LossConfig(),
        train=TrainConfig(**train),
    )


def fake_samples(num: int, num_sources: int = 2, seed: int = 0, with_poses: bool = False) -> Batch:
    """``num`` samples (unbatched leading axis): smooth random images shifted between frames; with
    ``with_poses``, known ``temporal_source_from_target`` (sideways translations of -/+ 0.1), else
    NaN poses as the pipeline gives a dataset without them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, size=(num, H // 8, W // 8 + 4, 3)).astype(np.float32)
    big = tf.image.resize(base, (H, W + 32), method="bilinear").numpy()
    target = big[:, :, 16:16 + W]
    sources = np.stack([big[:, :, 16 + d:16 + d + W] for d in (-2, 2)[:num_sources]], axis=1)
    pyramid = tuple(tf.nn.avg_pool2d(target, 2**s, 2**s, "VALID").numpy() if s else target
                    for s in range(4))
    src_pyr = tuple(
        tf.reshape(tf.nn.avg_pool2d(tf.reshape(sources, [-1, H, W, 3]), 2**s, 2**s, "VALID"),
                   [num, num_sources, H // 2**s, W // 2**s, 3]).numpy() if s else sources
        for s in range(4))
    K = np.array([[0.58 * W, 0, W / 2], [0, 1.92 * H, H / 2], [0, 0, 1]], np.float32)
    depth = 1.0 + 9.0 * rng.uniform(0, 1, size=(num, H, W, 1)).astype(np.float32)
    poses = np.repeat(unknown_poses(num_sources)[None], num, 0)  # as the pipeline: NaN = unknown
    if with_poses:
        poses = np.tile(np.eye(4, dtype=np.float32), (num, num_sources, 1, 1))
        poses[:, :, 0, 3] = [-0.1, 0.1][:num_sources]
    return Batch(target=pyramid, sources=src_pyr, target_aug=target, sources_aug=sources,
                 intrinsics=np.repeat(K[None], num, 0), stereo_source_from_target=np.repeat(
                     np.eye(4, dtype=np.float32)[None], num, 0), depth_gt=depth,
                 temporal_source_from_target=poses, camera=np.zeros(num, np.int32),
                 flipped=np.zeros(num, bool),  # as the pipeline: one camera, nothing flipped
                 temporal_distance=np.linalg.norm(poses[:, :, :3, 3], axis=-1).astype(np.float32))


def fake_dataset_fn(num_samples: int = 16, repeat: bool = False, with_poses: bool = False):
    """A `DatasetFn`: same seeded samples every epoch, batched per replica, drop remainder."""
    cache = []  # built on first use: no TF op may run before MultiWorkerMirroredStrategy exists

    def fn(split, batch_size, training, input_context=None, seed=None):
        if not cache:
            cache.append(fake_samples(num_samples, with_poses=with_poses))
        ds = tf.data.Dataset.from_tensor_slices(cache[0])
        if input_context is not None:
            ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            batch_size = input_context.get_per_replica_batch_size(batch_size)
        ds = ds.batch(batch_size, drop_remainder=True)
        return ds.repeat() if repeat and training else ds

    return fn


class TinyDepthNet(tf.keras.Model):
    """Stand-in depth network: two convs, sigmoid disparities at 4 scales (average-pooled)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = tf.keras.layers.Conv2D(8, 3, padding="same", activation="elu")
        self.conv2 = tf.keras.layers.Conv2D(1, 3, padding="same")

    def call(self, images, training=False):
        x = self.conv2(self.conv1(images))
        return tuple(tf.sigmoid(tf.nn.avg_pool2d(x, 2**s, 2**s, "VALID") if s else x)
                     for s in range(4))

    def disp_to_depth(self, disp):
        """The DepthNet output contract with the paper's range 0.1 .. 100."""
        return geometry.disp_to_depth(disp, 0.1, 100.0)


class TinyPoseNet(tf.keras.Model):
    """Stand-in pose network: conv, global mean, 0.01 x 6 outputs (axis-angle, translation)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")
        self.head = tf.keras.layers.Dense(6)

    def call(self, pair, training=False):
        out = 0.01 * self.head(tf.reduce_mean(self.conv(pair), axis=[1, 2]))
        return out[:, :3], out[:, 3:]


def tiny_networks():
    return TinyDepthNet(), TinyPoseNet()
