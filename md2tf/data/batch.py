"""The training/validation sample structure shared by the input pipeline, the trainer and the loss.

A `Batch` replaces the reference's tuple-keyed dict (``inputs[("color_aug", -1, 0)]``). tf.data and
``tf.nest`` handle NamedTuples natively, so a dataset element *is* a `Batch`.

Source order (the ``S`` axis) is fixed by `DataConfig`: the temporal offsets in
``DataConfig.temporal_offsets`` order (e.g. ``(-1, 1)``), then the stereo partner if ``use_stereo``.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class Batch(NamedTuple):
    """One (mini-)batch. Images are float32 RGB in [0, 1]; B = batch, S = number of sources.

    Attributes:
      target: clean target pyramid, one tensor per scale s: ``[B, H/2^s, W/2^s, 3]``. Used by the losses.
      sources: clean source pyramid, one tensor per scale s: ``[B, S, H/2^s, W/2^s, 3]``. Used by the losses.
      target_aug: colour-augmented target at scale 0, ``[B, H, W, 3]``: the depth network's input.
      sources_aug: colour-augmented sources at scale 0, ``[B, S, H, W, 3]``: the pose network's input.
      intrinsics: ``[B, 3, 3]`` pinhole K in pixels of the scale-0 (H x W) images.
      stereo_source_from_target: ``[B, 4, 4]`` rigid transform mapping target-camera points into the
        stereo partner's camera (``T[0, 3] = side_sign * flip_sign * baseline``); identity when unused.
      depth_gt: ``[B, Hg, Wg, 1]`` ground-truth depth (metres, 0 = unknown) for training-time metrics;
        all zeros when the dataset has none.
      temporal_source_from_target: ``[B, T, 4, 4]`` rigid transforms from the target camera into each
        temporal source's camera (T = temporal offsets, in order) from the dataset's known camera
        poses (metres; mirrored with flipped samples); NaN when the dataset has none. The loss uses
        them instead of the pose network with ``--pose_source=gt``. The pipeline always fills it;
        None (batches built by hand) works on one device but not through a distributed iterator.
      camera: int32 ``[B]``, each sample's index in the dataset's cameras (`Dataset.cameras`): which
        learned K (``--intrinsics=learned``) it uses.
      flipped: bool ``[B]``, the sample was mirrored horizontally (a learned K's principal point is
        mirrored with it: ``cx -> W - 1 - cx``).
      temporal_distance: float32 ``[B, T]`` metres travelled between the target and each temporal
        source (`Sample.temporal_distance`), the velocity loss's supervision; NaN where unknown.
    """

    target: tuple[tf.Tensor, ...]
    sources: tuple[tf.Tensor, ...]
    target_aug: tf.Tensor
    sources_aug: tf.Tensor
    intrinsics: tf.Tensor
    stereo_source_from_target: tf.Tensor
    depth_gt: tf.Tensor
    temporal_source_from_target: tf.Tensor | None = None
    camera: tf.Tensor | None = None
    flipped: tf.Tensor | None = None
    temporal_distance: tf.Tensor | None = None
