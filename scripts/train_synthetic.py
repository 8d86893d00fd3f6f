"""Does it learn? Train on the synthetic world and score it against two baselines.

    python scripts/train_synthetic.py --run_dir=runs/synthetic            # train (~30 min CPU) + score
    python scripts/train_synthetic.py --run_dir=runs/synthetic --skip_train  # score an existing run
    python scripts/train_synthetic.py --run_dir=runs/ablation --ablation --num_epochs=3  # Table 2 rows
    python scripts/train_synthetic.py --mode=mono --run_dir=runs/mono_synthetic   # M, see docs/mono.md
    python scripts/train_synthetic.py --mode=mono --ablation --seeds=0,1 --num_epochs=3 \
        --mono_flags=configs/synthetic_mono_4drives.flags \
        --pretrain=runs/mono_synthetic/pretrain --run_dir=runs/ablation_m          # Table 2 in M

The default config is stereo (S); the ablation rows train mono+stereo (MS: frames 0, -1, +1 and the
stereo partner), because with a single source the minimum and the average reprojection coincide.

Scores on the synthetic world's test split (dense GT, per-image median scaling, depth clamped to
[1e-3, 80] m): the trained model, the same network untrained, and a "mean depth map" baseline (the
per-pixel mean of the training split's GT depth, predicted for every test image). A stereo-trained
run is also scored without median scaling at the stereo scale (depth x 5.4 = metres). Prints a
Markdown table and writes ``<run_dir>/synthetic_scores.json``.

``--mode=mono`` trains monocular (M) in two runs: ``configs/synthetic_mono_pretrain.flags`` (MS on
other drives, world seed 1: the stand-in for ImageNet pretraining) into ``<run_dir>/pretrain``, then
``configs/synthetic_mono.flags`` (pure M on a seed-0 world; ``--mono_flags`` for another config)
into ``<run_dir>/mono``, starting from the first run's depth and pose networks
(``--mono_init=networks``, the measured recipe) or from its encoders only with fresh decoders
(``--mono_init=encoders``, ``--encoder_init``). It scores the M run's depth as above and its pose
network on the test drive: forward motion vs GT (at the depth's median-scaling scale and after one
least-squares scale for the whole drive) and the 5-frame snippet ATE of ``md2tf.evaluate
--task=odometry`` against a constant-velocity guess. ``--curves`` keeps every epoch's checkpoint
(about 320 MB each, with the optimizer state) and scores each one (learning curves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The paper's Table 2 rows: (min_reprojection, automask, full_res_multiscale), each with the paper's
#: auto-masking from the first step (the M recipe's warm-up is not one of the paper's components).
ABLATION = {
    name: (*switches, "--automask_warmup_steps=0")
    for name, switches in {
        "baseline": ("--nomin_reprojection", "--noautomask", "--nofull_res_multiscale"),
        "+ min reprojection": ("--min_reprojection", "--noautomask", "--nofull_res_multiscale"),
        "+ auto-masking": ("--nomin_reprojection", "--automask", "--nofull_res_multiscale"),
        "+ full-res multi-scale": ("--nomin_reprojection", "--noautomask", "--full_res_multiscale"),
        "full": ("--min_reprojection", "--automask", "--full_res_multiscale"),
    }.items()
}
ABLATION_MODE = ("--frame_offsets=0,-1,1", "--use_stereo")  # MS
STEREO_FLAGS = "configs/synthetic.flags"
MONO_PRETRAIN_FLAGS = "configs/synthetic_mono_pretrain.flags"
MONO_FLAGS = "configs/synthetic_mono.flags"
#: ``--keep_checkpoints`` for ``--curves``: more than any recipe's epochs plus its step checkpoints.
KEEP_ALL = 100


def train(run_dir: str, extra: list[str], flagfile: str = STEREO_FLAGS) -> None:
    cmd = [sys.executable, "-m", "md2tf.train", f"--flagfile={flagfile}", f"--run_dir={run_dir}", *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def test_data(config, split: str):
    """(images [N, H, W, 3], GT depth list) of a split, no augmentation."""
    import dataclasses

    from md2tf.data import pipeline

    # Target frames only: the stereo partner always exists (temporal neighbours may not, at the ends
    # of a drive), and the sources are not used here.
    data = dataclasses.replace(config.data, frame_offsets=(0,), use_stereo=True)
    images, gts = [], []
    for batch in pipeline.make_dataset(data, split, batch_size=8, training=False):
        images.append(batch.target_aug.numpy())
        gts.extend(batch.depth_gt.numpy()[..., 0])
    return np.concatenate(images), gts


def predict(depth_net, images: np.ndarray) -> list[np.ndarray]:
    """``scaled_disp`` maps at network resolution (what the evaluation protocol scores)."""
    out = []
    for i in range(0, len(images), 8):
        disp = depth_net(images[i:i + 8], training=False)[0]
        scaled, _ = depth_net.disp_to_depth(disp)
        out.extend(scaled.numpy()[..., 0])
    return out


def run_config(path: str):
    """The ``ExperimentConfig`` of a run directory or checkpoint prefix."""
    from md2tf.models import checkpoint as model_checkpoint
    from md2tf.rundir import RunDir

    _, run_dir = model_checkpoint.resolve_checkpoint(path)
    return RunDir(run_dir).read_config()


def score(run_dir: str, baselines: bool = True, data_from: str = "") -> dict:
    """Test-split depth scores of a run (and of the baselines); ``data_from``: another run whose
    synthetic world (test drive) to use, e.g. to score a pretraining run on the M run's test drive."""
    import keras

    from md2tf import models
    from md2tf.deploy.inference import metric_scale_for
    from md2tf.evaluation import metrics
    from md2tf.models import checkpoint as model_checkpoint

    config, depth_net, _ = model_checkpoint.load_models(run_dir, load_pose_net=False)
    data_config = run_config(data_from) if data_from else config
    images, gts = test_data(data_config, "test")
    options = metrics.ScoringOptions(split="synthetic", scaling="median")
    trained = predict(depth_net, images)
    scores = metrics.score_predictions(gts, trained, options)
    results = {"trained": scores.metrics, "depth_scale": scores.ratio_median}
    if not baselines:
        return results
    if config.data.use_stereo:  # metric: no median scaling, depth x the rig's metres / the baseline
        factor = metric_scale_for(True, config.data.stereo_baseline, config.data.synthetic.baseline)
        results[f"trained, stereo scale x{factor:g} (no median scaling)"] = metrics.score_predictions(
            gts, trained, metrics.ScoringOptions(split="synthetic", scaling="none",
                                                 pred_depth_scale_factor=factor)).metrics
    elif config.loss.speed_weight > 0 or config.train.pose_source == "gt":  # trained in metres
        results["trained, metric (no scaling)"] = metrics.score_predictions(
            gts, trained, metrics.ScoringOptions(split="synthetic", scaling="none")).metrics
    learned = model_checkpoint.load_learned_intrinsics(run_dir)
    if learned:  # --intrinsics=learned: normalised (fx, fy, cx, cy) per camera
        results["learned_intrinsics"] = learned
    keras.utils.set_random_seed(config.train.seed)
    untrained, _ = models.build(config.model, use_pose_net=False)
    results["untrained"] = metrics.score_predictions(
        gts, predict(untrained, images), options).metrics
    _, train_gts = test_data(config, "train")
    stack = np.stack(train_gts)
    valid = stack > 0
    mean_depth = np.where(valid.sum(0) > 0, (stack * valid).sum(0) / np.maximum(valid.sum(0), 1), 1.0)
    mean_disp = 1.0 / np.maximum(mean_depth, 1e-3)
    results["mean depth map"] = metrics.score_predictions(gts, [mean_disp] * len(gts), options).metrics
    results["num_test_images"] = len(gts)
    return results


