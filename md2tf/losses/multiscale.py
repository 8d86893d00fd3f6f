"""The full Monodepth2 objective: one per-scale function and one loop over scales (paper Sec. 3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import tensorflow as tf

from md2tf import geometry
from md2tf.config import LossConfig
from md2tf.geometry._checks import check_same_batch, check_same_spatial, check_shape
from md2tf.losses.automask import min_reprojection
from md2tf.losses.photometric import photometric_error
from md2tf.losses.smoothness import edge_aware_smoothness

#: ``sigmoid disparity [B, h, w, 1] -> (scaled disparity, depth)``, each ``[B, h, w, 1]``: the depth
#: network's output contract (``md2tf.models.DepthNet.disp_to_depth``), which owns the depth range.
DispToDepth = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


class LossOutputs(NamedTuple):
    """What `monodepth2_loss` returns (per-scale entries are tuples indexed by scale s).

    Attributes:
      total: scalar, ``sum_s loss_s / n_scales`` with
        ``loss_s = reprojection[s] + smoothness_weight * smoothness[s] / 2^s``.
      reprojection: per-scale scalars, ``mean(min_error[s])``.
      smoothness: per-scale scalars, the *unweighted* edge-aware smoothness of ``disparities[s]``.
      automask: per-scale ``[B, Hs, Ws, 1]``, 1.0 where a warped source won the per-pixel minimum.
      warped: per-scale ``[B, S, Hs, Ws, 3]`` warped sources.
      min_error: per-scale ``[B, Hs, Ws, 1]`` the per-pixel error that is optimised.
    ``Hs, Ws`` are the full resolution H, W with ``full_res_multiscale`` and ``H/2^s, W/2^s`` otherwise.
    """

    total: tf.Tensor
    reprojection: tuple[tf.Tensor, ...]
    smoothness: tuple[tf.Tensor, ...]
    automask: tuple[tf.Tensor, ...]
    warped: tuple[tf.Tensor, ...]
    min_error: tuple[tf.Tensor, ...]

    def scalars(self) -> dict[str, tf.Tensor]:
        """``{"total", "reprojection/s0", "smoothness/s0", ...}`` for logging."""
        out = {"total": self.total}
        for s, (r, m) in enumerate(zip(self.reprojection, self.smoothness)):
            out[f"reprojection/s{s}"] = r
            out[f"smoothness/s{s}"] = m
        return out


def _per_source_errors(pred: tf.Tensor, flat_target: tf.Tensor, batch: tf.Tensor, num_sources: tf.Tensor,
                       config: LossConfig) -> tf.Tensor:
    """``[B*S, h, w, C]`` images (row ``b * S + k`` = source k of sample b) -> errors ``[B, h, w, S]``."""
    err = photometric_error(pred, flat_target, config.ssim_weight, config.use_ssim)
    shape = tf.shape(err)
    err = tf.reshape(err, tf.stack([batch, num_sources, shape[1], shape[2]]))
    return tf.transpose(err, [0, 2, 3, 1])


def identity_errors(target: tf.Tensor, sources: tf.Tensor, config: LossConfig) -> tf.Tensor:
    """Photometric errors of the *unwarped* sources against the target (auto-masking), no noise.

    In full-resolution multi-scale these are the same at every scale, so `monodepth2_loss` computes
    them once per step and passes them to every `scale_reprojection`.

    Args:
      target: ``[B, h, w, 3]`` clean target image.
      sources: ``[B, S, h, w, 3]`` clean source images.
      config: the loss options (``ssim_weight``, ``use_ssim``).

    Returns:
      ``[B, h, w, S]`` errors (constants: wrapped in ``stop_gradient``).
    """
    shape = tf.shape(sources)
    batch, num_sources, h, w = shape[0], shape[1], shape[2], shape[3]
    channels = sources.shape[-1] if sources.shape[-1] is not None else shape[4]
    flat_sources = tf.reshape(sources, tf.stack([batch * num_sources, h, w, channels]))
    flat_target = tf.repeat(target, num_sources, axis=0)
    return tf.stop_gradient(_per_source_errors(flat_sources, flat_target, batch, num_sources, config))


def scale_reprojection(
    depth: tf.Tensor,
    target: tf.Tensor,
    sources: tf.Tensor,
    source_from_target: tf.Tensor,
    intrinsics: tf.Tensor,
    config: LossConfig,
    noise_seed: tf.Tensor | None = None,
    identity: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Reprojection part of one scale: warp every source with ``depth`` and combine.

    All inputs share one resolution ``h x w`` (full resolution, or the scale's own for "v1").

    Args:
      depth: ``[B, h, w, 1]`` depth of the target view (training units), from the network's
        ``disp_to_depth``.
      target: ``[B, h, w, 3]`` clean target image.
      sources: ``[B, S, h, w, 3]`` clean source images (temporal and/or stereo).
      source_from_target: ``[B, S, 4, 4]`` transforms, same source order.
      intrinsics: ``[B, 3, 3]`` K of the ``h x w`` images (pixels).
      config: the loss options.
      noise_seed: int32 ``[2]`` seed of the identity tie-break noise, or None.
      identity: optional precomputed `identity_errors` of ``(target, sources)`` ``[B, h, w, S]``
        (without noise), reused when ``config.automask``; None computes them here.

    Returns:
      ``(min_error [B, h, w, 1], automask [B, h, w, 1], warped [B, S, h, w, 3])``.
    """
    shape = tf.shape(sources)
    batch, num_sources, h, w = shape[0], shape[1], shape[2], shape[3]
    channels = sources.shape[-1] if sources.shape[-1] is not None else shape[4]
    inv_k = geometry.invert_intrinsics(intrinsics)

    # Fold the S sources into the batch: row b * S + k is source k of sample b.
    flat_sources = tf.reshape(sources, tf.stack([batch * num_sources, h, w, channels]))
    flat_poses = tf.reshape(source_from_target, tf.stack([batch * num_sources, 4, 4]))
    flat_target = tf.repeat(target, num_sources, axis=0)
    warped = geometry.warp(
        flat_sources,
        tf.repeat(depth, num_sources, axis=0),
        flat_poses,
        tf.repeat(intrinsics, num_sources, axis=0),
        tf.repeat(inv_k, num_sources, axis=0),
    )

    if config.automask and identity is None:
        identity = identity_errors(target, sources, config)
    min_error, automask = min_reprojection(
        _per_source_errors(warped, flat_target, batch, num_sources, config),
        identity if config.automask else None,
        use_min=config.min_reprojection,
        noise_std=config.identity_noise_std,
        noise_seed=noise_seed,
    )
    warped = tf.reshape(warped, tf.shape(sources))
    return min_error, automask, warped


