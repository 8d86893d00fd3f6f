"""The input pipeline carries the synthetic world's known poses: values, the flip, and a GT warp."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from md2tf import geometry
from md2tf.config import DataConfig
from md2tf.data import datasets, pipeline, poses

H, W = 32, 160  # the tiny world is 48 x 160


def _config(root, **kwargs):
    values = dict(dataset="synthetic", data_dir=root, image_ext=".png", intrinsics="calib",
                  height=H, width=W, gt_height=H, gt_width=W, frame_offsets=(0, -1, 1),
                  num_parallel_calls=1, color_aug_prob=0.0)
    values.update(kwargs)
    return DataConfig(**values)


def _batches(config, training=False, subset="train"):
    ds = pipeline.make_dataset(config, subset, batch_size=1, training=training, deterministic=True)
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds]


def _expected(root, world, name):
    """source_from_target for frames -1, +1 of the sample ``name`` from the raw poses.txt."""
    folder, index, side = name.split()
    world_from_cam2 = poses.read_poses_file(os.path.join(root, folder, "poses.txt"))
    if side == "r":  # camera 3 sits `baseline` metres to the right of camera 2
        world_from_camera = world_from_cam2 @ poses.translation([world.baseline, 0.0, 0.0])
    else:
        world_from_camera = world_from_cam2
    return np.stack([np.linalg.inv(world_from_camera[int(index) + o]) @ world_from_camera[int(index)]
                     for o in (-1, 1)])


def _warp_errors(batch, source_from_target):
    """Mean |warped source - target| over pixels with GT depth, for each temporal source, and the
    same without warping."""
    target = batch.target[0]
    depth = batch.depth_gt
    valid = depth[..., 0] > 0
    K = batch.intrinsics.astype(np.float32)
    inv_K = np.linalg.inv(K).astype(np.float32)
    errors, identity = [], []
    for j in range(source_from_target.shape[1]):
        source = batch.sources[0][:, j]
        warped = geometry.warp(source, np.maximum(depth, 1e-3), source_from_target[:, j], K, inv_K)
        errors.append(np.abs(warped.numpy() - target).mean(-1)[valid].mean())
        identity.append(np.abs(source - target).mean(-1)[valid].mean())
    return np.array(errors), np.array(identity)


def test_samples_and_batches_carry_the_world_poses(tiny_world):
    root, world = tiny_world
    config = _config(root)
    samples = datasets.list_samples(config, "train")
    assert {s.name.split()[-1] for s in samples} == {"l", "r"}
    for sample in samples:
        np.testing.assert_allclose(sample.temporal_source_from_target, _expected(root, world, sample.name),
                                   atol=1e-5)
    batches = _batches(config)
    assert len(batches) == len(samples)
    for batch, sample in zip(batches, samples):
        assert batch.temporal_source_from_target.shape == (1, 2, 4, 4)
        assert batch.temporal_source_from_target.dtype == np.float32
        np.testing.assert_allclose(batch.temporal_source_from_target[0], sample.temporal_source_from_target)


@pytest.mark.parametrize("flip", [False, True])
def test_gt_depth_and_carried_pose_warp_the_sources_onto_the_target(tiny_world, flip):
    """The batch's pose (mirrored in a flipped sample) and GT depth reproduce the target far better
    than no warp (the world drives nearly straight, so the exact mirror is checked separately)."""
    root, _ = tiny_world
    batches = _batches(_config(root, flip_prob=1.0 if flip else 0.0), training=True)
    for batch in batches:
        errors, identity = _warp_errors(batch, batch.temporal_source_from_target)
        assert np.all(errors < 0.6 * identity), (errors, identity)
        inverse = np.linalg.inv(batch.temporal_source_from_target)  # the wrong direction
        assert np.all(_warp_errors(batch, inverse)[0] > 1.5 * errors)


def test_flipped_batch_has_mirrored_poses(tiny_world):
    root, _ = tiny_world
    plain = _batches(_config(root, flip_prob=0.0), training=True)
    flipped = _batches(_config(root, flip_prob=1.0), training=True)
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)
    def key(batch):  # the mean colour of the target identifies the sample, flipped or not
        return round(float(batch.target[0].mean()), 4)

    by_image = {key(b): b for b in plain}
    assert len(by_image) == len(plain) == len(flipped)
    for batch in flipped:
        match = by_image[key(batch)]
        assert not np.allclose(batch.target[0], match.target[0])  # really flipped
        np.testing.assert_allclose(batch.temporal_source_from_target[0],
                                   mirror @ match.temporal_source_from_target[0] @ mirror, atol=1e-6)