def pose_scores(run_dir: str, depth_scale: float, data_from: str = "", refine_steps: int = 0) -> dict:
    """The pose network of a run on the test drive of its synthetic world (or of ``data_from``'s).

    Args:
      run_dir: run directory (or checkpoint prefix) with a pose network.
      depth_scale: metres per network depth unit (the median of the depth's median-scaling ratios).
      data_from: another run whose synthetic world's test drive to use, as in `score`.
      refine_steps: also score the poses refined by that many steps of photometric alignment with
        the run's depth (`md2tf.evaluation.pose_refinement`, the learning rate of ``md2tf.evaluate``),
        under ``"refined"``, and with the step length alone refined under ``"refined_length"``; 0 = not.

    Returns:
      ``gt_tz`` (mean GT forward motion, m/frame, negative = forward in ``next_from_previous``),
      ``tz_ratio_depth_scale`` (mean predicted forward motion x ``depth_scale`` / GT: is the pose in the
      depth's scale), ``ls_scale`` (one least-squares scale for every translation of the drive),
      ``tz_ratio`` and ``tz_error`` (mean |s tz - tz_gt| / mean |tz_gt|) after it, ``lateral`` (mean
      |s tx| and |s ty|, m/frame), ``cos`` (mean cosine between predicted and GT translations), the
      snippet ATE of the prediction and of a constant-velocity guess (every step = the drive's mean
      GT translation, no rotation), each also on steady-speed snippets and on those where the speed
      changes, ``stopped_speed`` (predicted speed where the GT stands, after the scale), and
      ``speed_corr``, ``speed_change_corr`` (`md2tf.evaluation.odometry_analysis.speed_agreement`), and the
      snippet ATE of the predicted step lengths alone (``ate_speed_only``: GT rotations and directions;
      ``ate_speed_only_constant``: the same with the GT's mean step length) and of the predicted
      rotations and directions alone (``ate_direction_only``: GT step lengths). Pairs
      with GT motion below ``odometry.STOPPED_BELOW`` (the vehicle's stop) are left out of the ratios.
    """
    import glob

    from md2tf.data.poses import read_poses_file
    from md2tf.evaluation import odometry_task
    from md2tf.models import checkpoint as model_checkpoint

    config, depth_net, pose_net = model_checkpoint.load_models(run_dir)
    if pose_net is None:
        raise ValueError(f"{run_dir}: this run has no pose network (stereo-only training)")
    data = (run_config(data_from) if data_from else config).data  # the world; the network's input size
    world = data.data_dir
    split_files = sorted(glob.glob(os.path.join(world, "splits", "synthetic_odom", "test_files_*.txt")))
    if len(split_files) != 1:
        raise ValueError(f"expected one synthetic_odom/test_files_NN.txt in {world}/splits, got {split_files}")
    seq = os.path.basename(split_files[0])[len("test_files_"):-len(".txt")]
    gt_poses = read_poses_file(os.path.join(world, "odometry", "poses", f"{seq}.txt"))
    # Each line starts a pair with the next frame; the drive's last frame has none.
    with open(split_files[0]) as f:
        lines = [line for line in f if line.strip() and int(line.split()[1]) + 1 < len(gt_poses)]
    with tempfile.TemporaryDirectory() as tmp:
        split_file = os.path.join(tmp, os.path.basename(split_files[0]))
        with open(split_file, "w") as f:
            f.writelines(lines)
        indices, frames = odometry_task.odometry_frames(os.path.join(world, "odometry"), split_file,
                                                        config.data.height, config.data.width,
                                                        data.image_ext)
        if refine_steps:
            from md2tf.evaluation.sources import kitti_test_intrinsics

            K = kitti_test_intrinsics(os.path.join(world, "odometry"), split_file, data.image_ext)[0]
    pred = odometry_task.predict_relative_poses(lambda pair: pose_net(pair, training=False), frames())
    scores = _motion_scores(pred, gt_poses[indices], depth_scale)
    if refine_steps:
        from md2tf.config import EvalConfig

        lr = EvalConfig(models=(run_dir,)).pose_refine_lr  # md2tf.evaluate's default
        for key, length_only in (("refined", False), ("refined_length", True)):
            refined = odometry_task.refine_relative_poses(odometry_task.network_depth(depth_net), frames(), pred,
                                                          K, refine_steps, lr, length_only=length_only)
            scores[key] = _motion_scores(refined, gt_poses[indices], depth_scale)
    return scores