def _check_inputs(disparities, target, sources, source_from_target, intrinsics, config) -> None:
    if len(disparities) == 0:
        raise ValueError("disparities must hold one [B, H/2^s, W/2^s, 1] tensor per scale, got none")
    n = len(disparities)
    needed_sources = 1 if config.full_res_multiscale else n
    if len(target) < n:
        raise ValueError(f"target must hold {n} scales [B, H/2^s, W/2^s, 3], got {len(target)}")
    if len(sources) < needed_sources:
        raise ValueError(
            f"sources must hold {needed_sources} scale(s) [B, S, H/2^s, W/2^s, 3], got {len(sources)}"
        )
    check_shape(source_from_target, "source_from_target", "[B, S, 4, 4]", rank=4, dims={-1: 4, -2: 4})
    check_shape(intrinsics, "intrinsics", "[B, 3, 3]", rank=3, dims={-1: 3, -2: 3})
    for s in range(n):
        check_shape(disparities[s], f"disparities[{s}]", "[B, H/2^s, W/2^s, 1]", rank=4, dims={-1: 1})
        check_shape(target[s], f"target[{s}]", "[B, H/2^s, W/2^s, 3]", rank=4)
        check_same_spatial(f"disparities[{s}]", disparities[s], f"target[{s}]", target[s])
        check_same_batch((f"disparities[{s}]", disparities[s]), (f"target[{s}]", target[s]))
    for s in range(needed_sources):
        check_shape(sources[s], f"sources[{s}]", "[B, S, H/2^s, W/2^s, 3]", rank=5)
        src = sources[s]
        if src.shape.rank == 5:
            check_same_spatial(f"sources[{s}][:, 0]", src[:, 0], f"target[{s}]", target[s])
        s_static, p_static = src.shape[1], source_from_target.shape[1]
        if s_static is not None and p_static is not None and s_static != p_static:
            raise ValueError(
                f"source_from_target [B, S, 4, 4] has S={p_static} but sources[{s}] has S={s_static}"
            )
    check_same_batch(
        ("disparities[0]", disparities[0]),
        ("sources[0]", sources[0]),
        ("source_from_target", source_from_target),
        ("intrinsics", intrinsics),
    )


