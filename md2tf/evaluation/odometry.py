"""Pose-network evaluation: ATE on 5-frame snippets (Zhou et al. 2017; Monodepth2 supp. Table 4).

Convention. Every relative pose here is ``next_from_previous`` (4x4): it maps points in camera i into
camera i+1. That is what the pose network gives, uninverted, for the pair ``[I_i, I_{i+1}]`` (the
``source_from_target`` of a source at offset +1, see `md2tf.geometry`), and what
`relative_from_global` makes from KITTI poses (``world_from_camera_i``).

Snippet trajectory. As the reference, the "positions" of a snippet are the translations of the running
products ``I, M_i, M_i M_{i+1}, ...`` of its relative poses, for GT and prediction alike. The
prediction is then aligned to the GT by its first position and a least-squares scale, and
``ate = sqrt(sum ||error||^2) / N`` over the snippet's N positions (as the reference
implementation computes the supplementary's odometry scores).
The reference scores a snippet starting at every frame, the last ones being shorter: kept as default.

This module is the NumPy maths; `md2tf.evaluation.odometry_task` runs a pose network over a split
and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from md2tf.data.poses import source_from_target

#: Frames per snippet (Zhou et al., "Unsupervised Learning of Depth and Ego-Motion from Video", 2017).
SNIPPET_LENGTH = 5


def relative_from_global(world_from_camera: np.ndarray) -> np.ndarray:
    """``next_from_previous`` relative poses of a trajectory.

    Args:
      world_from_camera: ``[N, 4, 4]`` camera poses.

    Returns:
      ``[N-1, 4, 4]``: entry i = ``inv(world_from_camera[i+1]) @ world_from_camera[i]``.
    """
    poses = np.asarray(world_from_camera, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) < 2:
        raise ValueError(f"world_from_camera must be [N>=2, 4, 4], got shape {poses.shape}")
    return source_from_target(poses, np.arange(len(poses) - 1), np.arange(1, len(poses)))


def snippet_positions(relative: np.ndarray) -> np.ndarray:
    """Positions of a snippet: translations of the running products of its relative poses.

    Args:
      relative: ``[K, 4, 4]`` consecutive relative poses.

    Returns:
      ``[K+1, 3]``: the origin, then the translation of ``M_0``, ``M_0 M_1``, ...
    """
    current = np.eye(4)
    positions = [current[:3, 3].copy()]
    for pose in relative:
        current = current @ pose
        positions.append(current[:3, 3].copy())
    return np.stack(positions)


def aligned_ate(gt_xyz: np.ndarray, pred_xyz: np.ndarray) -> float:
    """ATE of one snippet after first-position alignment and a least-squares scale.

    Args:
      gt_xyz: ``[N, 3]`` GT positions.
      pred_xyz: ``[N, 3]`` predicted positions.

    Returns:
      ``sqrt(sum ||s * (pred + gt_0 - pred_0) - gt||^2) / N`` with the scale ``s`` minimising it
      (``s = <gt, p> / <p, p>``, p the offset prediction), in the GT's units.
    """
    gt_xyz = np.asarray(gt_xyz, np.float64)
    pred_xyz = np.asarray(pred_xyz, np.float64)
    if gt_xyz.shape != pred_xyz.shape or gt_xyz.ndim != 2 or gt_xyz.shape[1] != 3:
        raise ValueError(f"positions must both be [N, 3], got {gt_xyz.shape} and {pred_xyz.shape}")
    pred = pred_xyz + (gt_xyz[0] - pred_xyz[0])
    denom = np.sum(pred**2)
    scale = np.sum(gt_xyz * pred) / denom if denom > 0 else 0.0
    error = scale * pred - gt_xyz
    return float(np.sqrt(np.sum(error**2)) / gt_xyz.shape[0])


def constant_velocity_poses(gt_relative: np.ndarray) -> np.ndarray:
    """The constant-velocity guess: every step is the sequence's mean GT translation, no rotation.

    A baseline for `snippet_ates`: after each snippet's scale it is exact wherever the GT moves at a
    constant speed and heading, so a pose network shows its worth on the snippets that do not.

    Args:
      gt_relative: ``[N-1, 4, 4]`` GT ``next_from_previous`` poses.

    Returns:
      ``[N-1, 4, 4]`` poses.
    """
    gt_relative = np.asarray(gt_relative, np.float64)
    guess = np.tile(np.eye(4), (len(gt_relative), 1, 1))
    guess[:, :3, 3] = gt_relative[:, :3, 3].mean(0)
    return guess


#: The GT motion of a snippet (`snippet_motions`).
SNIPPET_MOTIONS = ("stopped", "steady", "changing")
#: GT steps shorter than this (GT units per frame; metres on KITTI and the synthetic world) are a stop.
STOPPED_BELOW = 0.05


def snippet_motions(gt_relative: np.ndarray, snippet_length: int = SNIPPET_LENGTH,
                    full_snippets_only: bool = False, stopped_below: float = STOPPED_BELOW,
                    speed_tolerance: float = 0.01) -> np.ndarray:
    """The GT motion of every snippet, in `snippet_ates`' order: one of `SNIPPET_MOTIONS`.

    Args:
      gt_relative: ``[N-1, 4, 4]`` GT ``next_from_previous`` poses.
      snippet_length, full_snippets_only: as `snippet_ates`.
      stopped_below: a snippet whose every step is shorter than this (GT units per frame) is
        ``stopped``.
      speed_tolerance: a moving snippet whose step lengths span less than this is ``steady``,
        otherwise ``changing``.

    Returns:
      ``[num_snippets]`` strings.
    """
    speed = np.linalg.norm(np.asarray(gt_relative, np.float64)[:, :3, 3], axis=1)
    steps = snippet_length - 1
    starts = range(len(speed) - steps + 1) if full_snippets_only else range(len(speed))
    kinds = []
    for i in starts:
        window = speed[i : i + steps]
        if window.max() < stopped_below:
            kinds.append("stopped")
        else:
            kinds.append("steady" if np.ptp(window) < speed_tolerance else "changing")
    return np.asarray(kinds)


@dataclass
class OdometryScores:
    """ATE statistics over snippets (units of the GT poses, metres on KITTI).

    ``by_motion``: the mean ATE of the snippets of each GT motion (`snippet_motions`) present, with
    their count: ``{"steady": (ate_mean, count), ...}``.
    """

    ate_mean: float
    ate_std: float
    num_snippets: int
    snippet_length: int
    by_motion: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def snippet_ates(
    gt_relative: np.ndarray, pred_relative: np.ndarray, snippet_length: int = SNIPPET_LENGTH,
    full_snippets_only: bool = False,
) -> np.ndarray:
    """ATE of every snippet of a sequence.

    Args:
      gt_relative: ``[N-1, 4, 4]`` GT ``next_from_previous`` poses.
      pred_relative: ``[N-1, 4, 4]`` predicted poses, same convention and order.
      snippet_length: frames per snippet (5).
      full_snippets_only: score only snippets with ``snippet_length`` frames; False also scores the
        shorter snippets starting near the end, as the reference does.

    Returns:
      ``[num_snippets]`` ATEs.

    Raises:
      ValueError: if the counts differ or shapes are wrong.
    """
    gt_relative = np.asarray(gt_relative, np.float64)
    pred_relative = np.asarray(pred_relative, np.float64)
    if gt_relative.shape != pred_relative.shape or gt_relative.ndim != 3 or gt_relative.shape[1:] != (4, 4):
        raise ValueError(
            f"relative poses must be [N-1, 4, 4] with matching counts: GT {gt_relative.shape}, "
            f"predicted {pred_relative.shape}"
        )
    if snippet_length < 2:
        raise ValueError(f"snippet_length must be >= 2, got {snippet_length}")
    steps = snippet_length - 1
    count = len(gt_relative)
    starts = range(count - steps + 1) if full_snippets_only else range(count)
    ates = [
        aligned_ate(snippet_positions(gt_relative[i : i + steps]), snippet_positions(pred_relative[i : i + steps]))
        for i in starts
    ]
    return np.asarray(ates, np.float64)


def score_odometry(
    world_from_camera: np.ndarray, pred_relative: np.ndarray, snippet_length: int = SNIPPET_LENGTH,
    full_snippets_only: bool = False,
) -> OdometryScores:
    """ATE mean and std of predicted relative poses against a GT trajectory.

    Args:
      world_from_camera: ``[N, 4, 4]`` GT poses of the N frames.
      pred_relative: ``[N-1, 4, 4]`` predicted ``next_from_previous`` poses of consecutive pairs.
      snippet_length, full_snippets_only: see `snippet_ates`.

    Returns:
      `OdometryScores`.
    """
    gt_relative = relative_from_global(world_from_camera)
    if len(pred_relative) != len(gt_relative):
        raise ValueError(
            f"got {len(pred_relative)} predicted poses but the GT trajectory has {len(world_from_camera)} "
            f"frames ({len(gt_relative)} pairs)"
        )
    ates = snippet_ates(gt_relative, pred_relative, snippet_length, full_snippets_only)
    motions = snippet_motions(gt_relative, snippet_length, full_snippets_only)
    by_motion = {kind: (float(ates[motions == kind].mean()), int(np.sum(motions == kind)))
                 for kind in SNIPPET_MOTIONS if np.any(motions == kind)}
    return OdometryScores(float(np.mean(ates)), float(np.std(ates)), int(ates.size), snippet_length, by_motion)