def _motion_scores(pred: np.ndarray, gt_poses: np.ndarray, depth_scale: float) -> dict:
    """`pose_scores`' numbers of ``[N-1, 4, 4]`` predicted ``next_from_previous`` against the N GT
    ``world_from_camera`` poses of their frames."""
    from md2tf.evaluation import odometry, odometry_analysis

    gt = odometry.relative_from_global(gt_poses)
    t_pred, t_gt = pred[:, :3, 3], gt[:, :3, 3]
    moving = np.linalg.norm(t_gt, axis=1) > odometry.STOPPED_BELOW
    scale = float(np.sum(t_pred * t_gt) / max(np.sum(t_pred**2), 1e-12))
    tp, tg = t_pred[moving], t_gt[moving]
    cos = np.sum(tp * tg, 1) / np.maximum(np.linalg.norm(tp, axis=1) * np.linalg.norm(tg, axis=1), 1e-12)
    constant = odometry.constant_velocity_poses(gt)
    speed, gt_speed = np.linalg.norm(t_pred, axis=1), np.linalg.norm(t_gt, axis=1)
    return {
        "gt_tz": float(tg[:, 2].mean()),
        "pred_tz": float(tp[:, 2].mean()),
        "tz_ratio_depth_scale": float(depth_scale * tp[:, 2].mean() / tg[:, 2].mean()),
        "ls_scale": scale,
        "tz_ratio": float(scale * tp[:, 2].mean() / tg[:, 2].mean()),
        "tz_error": float(np.abs(scale * tp[:, 2] - tg[:, 2]).mean() / np.abs(tg[:, 2]).mean()),
        "lateral_x": float(np.abs(scale * tp[:, 0]).mean()),
        "lateral_y": float(np.abs(scale * tp[:, 1]).mean()),
        "cos": float(cos.mean()),
        # Auto-masking hides a standing camera's frames from the loss (identity = warp), so nothing
        # teaches the pose network to predict a stop: its speed there, after the scale (m/frame).
        "stopped_speed": float(np.linalg.norm(scale * t_pred[~moving], axis=1).mean()) if (~moving).any() else 0.0,
        "ate": odometry.score_odometry(gt_poses, pred).to_dict(),
        "ate_constant_velocity": odometry.score_odometry(gt_poses, constant).to_dict(),
        **odometry_analysis.speed_agreement(pred, gt),
        # The ATE split in two: the predicted step lengths along the GT's rotation and direction
        # (against the constant speed in the same place), and the predicted rotation and direction
        # at the GT's step lengths.
        "ate_speed_only": odometry.score_odometry(gt_poses, odometry_analysis.with_lengths(gt, speed)).ate_mean,
        "ate_speed_only_constant": odometry.score_odometry(
            gt_poses, odometry_analysis.with_lengths(gt, np.full_like(gt_speed, gt_speed.mean()))).ate_mean,
        "ate_direction_only": odometry.score_odometry(gt_poses, odometry_analysis.with_lengths(pred, gt_speed)).ate_mean,
        "num_pairs": int(len(gt)),
        "num_moving_pairs": int(moving.sum()),
    }


