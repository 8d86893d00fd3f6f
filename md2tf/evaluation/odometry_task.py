"""The odometry task of ``md2tf.evaluate --task=odometry``: a pose network's snippet ATE on a split.

Reads a KITTI odometry split (``odom_NN``: ``<splits_dir>/odom/test_files_NN.txt`` and
``<data_dir>/poses/NN.txt``, or ``--split_file``/``--poses_file``), runs each model's pose network
over consecutive frame pairs (`predict_relative_poses`) and scores them with
`md2tf.evaluation.odometry.score_odometry`, beside a constant-velocity guess; with
``--pose_refine_steps`` also each pose refined by photometric alignment
(`md2tf.evaluation.pose_refinement`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf

from md2tf.data import splits
from md2tf.data.kitti_layout import image_path
from md2tf.data.poses import read_poses_file
from md2tf.data.splits import read_split
from md2tf.deploy.images import load_image_rgb, resize_rgb
from md2tf.evaluation.odometry import (
    OdometryScores,
    constant_velocity_poses,
    relative_from_global,
    score_odometry,
)
from md2tf.evaluation.pose_refinement import align_pairs
from md2tf.evaluation.report import write_outputs
from md2tf.evaluation.sources import kitti_test_intrinsics
from md2tf.geometry import pose_to_matrix
from md2tf.models.checkpoint import load_models
from md2tf.progress import Progress


def consecutive_pairs(frames: Iterable[np.ndarray], batch_size: int,
                      progress: Callable[[int], None] | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of consecutive frame pairs, streamed: a sequence never has to fit in memory.

    Args:
      frames: iterable of N float32 ``[H, W, C]`` images.
      batch_size: pairs per batch.
      progress: optional callable ``progress(i)`` per pair.

    Yields:
      ``(earlier, later)``, float32 ``[B, H, W, C]`` each: frames ``i`` and ``i + 1`` of N-1 pairs in order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    earlier, later, previous, count = [], [], None, 0
    for frame in frames:
        frame = np.asarray(frame, np.float32)
        if previous is not None:
            earlier.append(previous)
            later.append(frame)
            if progress is not None:
                progress(count)
            count += 1
            if len(earlier) == batch_size:
                yield np.stack(earlier), np.stack(later)
                earlier, later = [], []
        previous = frame
    if earlier:
        yield np.stack(earlier), np.stack(later)


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
    out = []
    for earlier, later in consecutive_pairs(frames, batch_size, progress):
        axis_angle, translation = pose_fn(np.concatenate([earlier, later], axis=-1))
        out.append(np.asarray(pose_to_matrix(axis_angle, translation, invert=False), np.float64))
    if not out:
        raise ValueError("need at least 2 frames for pose evaluation")
    return np.concatenate(out, axis=0)


def network_depth(depth_net) -> Callable[[np.ndarray], tf.Tensor]:
    """``images [B, H, W, 3] float32 in [0, 1] -> float32 depth [B, H, W, 1]`` of a `md2tf.models.DepthNet`
    (its scale-0 disparity through ``disp_to_depth``, inference mode): `refine_relative_poses`' depth."""
    def depth_fn(images):
        return depth_net.disp_to_depth(tf.cast(depth_net(images, training=False)[0], tf.float32))[1]

    return depth_fn


def refine_relative_poses(depth_fn: Callable[[np.ndarray], np.ndarray], frames: Iterable[np.ndarray],
                          poses: np.ndarray, K_normalized: np.ndarray, steps: int, learning_rate: float,
                          batch_size: int = 8, progress: Callable[[int], None] | None = None,
                          length_only: bool = False) -> np.ndarray:
    """`predict_relative_poses`' poses refined by photometric alignment (`pose_refinement.align_pairs`).

    Args:
      depth_fn: ``images [B, H, W, 3] float32 in [0, 1] -> depth [B, H, W, 1]`` in the poses' units
        (`network_depth` of the run's depth network).
      frames: the N images the poses came from, float32 ``[H, W, 3]`` in [0, 1].
      poses: ``[N-1, 4, 4]`` ``next_from_previous``.
      K_normalized, steps, learning_rate, length_only: as `pose_refinement.align_pairs`.
      batch_size: pairs aligned together.
      progress: optional callable ``progress(i)`` per pair.

    Returns:
      ``[N-1, 4, 4]`` float64 refined ``next_from_previous``.

    Raises:
      ValueError: if ``poses`` is not ``[N-1, 4, 4]`` for the N frames, or ``steps`` < 0.
    """
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not len(poses):
        raise ValueError(f"poses must have shape [N-1, 4, 4] with N > 1, got {list(poses.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if steps == 0:
        return poses
    out, done = [], 0
    for earlier, later in consecutive_pairs(frames, batch_size, progress):
        if done + len(earlier) > len(poses):
            raise ValueError(f"poses has {len(poses)} pairs, but more than {len(poses) + 1} frames came")
        out.append(align_pairs(earlier, later, depth_fn(earlier), K_normalized,
                               poses[done:done + len(earlier)], steps, learning_rate, length_only))
        done += len(earlier)
    if done != len(poses):
        raise ValueError(f"poses has {len(poses)} pairs but the frames give {done}")
    return np.concatenate(out, axis=0)


def odometry_files(config) -> tuple[str, str]:
    splits_dir = splits.splits_dir(config.data_dir, config.splits_dir)
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
    gt_poses = read_poses_file(poses_file)
    results = {}
    names = config.names or tuple(os.path.basename(os.path.normpath(m)) for m in config.models)
    # One sequence, one camera: the K of its first frame.
    K = kitti_test_intrinsics(config.data_dir, split_file, config.image_ext)[0] if config.pose_refine_steps else None
    for model_path, name in zip(config.models, names):
        experiment, depth_net, pose_net = load_models(model_path)
        if pose_net is None:
            raise ValueError(f"--models {model_path}: this run has no pose network (stereo-only training)")
        if experiment.train.pose_source == "rotation":
            raise ValueError(f"--models {model_path}: this run's pose network learned the translation "
                             "alone (--pose_source=rotation took the rotations from known poses), so "
                             "its rotations are untrained: there is no odometry to score")
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
        if config.pose_refine_steps:
            row = f"{name} (refined{', length only' if config.pose_refine_length_only else ''})"
            with Progress(len(indices) - 1, row, unit="pair", enabled=config.progress) as bar:
                refined = refine_relative_poses(network_depth(depth_net), frames(), pred, K, config.pose_refine_steps,
                                                config.pose_refine_lr, config.batch_size, progress=bar,
                                                length_only=config.pose_refine_length_only)
            results[row] = score_odometry(gt_poses[indices], refined, config.snippet_length)
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
