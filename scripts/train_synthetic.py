"""Does it learn? Train on the synthetic world and score it against two baselines.

    python scripts/train_synthetic.py --run_dir=runs/synthetic            # train (~30 min CPU) + score
    python scripts/train_synthetic.py --run_dir=runs/synthetic --skip_train  # score an existing run
    python scripts/train_synthetic.py --run_dir=runs/ablation --ablation --num_epochs=3  # Table 2 rows

The default config is stereo (S); the ablation rows train mono+stereo (MS: frames 0, -1, +1 and the
stereo partner), because with a single source the minimum and the average reprojection coincide.

Scores on the synthetic world's test split (dense GT, per-image median scaling, depth clamped to
[1e-3, 80] m): the trained model, the same network untrained, and a "mean depth map" baseline (the
per-pixel mean of the training split's GT depth, predicted for every test image). A stereo-trained
run is also scored without median scaling at the stereo scale (depth x 5.4 = metres). Prints a
Markdown table and writes ``<run_dir>/synthetic_scores.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABLATION = {  # paper Table 2 rows: (min_reprojection, automask, full_res_multiscale)
    "baseline": ("--nomin_reprojection", "--noautomask", "--nofull_res_multiscale"),
    "+ min reprojection": ("--min_reprojection", "--noautomask", "--nofull_res_multiscale"),
    "+ auto-masking": ("--nomin_reprojection", "--automask", "--nofull_res_multiscale"),
    "+ full-res multi-scale": ("--nomin_reprojection", "--noautomask", "--full_res_multiscale"),
    "full": ("--min_reprojection", "--automask", "--full_res_multiscale"),
}
ABLATION_MODE = ("--frame_offsets=0,-1,1", "--use_stereo")  # MS


def train(run_dir: str, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "md2tf.train", "--flagfile=configs/synthetic.flags",
           f"--run_dir={run_dir}", *extra]
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


def score(run_dir: str) -> dict:
    import keras

    from md2tf import models
    from md2tf.evaluation import metrics
    from md2tf.models import checkpoint as model_checkpoint

    config, depth_net, _ = model_checkpoint.load_models(run_dir, load_pose_net=False)
    images, gts = test_data(config, "test")
    options = metrics.ScoringOptions(split="synthetic", scaling="median")
    trained = predict(depth_net, images)
    results = {"trained": metrics.score_predictions(gts, trained, options).metrics}
    if config.data.use_stereo:  # metric: no median scaling, depth x 5.4
        results["trained, stereo scale x5.4 (no median scaling)"] = metrics.score_predictions(
            gts, trained, metrics.ScoringOptions.stereo(split="synthetic")).metrics
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


def table(rows: dict) -> str:
    lines = ["| model | abs_rel | sq_rel | rmse | rmse_log | d<1.25 | d<1.25^2 | d<1.25^3 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        if isinstance(m, dict):
            lines.append(f"| {name} | " + " | ".join(
                f"{m[k]:.3f}" for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run_dir", default="runs/synthetic")
    parser.add_argument("--skip_train", action="store_true", help="score an existing run only")
    parser.add_argument("--ablation", action="store_true", help="train + score the Table 2 rows")
    parser.add_argument("--num_epochs", type=int, default=0, help="override (ablation: shorter runs)")
    args, extra = parser.parse_known_args()
    if args.num_epochs:
        extra.append(f"--num_epochs={args.num_epochs}")
    if args.ablation:
        rows = {}
        for name, switches in ABLATION.items():
            sub = os.path.join(args.run_dir, name.strip("+ ").replace(" ", "_").replace("-", "_"))
            if not args.skip_train:
                train(sub, [*ABLATION_MODE, *switches, *extra])
            rows[name] = score(sub)["trained"]
        print(table(rows))
        out = os.path.join(args.run_dir, "ablation_scores.json")
    else:
        if not args.skip_train:
            train(args.run_dir, extra)
        rows = score(args.run_dir)
        print(f"synthetic test split, {rows['num_test_images']} images, per-image median scaling "
              "unless noted")
        print(table(rows))
        out = os.path.join(args.run_dir, "synthetic_scores.json")
    with open(out, "w") as f:
        json.dump(rows, f, indent=2)
    print("wrote", out)


if __name__ == "__main__":
    main()
