"""The per-replica computation of one Monodepth2 training step, written against the module contracts.

Pure functions of (networks, batch, configs): DepthNet on the augmented target, PoseNet on augmented
(ordered) pairs (or, without a pose network, the batch's known camera poses: ``--pose_source=gt``),
``monodepth2_loss`` on the clean pyramids. The trainer wraps them in
``strategy.run`` inside one ``tf.function``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf

from md2tf import geometry
from md2tf.config import DataConfig, LossConfig
from md2tf.data.batch import Batch
from md2tf.losses.distillation import distillation_loss
from md2tf.losses.velocity import velocity_loss


class ForwardOutputs(NamedTuple):
    """Network outputs and losses of one forward pass.

    Attributes:
      disparities: per scale s, float32 sigmoid disparity ``[B, H/2^s, W/2^s, 1]``.
      source_from_target: ``[B, S, 4, 4]`` float32, temporal sources then the stereo partner.
      losses: the loss package's ``LossOutputs``; with ``--speed_weight`` its ``total`` includes
        the weighted velocity loss.
      speed: the unweighted velocity loss (`md2tf.losses.velocity_loss`), or None when off.
      distill: the unweighted distillation loss (`md2tf.losses.distillation_loss`), or None when off.
    """

    disparities: tuple[tf.Tensor, ...]
    source_from_target: tf.Tensor
    losses: object
    speed: tf.Tensor | None = None
    distill: tf.Tensor | None = None


def source_from_target_poses(pose_net: Callable | None, batch: Batch, data_config: DataConfig,
                             training: bool, known_rotation: bool = False) -> tf.Tensor:
    """Rigid transforms from the target camera to every source camera.

    For a temporal source at offset ``f < 0`` the pose network sees ``[aug I_f, aug I_0]`` and its
    output is inverted; for ``f > 0`` it sees ``[aug I_0, aug I_f]`` (earlier frame first, as in the
    paper). Without a pose network the temporal transforms are the dataset's known poses,
    ``batch.temporal_source_from_target`` (``--pose_source=gt``). With ``known_rotation``
    (``--pose_source=rotation``) the known poses' rotation replaces the network's, which then gives
    the translation alone: a known rotation fixes how far it moves the image (``f w`` to first order),
    so a learned K's focal length cannot absorb it (Gordon et al., ICCV 2019, Sec. 3). The stereo
    partner's transform comes from the batch.

    Args:
      pose_net: ``pair [B, H, W, 6] -> (axis_angle [B, 3], translation [B, 3])``; None for stereo only
        or to use the batch's known poses.
      batch: the `Batch`; ``sources_aug`` is ``[B, S, H, W, 3]`` in ``DataConfig`` source order.
      data_config: gives the temporal offsets and whether the stereo partner is the last source.
      training: passed to the pose network (BatchNorm mode).
      known_rotation: take the rotations from ``batch.temporal_source_from_target``.

    Returns:
      ``[B, S, 4, 4]`` float32 ``source_from_target``.

    Raises:
      ValueError: temporal offsets with neither a pose network nor known poses in the batch, or
        ``known_rotation`` without known poses.
    """
    offsets = data_config.temporal_offsets
    known = None  # [B, T, 4, 4]
    if offsets and (pose_net is None or known_rotation):
        if batch.temporal_source_from_target is None:
            need = ("known rotations (--pose_source=rotation)" if pose_net is not None
                    else "a pose network or known poses (--pose_source=gt)")
            raise ValueError(f"frame_offsets {data_config.frame_offsets} need {need}, but the batch "
                             "has no known poses")
        known = tf.cast(batch.temporal_source_from_target, tf.float32)
    transforms = []
    if offsets and pose_net is None:
        transforms = tf.unstack(known, num=len(offsets), axis=1)
        offsets = ()
    target = batch.target_aug
    for i, offset in enumerate(offsets):
        source = batch.sources_aug[:, i]
        pair = tf.concat([source, target] if offset < 0 else [target, source], axis=-1)
        axis_angle, translation = pose_net(pair, training=training)
        translation = tf.cast(translation, tf.float32)
        if known_rotation:  # the network's frame is target_from_source for offset < 0
            rotation = known[:, i, :3, :3]
            if offset < 0:
                rotation = tf.linalg.matrix_transpose(rotation)
            transforms.append(geometry.rigid_transform(rotation, translation, invert=offset < 0))
        else:
            transforms.append(geometry.pose_to_matrix(tf.cast(axis_angle, tf.float32), translation,
                                                      invert=offset < 0))
    if data_config.use_stereo:
        transforms.append(tf.cast(batch.stereo_source_from_target, tf.float32))
    return tf.stack(transforms, axis=1)


def forward(depth_net: Callable, pose_net: Callable | None, batch: Batch, data_config: DataConfig,
            loss_config: LossConfig, loss_fn: Callable, noise_seed: tf.Tensor | None,
            training: bool, intrinsics: Callable | None = None,
            teacher: Callable | None = None, automask_off: tf.Tensor | None = None,
            known_rotation: bool = False) -> ForwardOutputs:
    """Networks + self-supervised loss for one (replica-local) batch.

    Args:
      depth_net: ``images [B, H, W, 3] -> tuple of disparities`` (scale 0 first), with
        ``disp_to_depth`` (the ``md2tf.models.DepthNet`` contract) that the loss warps with.
      pose_net: see `source_from_target_poses`.
      batch: replica-local `Batch`.
      data_config, loss_config: the experiment's configs.
      loss_fn: ``monodepth2_loss``-compatible callable.
      noise_seed: int32 ``[2]`` seed of the identity tie-break noise, or None.
      training: BatchNorm mode of both networks.
      intrinsics: ``--intrinsics=learned``: a `md2tf.models.LearnedIntrinsics`; the K of every
        warp (temporal and stereo) is then its K of each sample's camera (``batch.camera``),
        mirrored for flipped samples (``batch.flipped``), instead of ``batch.intrinsics``.
      teacher: ``--distill_weight``: the frozen teacher `DepthNet` (``--distill_from``); it sees the
        same augmented target, in inference mode.
      automask_off: scalar bool, True during ``--automask_warmup_steps``: the loss then runs with
        ``automask=False`` (one ``tf.cond``, so a compiled step holds both losses); None = as
        ``loss_config`` says.
      known_rotation: ``--pose_source=rotation`` (see `source_from_target_poses`).

    Returns:
      `ForwardOutputs`; everything that reaches geometry and losses is float32 (mixed precision safe).

    Raises:
      ValueError: ``--distill_weight`` without a teacher.
    """
    disparities = depth_net(batch.target_aug, training=training)
    disparities = tuple(tf.cast(d, tf.float32) for d in disparities)
    source_from_target = source_from_target_poses(pose_net, batch, data_config, training, known_rotation)
    if intrinsics is None:
        K = tf.cast(batch.intrinsics, tf.float32)
    else:
        K = intrinsics(batch.camera, height=data_config.height, width=data_config.width,
                       flipped=batch.flipped)

    def loss_with(config: LossConfig):
        return loss_fn(disparities, batch.target, batch.sources, source_from_target, K, config,
                       noise_seed=noise_seed, disp_to_depth=depth_net.disp_to_depth)

    if automask_off is None or not loss_config.automask:
        losses = loss_with(loss_config)
    else:
        unmasked = dataclasses.replace(loss_config, automask=False, automask_warmup_steps=0)
        losses = tf.cond(automask_off, lambda: loss_with(unmasked), lambda: loss_with(loss_config))
    speed = None
    if loss_config.speed_weight > 0:  # PackNet-SfM Sec. 3.3: known distances make the poses metric
        num_temporal = len(data_config.temporal_offsets)
        speed, _ = velocity_loss(source_from_target[:, :num_temporal], batch.temporal_distance)
        losses = losses._replace(total=losses.total + loss_config.speed_weight * speed)
    distill = None
    if loss_config.distill_weight > 0:
        if teacher is None:
            raise ValueError(f"--distill_weight={loss_config.distill_weight:g} needs a teacher network "
                             "(--distill_from)")
        _, teacher_depth = teacher.disp_to_depth(
            tf.cast(teacher(batch.target_aug, training=False)[0], tf.float32))
        distill = distillation_loss(disparities, teacher_depth, depth_net.disp_to_depth)
        losses = losses._replace(total=losses.total + loss_config.distill_weight * distill)
    return ForwardOutputs(disparities, source_from_target, losses, speed, distill)


def noise_seed_for(step: tf.Tensor, seed: int = 0) -> tf.Tensor:
    """Stateless seed ``[2]`` from (global step, replica id): a resumed run draws the same noise."""
    context = tf.distribute.get_replica_context()
    replica_id = context.replica_id_in_sync_group if context is not None else 0
    return tf.stack([tf.cast(step, tf.int32) + seed * 1_000_003,
                     tf.cast(replica_id, tf.int32)])


def scalar_losses(losses, scales: Sequence[int]) -> dict[str, tf.Tensor]:
    """Flat scalar dict for logging: total, per-scale reprojection/smoothness, auto-masked fraction."""
    out = {"loss/total": tf.cast(losses.total, tf.float32)}
    for s in scales:
        out[f"loss/reprojection_s{s}"] = tf.cast(losses.reprojection[s], tf.float32)
        out[f"loss/smoothness_s{s}"] = tf.cast(losses.smoothness[s], tf.float32)
    if losses.automask:
        # automask is 1 where a warped source won the minimum; the masked fraction is the rest.
        out["automask/masked_fraction"] = 1.0 - tf.reduce_mean(tf.cast(losses.automask[0], tf.float32))
    return out


def rotation_deg(source_from_target: tf.Tensor, temporal_offsets: Sequence[int]) -> tf.Tensor:
    """Scalar: the mean rotation angle between neighbouring frames, in degrees.

    The angle of each temporal source's rotation, ``atan2(sin, cos)`` with ``cos = (trace R - 1) / 2``
    and ``sin`` the length of R's axis vector ``(R32 - R23, R13 - R31, R21 - R12) / 2`` (exact for
    small angles, where an arccos of the trace loses them to float32 rounding), divided by its frame
    offset, averaged over the batch and the sources.

    Args:
      source_from_target: ``[B, S, 4, 4]``, temporal sources first (`source_from_target_poses`).
      temporal_offsets: the frame offset of each temporal source, in that order (non-empty).
    """
    n = len(temporal_offsets)
    rotations = tf.cast(source_from_target[:, :n, :3, :3], tf.float32)
    cos = (tf.linalg.trace(rotations) - 1.0) / 2.0
    axis = tf.stack([rotations[..., 2, 1] - rotations[..., 1, 2], rotations[..., 0, 2] - rotations[..., 2, 0],
                     rotations[..., 1, 0] - rotations[..., 0, 1]], axis=-1) / 2.0
    angle = tf.atan2(tf.norm(axis, axis=-1), cos) * (180.0 / math.pi)
    return tf.reduce_mean(angle / tf.abs(tf.constant(temporal_offsets, tf.float32)))


def all_finite(tensors: Sequence[tf.Tensor | None]) -> tf.Tensor:
    """Scalar bool: every given tensor (Nones skipped) is finite everywhere."""
    checks = [tf.reduce_all(tf.math.is_finite(t)) for t in tensors if t is not None]
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)
