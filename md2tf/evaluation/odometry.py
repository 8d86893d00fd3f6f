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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from md2tf.data.kitti import image_path
from md2tf.data.splits import read_split
from md2tf.deploy.images import load_image_rgb, resize_rgb
from md2tf.evaluation.report import write_outputs
from md2tf.geometry import pose_to_matrix
from md2tf.models.checkpoint import load_models
from md2tf.progress import Progress

#: Frames per snippet (Zhou et al., "Unsupervised Learning of Depth and Ego-Motion from Video", 2017).
SNIPPET_LENGTH = 5


def read_kitti_poses(path: str) -> np.ndarray:
    """Reads a KITTI odometry pose file (12 numbers per line: row-major 3x4 ``world_from_camera``).

    Args:
      path: e.g. ``<data_dir>/poses/09.txt`` or a synthetic drive's ``poses.txt``.

    Returns:
      ``[N, 4, 4]`` float64.

    Raises:
      ValueError: if the file is missing or a line does not hold 12 numbers.
    """
    if not os.path.isfile(path):
        raise ValueError(f"pose file not found: {path}")
    poses = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            values = line.split()
            if len(values) != 12:
                raise ValueError(f"{path}:{number}: expected 12 numbers (3x4 pose), got {len(values)}")
            pose = np.eye(4)
            pose[:3, :] = np.array(values, np.float64).reshape(3, 4)
            poses.append(pose)
    if not poses:
        raise ValueError(f"pose file is empty: {path}")
    return np.stack(poses)


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
    return np.linalg.inv(poses[1:]) @ poses[:-1]


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


def speed_agreement(pred_relative: np.ndarray, gt_relative: np.ndarray,
                    moving_above: float = STOPPED_BELOW) -> dict[str, float]:
    """How well a pose network's per-frame speed follows the GT's, beyond one scale.

    A snippet's ATE removes one scale per snippet, so what it measures of the speed is how the
    predicted step lengths vary *within* a snippet. These two numbers measure that over the whole
    sequence.

    Args:
      pred_relative, gt_relative: ``[N, 4, 4]`` ``next_from_previous`` poses of the same pairs.
      moving_above: pairs whose GT step is at most this long (GT units per frame) are left out.

    Returns:
      ``speed_corr``: the correlation of predicted and GT step lengths over the moving pairs;
      ``speed_change_corr``: the same for the change of the step length from one pair to the next
      (both pairs moving), i.e. whether the network sees accelerations. NaN where a side is constant
      or fewer than two values are left.

    Raises:
      ValueError: if the two are not ``[N, 4, 4]`` arrays of the same ``N``.
    """
    pred_relative, gt_relative = np.asarray(pred_relative, np.float64), np.asarray(gt_relative, np.float64)
    if pred_relative.ndim != 3 or pred_relative.shape[1:] != (4, 4) or pred_relative.shape != gt_relative.shape:
        raise ValueError(f"expected two [N, 4, 4] pose arrays of the same N, got {pred_relative.shape} "
                         f"predicted and {gt_relative.shape} GT")
    pred = np.linalg.norm(pred_relative[:, :3, 3], axis=1)
    gt = np.linalg.norm(gt_relative[:, :3, 3], axis=1)
    moving = gt > moving_above
    both = moving[1:] & moving[:-1]

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])

    return {"speed_corr": corr(pred[moving], gt[moving]),
            "speed_change_corr": corr(np.diff(pred)[both], np.diff(gt)[both])}


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


