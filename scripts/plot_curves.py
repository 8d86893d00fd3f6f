"""Plots the learning curves that ``scripts/train_synthetic.py --mode=mono --curves`` wrote.

    python scripts/plot_curves.py runs/mono_synthetic/mono_scores.json --out docs/mono_curves.png

Two panels over the M training steps: the test drive's depth abs_rel (per-image median scaling),
with the mean depth map and the pretraining run as horizontal references; and the pose network's
5-frame snippet ATE, all snippets and those where the speed changes, each with the
constant-velocity guess it has to beat. Needs matplotlib (``pip install -e '.[dev]'``).
"""

from __future__ import annotations

import argparse
import json

PRETRAIN = "pretrain (MS, other drives)"


def plot(scores: dict, out: str, title: str = "") -> None:
    """Writes the two-panel PNG ``out`` from a ``mono_scores.json`` with ``"curves"``.

    Args:
      scores: the JSON of ``scripts/train_synthetic.py --mode=mono --curves``: ``"curves"`` (one row
        per checkpoint: ``step``, ``abs_rel``, ``pose``), and the reference rows ``"mean depth map"``
        and ``"pretrain (MS, other drives)"`` where present.
      out: the PNG's path (1000 x 380 pixels).
      title: a title above both panels.

    Raises:
      ValueError: when the scores have no curves or no pose scores (a run scored without
        ``--curves``, or a stereo-only run).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    curves = [row for row in scores.get("curves", []) if "pose" in row]
    if not curves:
        raise ValueError("no learning curves with pose scores: score the run with "
                         "`scripts/train_synthetic.py --mode=mono --curves`")
    steps = [row["step"] for row in curves]
    fig, (depth, pose) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)

    depth.plot(steps, [row["abs_rel"] for row in curves], "o-", color="C0", label="M run")
    for name, style in (("mean depth map", "--"), (PRETRAIN, ":")):
        if name in scores:
            depth.axhline(scores[name]["abs_rel"], color="0.4", linestyle=style,
                          label="its start (MS pretraining)" if name == PRETRAIN else name)
    depth.set(xlabel="M step", ylabel="abs_rel (median scaling)", title="depth, test drive")
    depth.legend()

    lowest, last, guesses = float("inf"), 0.0, []
    for kind, color, label in ((None, "C1", "all snippets"), ("changing", "C2", "speed changes")):
        if kind is not None and any(kind not in row["pose"]["ate"]["by_motion"] for row in curves):
            continue  # a test drive without such snippets

        def ate(row, key, kind=kind):
            result = row["pose"][key]
            return result["ate_mean"] if kind is None else result["by_motion"][kind][0]

        values = [ate(row, "ate") for row in curves]
        pose.plot(steps, values, "o-", color=color, label=f"pose net, {label}")
        guesses.append(ate(curves[-1], "ate_constant_velocity"))
        pose.axhline(guesses[-1], color=color, linestyle="--", label=f"constant velocity, {label}")
        lowest, last = min(lowest, *values), max(last, values[-1])
    # The first checkpoints are far above the guess: the range shows where the two meet (and the
    # run's end, if it stays above).
    pose.set_ylim(0.8 * min(lowest, *guesses), max(2.5 * max(guesses), 1.2 * last))
    pose.set(xlabel="M step", ylabel="snippet ATE (m)", title="odometry, 5-frame snippets (early steps may be off the top)")
    pose.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", help="mono_scores.json of a --curves run")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    with open(args.scores) as f:
        plot(json.load(f), args.out, args.title)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