def _ate_cells(p: dict) -> str:
    """ATE of the pose network / constant velocity: all snippets, steady-speed ones, speed changes."""
    a, c = p["ate"], p["ate_constant_velocity"]
    cells = [f"{a['ate_mean']:.4f} / {c['ate_mean']:.4f}"]
    for kind in ("steady", "changing"):
        found = kind in a.get("by_motion", {})
        cells.append(f"{a['by_motion'][kind][0]:.4f} / {c['by_motion'][kind][0]:.4f}" if found else "-")
    return " | ".join(cells)


def _speed_cells(p: dict) -> str:
    """Correlation of predicted and GT speed, and of their pair-to-pair changes."""
    return f"{p['speed_corr']:.2f} ({p['speed_change_corr']:.2f})" if "speed_corr" in p else "-"


def pose_table(rows: dict) -> str:
    lines = ["| model | tz ratio (depth scale) | tz ratio (1 LS scale) | tz error | mean abs tx, ty (m/frame) "
             "| cos | speed while stopped | speed corr (of changes) | ATE / const. velocity | steady speed "
             "| speed changes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, p in rows.items():
        lines.append(f"| {name} | {p['tz_ratio_depth_scale']:.3f} | {p['tz_ratio']:.3f} | {p['tz_error']:.3f} "
                     f"| {p['lateral_x']:.3f}, {p['lateral_y']:.3f} | {p['cos']:.3f} | {p['stopped_speed']:.3f} "
                     f"| {_speed_cells(p)} | {_ate_cells(p)} |")
    return "\n".join(lines)


def curves(run_dir: str) -> list[dict]:
    """Test-drive depth (and pose) scores of every checkpoint kept in ``<run_dir>/checkpoints``."""
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints"))
    rows = []
    for prefix in state.all_model_checkpoint_paths if state else []:
        prefix = os.path.join(run_dir, "checkpoints", prefix)  # kept as is when absolute
        row = {"step": int(prefix.rsplit("-", 1)[1])}
        depth = score(prefix, baselines=False)
        row.update(depth["trained"], depth_scale=depth["depth_scale"])
        try:
            row["pose"] = pose_scores(prefix, depth["depth_scale"])
        except ValueError:  # stereo-only run
            pass
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "pose"}), flush=True)
    return rows