def monodepth2_loss(
    disparities: Sequence[tf.Tensor],
    target: Sequence[tf.Tensor],
    sources: Sequence[tf.Tensor],
    source_from_target: tf.Tensor,
    intrinsics: tf.Tensor,
    config: LossConfig,
    noise_seed: tf.Tensor | None = None,
    *,
    disp_to_depth: DispToDepth,
) -> LossOutputs:
    """The Monodepth2 self-supervised loss over all scales (paper Sec. 3, Eqs. 1-5).

    For each scale s (one function, one loop):

    * full-resolution multi-scale (default): ``disparities[s]`` is resized to H x W with
      ``tf.image.resize(..., "bilinear")`` (half-pixel centres, no antialias); ``sources[0]`` are
      warped into the target view with scale-0 ``intrinsics`` and compared with ``target[0]``.
    * "v1" (``full_res_multiscale=False``): each scale warps ``sources[s]`` at its own resolution with
      K rows 0 and 1 divided by 2^s and compares with ``target[s]``.
    * The per-pixel error is combined by `min_reprojection` (minimum or average over sources, unwarped
      sources competing when ``automask``; stereo sources take part like temporal ones).
    * ``loss_s = mean(min_error) + smoothness_weight * edge_aware_smoothness(disparities[s],
      target[s]) / 2^s`` (native resolution); ``total = sum_s loss_s / n_scales``.

    Args:
      disparities: per scale s = 0..n-1, ``[B, H/2^s, W/2^s, 1]`` sigmoid outputs.
      target: clean target pyramid (``Batch.target``), ``[B, H/2^s, W/2^s, 3]`` per scale (>= n).
      sources: clean source pyramid (``Batch.sources``), ``[B, S, H/2^s, W/2^s, 3]`` per scale; only
        scale 0 is read unless ``full_res_multiscale=False``.
      source_from_target: ``[B, S, 4, 4]`` maps target-camera points into each source camera (same
        order as ``sources``; for stereo, ``Batch.stereo_source_from_target``).
      intrinsics: ``[B, 3, 3]`` K in pixels of the scale-0 images.
      config: `LossConfig` options.
      noise_seed: int32 ``[2]`` seed of the identity tie-break noise (folded with the scale index, so
        every scale draws different noise); None = no noise. Seed it with the global step for
        reproducible, resumable runs.
      disp_to_depth: the depth network's conversion (`DispToDepth`, e.g.
        ``depth_net.disp_to_depth``): the loss warps with the depth range the network owns.

    Returns:
      `LossOutputs`.

    Raises:
      ValueError: on missing scales, wrong shapes, or mismatched batch / source counts.
    """
    disparities = [tf.convert_to_tensor(d) for d in disparities]
    dtype = disparities[0].dtype if disparities else tf.float32
    target = [tf.convert_to_tensor(t, dtype=dtype) for t in target]
    sources = [tf.convert_to_tensor(x, dtype=dtype) for x in sources]
    source_from_target = tf.convert_to_tensor(source_from_target, dtype=dtype)
    intrinsics = tf.convert_to_tensor(intrinsics, dtype=dtype)
    _check_inputs(disparities, target, sources, source_from_target, intrinsics, config)
    if noise_seed is not None:
        noise_seed = tf.cast(noise_seed, tf.int32)
    full_size = tf.shape(target[0])[1:3]
    # Full-res multi-scale: every scale compares the same unwarped sources with the same target, so
    # the identity errors are computed once (only the per-scale tie-break noise differs).
    shared_identity = None
    if config.full_res_multiscale and config.automask:
        shared_identity = identity_errors(target[0], sources[0], config)

    totals, reprojection, smoothness, automasks, warped_all, min_errors = [], [], [], [], [], []
    for s, disp in enumerate(disparities):
        if config.full_res_multiscale:
            disp_warp = disp if s == 0 else tf.cast(tf.image.resize(disp, full_size, "bilinear"), dtype)
            images, srcs, k = target[0], sources[0], intrinsics
        else:
            disp_warp = disp
            images, srcs, k = target[s], sources[s], geometry.scale_intrinsics_to_level(intrinsics, s)
        seed = None
        if noise_seed is not None:
            seed = tf.random.experimental.stateless_fold_in(noise_seed, s)
        _, depth = disp_to_depth(disp_warp)
        min_error, automask, warped = scale_reprojection(
            depth, images, srcs, source_from_target, k, config, seed, identity=shared_identity
        )
        reproj = tf.reduce_mean(min_error)
        smooth = edge_aware_smoothness(disp, target[s])
        totals.append(reproj + config.smoothness_weight * smooth / (2**s))
        reprojection.append(reproj)
        smoothness.append(smooth)
        automasks.append(automask)
        warped_all.append(warped)
        min_errors.append(min_error)

    return LossOutputs(
        total=tf.add_n(totals) / len(totals),
        reprojection=tuple(reprojection),
        smoothness=tuple(smoothness),
        automask=tuple(automasks),
        warped=tuple(warped_all),
        min_error=tuple(min_errors),
    )