def predict_relative_poses(pose_fn, frames, batch_size: int = 8, progress=None) -> np.ndarray:
    """Runs a pose network over consecutive frame pairs.

    Args:
      pose_fn: callable ``pair [B, H, W, 6] float32 in [0, 1] (earlier frame first) ->
        (axis_angle [B, 3], translation [B, 3])``, e.g. an ``md2tf.models.PoseNet``.
      frames: iterable of N images, float32 ``[H, W, 3]`` in [0, 1] at the network size.
      batch_size: pairs per call.
      progress: optional callable ``progress(i)`` per pair.

    Returns:
      ``[N-1, 4, 4]`` ``next_from_previous`` poses (uninverted ``pose_to_matrix``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out, pairs, previous, count = [], [], None, 0

    def flush() -> None:
        axis_angle, translation = pose_fn(np.stack(pairs).astype(np.float32))
        out.append(np.asarray(pose_to_matrix(axis_angle, translation, invert=False), np.float64))
        pairs.clear()

    for frame in frames:  # streamed: a sequence never has to fit in memory
        frame = np.asarray(frame, np.float32)
        if previous is not None:
            pairs.append(np.concatenate([previous, frame], axis=-1))
            if progress is not None:
                progress(count)
            count += 1
            if len(pairs) == batch_size:
                flush()
        previous = frame
    if pairs:
        flush()
    if not out:
        raise ValueError("need at least 2 frames for pose evaluation")
    return np.concatenate(out, axis=0)


# --- the odometry task of md2tf.evaluate -----------------------------------------------------------


def odometry_files(config) -> tuple[str, str]:
    splits_dir = config.resolved_splits_dir
    split_file, poses_file = config.split_file, config.poses_file
    if config.eval_split.startswith("odom_") and config.eval_split[5:].isdigit():
        seq = int(config.eval_split[5:])
        split_file = split_file or os.path.join(splits_dir, "odom", f"test_files_{seq:02d}.txt")
        poses_file = poses_file or os.path.join(config.data_dir, "poses", f"{seq:02d}.txt")
    if not split_file or not poses_file:
        raise ValueError(f"--eval_split {config.eval_split!r} is not odom_NN: give --split_file and --poses_file")
    return split_file, poses_file


def odometry_frames(data_dir: str, split_file: str, height: int, width: int, image_ext: str = ".jpg"):
    """Frame indices and a generator of float ``[H, W, 3]`` images: every split line, then the frame
    after the last line (each line is the first frame of a pair, as the reference's ``[0, 1]`` pairs)."""
    entries = read_split(split_file)
    if not entries:
        raise ValueError(f"{split_file}: no frames")
    paths = [image_path(data_dir, e, ext=image_ext) for e in entries]
    paths.append(image_path(data_dir, entries[-1], offset=1, ext=image_ext))
    indices = [e.frame_index for e in entries] + [entries[-1].frame_index + 1]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{split_file}: {len(missing)} image(s) missing, e.g. {missing[0]}")

    def frames():
        for p in paths:
            yield resize_rgb(load_image_rgb(p), height, width).astype(np.float32) / 255.0

    return np.asarray(indices), frames


#: The row of the constant-velocity guess (`constant_velocity_poses`) in the odometry report.
CONSTANT_VELOCITY = "constant velocity (GT)"


def _motion_ate(scores: OdometryScores, kind: str) -> str:
    return f"{scores.by_motion[kind][0]:.4f}" if kind in scores.by_motion else "-"


def run_odometry_evaluation(config) -> str:
    """ATE of the pose network of every ``config.models`` run; returns the console report."""
    split_file, poses_file = odometry_files(config)
    gt_poses = read_kitti_poses(poses_file)
    results = {}
    names = config.names or tuple(os.path.basename(os.path.normpath(m)) for m in config.models)
    for model_path, name in zip(config.models, names):
        experiment, _, pose_net = load_models(model_path)
        if pose_net is None:
            raise ValueError(f"--models {model_path}: this run has no pose network (stereo-only training)")
        indices, frames = odometry_frames(config.data_dir, split_file, experiment.data.height,
                                          experiment.data.width, config.image_ext)
        if indices.max() >= len(gt_poses):
            raise ValueError(f"{poses_file} has {len(gt_poses)} poses but {split_file} needs frame {indices.max()}")

        def pose_fn(pairs, net=pose_net):
            axis_angle, translation = net(pairs, training=False)
            return axis_angle, translation

        with Progress(len(indices) - 1, name, unit="pair", enabled=config.progress) as bar:
            pred = predict_relative_poses(pose_fn, frames(), config.batch_size, progress=bar)
        results[name] = score_odometry(gt_poses[indices], pred, config.snippet_length)
    if results:  # the reference a pose network has to beat where the GT speed changes
        results[CONSTANT_VELOCITY] = score_odometry(
            gt_poses[indices], constant_velocity_poses(relative_from_global(gt_poses[indices])),
            config.snippet_length)
    lines = [f"{'model':<28} {'ATE mean':>10} {'ATE std':>10} {'snippets':>9} {'steady':>8} {'changing':>9}"]
    lines += [f"{n:<28} {s.ate_mean:10.4f} {s.ate_std:10.4f} {s.num_snippets:9d} "
              f"{_motion_ate(s, 'steady'):>8} {_motion_ate(s, 'changing'):>9}" for n, s in results.items()]
    counts = ", ".join(f"{k} {c}" for k, (_, c) in next(iter(results.values())).by_motion.items()) if results else ""
    lines.append(f"snippets by GT motion: {counts}; '{CONSTANT_VELOCITY}' uses the GT's mean step")
    markdown = "| model | ATE | ATE, steady speed | ATE, speed changes |\n|---|---|---|---|\n" + "\n".join(
        f"| {n} | {s.ate_mean:.3f} ± {s.ate_std:.3f} | {_motion_ate(s, 'steady')} | {_motion_ate(s, 'changing')} |"
        for n, s in results.items())
    payload = json.dumps({"task": "odometry", "split_file": split_file, "poses_file": poses_file,
                          "models": {n: s.to_dict() for n, s in results.items()}}, indent=2)
    write_outputs(config, "\n".join(lines), markdown, payload)
    return "\n".join(lines) + "\n\n" + markdown