def curve_table(rows: list[dict]) -> str:
    lines = ["| step | abs_rel | d<1.25 | tz ratio (depth scale) | tz error (1 LS scale) | cos | "
             "speed corr (of changes) | ATE / const. velocity | steady speed | speed changes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r.get("pose")
        pose = (f"{p['tz_ratio_depth_scale']:.3f} | {p['tz_error']:.3f} | {p['cos']:.3f} | "
                f"{_speed_cells(p)} | {_ate_cells(p)}") if p else "- | - | - | - | - | - | -"
        lines.append(f"| {r['step']} | {r['abs_rel']:.3f} | {r['a1']:.3f} | {pose} |")
    return "\n".join(lines)


def table(rows: dict) -> str:
    lines = ["| model | abs_rel | sq_rel | rmse | rmse_log | d<1.25 | d<1.25^2 | d<1.25^3 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        if isinstance(m, dict) and "abs_rel" in m:
            lines.append(f"| {name} | " + " | ".join(
                f"{m[k]:.3f}" for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")) + " |")
    for camera, (fx, fy, cx, cy) in rows.get("learned_intrinsics", {}).items():
        lines.append(f"learned K of {camera} (normalised): fx {fx:.4f} fy {fy:.4f} cx {cx:.4f} cy {cy:.4f}")
    return "\n".join(lines)


def ablation(args, extra: list[str]) -> dict:
    """Trains and scores the Table 2 rows, once per seed; a row's metrics are the mean over seeds,
    with the per-seed values under ``"seeds"``.

    ``--mode=stereo``: MS rows from scratch with ``configs/synthetic.flags``. ``--mode=mono``: pure M
    rows with ``--mono_flags``, each started from the same pretraining run's networks
    (``--pretrain``, else trained first into ``<run_dir>/pretrain``).
    """
    seeds = [int(x) for x in args.seeds.split(",")]
    if args.mode == "mono":
        pretrain = args.pretrain or os.path.join(args.run_dir, "pretrain")
        if not (args.pretrain or args.skip_train):
            train(pretrain, [], MONO_PRETRAIN_FLAGS)
        flagfile, mode = args.mono_flags, (f"--init_checkpoint={pretrain}",)
    else:
        flagfile, mode = STEREO_FLAGS, ABLATION_MODE
    rows = {}
    for name, switches in ABLATION.items():
        per_seed = []
        for seed in seeds:
            sub = os.path.join(args.run_dir, name.strip("+ ").replace(" ", "_").replace("-", "_"))
            sub += f"_seed{seed}" if len(seeds) > 1 else ""
            if not args.skip_train and not os.path.exists(os.path.join(sub, "synthetic_row.json")):
                train(sub, [*mode, *switches, f"--seed={seed}", *extra], flagfile)
                with open(os.path.join(sub, "synthetic_row.json"), "w") as f:
                    json.dump(score(sub, baselines=False)["trained"], f)
            with open(os.path.join(sub, "synthetic_row.json")) as f:
                per_seed.append(json.load(f))
        rows[name] = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
        rows[name]["seeds"] = per_seed
    return rows


def spread_table(rows: dict) -> str:
    """abs_rel and d<1.25 per row: mean, and the range over seeds."""
    lines = ["| row | seeds | abs_rel mean (min-max) | d<1.25 mean (min-max) |", "|---|---|---|---|"]
    for name, m in rows.items():
        cells = []
        for k in ("abs_rel", "a1"):
            values = [s[k] for s in m["seeds"]]
            cells.append(f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        lines.append(f"| {name} | {len(m['seeds'])} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/synthetic")
    parser.add_argument("--skip_train", action="store_true", help="score an existing run only")
    parser.add_argument("--ablation", action="store_true", help="train + score the Table 2 rows")
    parser.add_argument("--num_epochs", type=int, default=0, help="override (ablation: shorter runs)")
    parser.add_argument("--mode", choices=("stereo", "mono"), default="stereo",
                        help="stereo: configs/synthetic.flags; mono: MS pretraining on other drives + M")
    parser.add_argument("--mono_init", choices=("networks", "encoders"), default="networks",
                        help="mono: start M from the pretraining run's whole networks or its encoders only")
    parser.add_argument("--seeds", default="0",
                        help="ablation: comma-separated --seed values, one run per row and seed (mean, spread)")
    parser.add_argument("--pretrain", default="",
                        help="mono: an existing pretraining run to start from (skips the pretraining)")
    parser.add_argument("--mono_flags", default=MONO_FLAGS, help="mono: the M run's flag file")
    parser.add_argument("--pose_refine_steps", type=int, default=100,
                        help="mono: also score the poses refined by photometric alignment (0 = not)")
    parser.add_argument("--curves", action="store_true",
                        help="keep every epoch's checkpoint and score each one (learning curves)")
    args, extra = parser.parse_known_args()
    from md2tf import tf_start

    tf_start.start_tensorflow()  # as md2tf's commands: TF's own lines only with MD2TF_TF_LOGS=1
    if args.num_epochs:
        extra.append(f"--num_epochs={args.num_epochs}")
    if args.curves and not args.ablation:
        extra.insert(0, f"--keep_checkpoints={KEEP_ALL}")  # first, so that a --keep_checkpoints given wins
    if args.ablation:
        rows = ablation(args, extra)
        print(table(rows))
        print(spread_table(rows))
        out = os.path.join(args.run_dir, "ablation_scores.json")
    elif args.mode == "mono":
        pretrain, mono = os.path.join(args.run_dir, "pretrain"), os.path.join(args.run_dir, "mono")
        if args.pretrain:
            pretrain = args.pretrain
        elif not args.skip_train:
            train(pretrain, [], MONO_PRETRAIN_FLAGS)
        if not args.skip_train:
            init = "init_checkpoint" if args.mono_init == "networks" else "encoder_init"
            train(mono, [f"--{init}={pretrain}", *extra], args.mono_flags)
        rows = score(mono)
        rows["pose"] = pose_scores(mono, rows["depth_scale"], refine_steps=args.pose_refine_steps)
        rows["pretrain (MS, other drives)"] = score(pretrain, baselines=False, data_from=mono)["trained"]
        print(f"synthetic test drive, {rows['num_test_images']} images, per-image median scaling")
        print(table(rows))
        refined = {label: rows["pose"][key] for key, label in (("refined", "M, refined"),
                   ("refined_length", "M, refined (length only)")) if key in rows["pose"]}
        print(pose_table({"M": rows["pose"], **refined}))
        if args.curves:
            rows["curves"] = curves(mono)
            print(curve_table(rows["curves"]))
        out = os.path.join(args.run_dir, "mono_scores.json")
    else:
        if not args.skip_train:
            train(args.run_dir, extra)
        rows = score(args.run_dir)
        if args.curves:
            rows["curves"] = curves(args.run_dir)
            print(curve_table(rows["curves"]))
        print(f"synthetic test split, {rows['num_test_images']} images, per-image median scaling "
              "unless noted")
        print(table(rows))
        out = os.path.join(args.run_dir, "synthetic_scores.json")
    with open(out, "w") as f:
        json.dump(rows, f, indent=2)
    print("wrote", out)


if __name__ == "__main__":
    main()
