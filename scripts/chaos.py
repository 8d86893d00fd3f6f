"""Chaos run: interrupt ``md2tf.train`` every way a machine can, resume, and demand the same weights.

    python scripts/chaos.py --work_dir=/tmp/chaos [--json=/tmp/chaos/table.json]

Trains ``configs/smoke.flags`` (64x128, batch 2) for ``--epochs`` x ``--steps_per_epoch`` steps with
``--deterministic`` and a checkpoint after every step, twice:

1. the reference: one uninterrupted run;
2. the chaos run: SIGTERM after step 2 (saves and exits 0), resume and SIGKILL while a checkpoint
   is being written (a ``ckpt-N_temp`` folder exists), truncate the newest complete checkpoint,
   resume to the end (falls back to the previous checkpoint, removes the stale temp folder).

Every probe checks what it expects and the script prints a table (probe, expected, observed) and
exits 1 if any probe failed; the last probe compares every variable of the two final checkpoints
(networks, optimizer slots, counters) bit for bit. Each training process is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_command(run_dir: str, world: str, args) -> list[str]:
    return [sys.executable, "-m", "md2tf.train", "--flagfile=configs/smoke.flags", f"--run_dir={run_dir}",
            f"--synthetic_cache_dir={world}", "--deterministic", "--max_steps=0",
            f"--steps_per_epoch={args.steps_per_epoch}", f"--num_epochs={args.epochs}",
            "--save_every_steps=1", "--keep_checkpoints=3", "--image_log_every=0",
            "--novalidate_every_epoch"]


def env() -> dict:
    return dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def checkpoint_steps(run_dir: str) -> list[int]:
    names = glob.glob(os.path.join(run_dir, "checkpoints", "ckpt-*.index"))
    return sorted(int(re.search(r"ckpt-(\d+)\.index$", n).group(1)) for n in names)


def temp_dirs(run_dir: str) -> list[str]:
    return glob.glob(os.path.join(run_dir, "checkpoints", "*_temp"))


def latest_prefix(run_dir: str) -> str | None:
    steps = checkpoint_steps(run_dir)
    return os.path.join(run_dir, "checkpoints", f"ckpt-{steps[-1]}") if steps else None


def start(cmd: list[str], log_path: str) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=open(log_path, "w"), stderr=subprocess.STDOUT)


def wait_until(proc: subprocess.Popen, condition, timeout: float, poll_s: float = 0.005) -> bool:
    """Polls ``condition()`` until true (returns True) or the process ends / time runs out (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return bool(condition())
        time.sleep(poll_s)
    return False


def finish(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def read_variables(prefix: str) -> dict:
    import tensorflow as tf  # noqa: PLC0415 (only the comparison needs TensorFlow)

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work_dir", required=True, help="Scratch directory (emptied first).")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps_per_epoch", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0, help="Seconds per training process.")
    parser.add_argument("--json", default="", help="Also write the table here.")
    args = parser.parse_args()
    import numpy as np  # noqa: PLC0415

    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    world = os.path.join(args.work_dir, "world")
    ref_dir, run_dir = os.path.join(args.work_dir, "reference"), os.path.join(args.work_dir, "chaos")
    total = args.epochs * args.steps_per_epoch
    rows = []

    def probe(name: str, expected: str, observed: str, ok: bool) -> None:
        rows.append({"probe": name, "expected": expected, "observed": observed, "ok": bool(ok)})
        print(f"[{'ok' if ok else 'FAILED'}] {name}: {observed}", flush=True)

    def log(name: str) -> str:
        return os.path.join(args.work_dir, f"{name}.log")

    # 1. Reference (also renders the world once).
    rc = finish(start(train_command(ref_dir, world, args), log("reference")), args.timeout)
    probe("uninterrupted run", f"exit 0, ckpt-{total}", f"exit {rc}, checkpoints {checkpoint_steps(ref_dir)}",
          rc == 0 and checkpoint_steps(ref_dir)[-1:] == [total])

    # 2a. SIGTERM after step 2.
    proc = start(train_command(run_dir, world, args), log("sigterm"))
    reached = wait_until(proc, lambda: any(s >= 2 for s in checkpoint_steps(run_dir)), args.timeout, 0.05)
    if reached:
        proc.send_signal(signal.SIGTERM)
    rc = finish(proc, args.timeout)
    steps = checkpoint_steps(run_dir)
    probe("SIGTERM after step 2", "exit 0, checkpoint of the step it stopped at (>= 2)",
          f"exit {rc}, checkpoints {steps}", reached and rc == 0 and steps and steps[-1] >= 2)

    # 2b. Resume, SIGKILL while a checkpoint is being written (retried if the save won the race).
    left, rc, attempts = [], None, 0
    while not left and attempts < 3:
        attempts += 1
        proc = start(train_command(run_dir, world, args), log(f"kill9_{attempts}"))
        wait_until(proc, lambda: bool(temp_dirs(run_dir)), args.timeout)
        proc.kill()
        rc = finish(proc, args.timeout)
        left = temp_dirs(run_dir)
    probe("SIGKILL during a checkpoint write", "killed, a ckpt-N_temp folder left behind",
          f"exit {rc} (attempt {attempts}), left {[os.path.basename(d) for d in left]}, "
          f"checkpoints {checkpoint_steps(run_dir)}", rc == -signal.SIGKILL and bool(left))

    # 2c. Truncate the newest complete checkpoint.
    newest = latest_prefix(run_dir)
    for path in glob.glob(newest + ".data-*"):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    probe("truncate the newest checkpoint", "data file halved", f"truncated {os.path.basename(newest)}",
          newest is not None)

    # 2d. Resume to the end.
    rc = finish(start(train_command(run_dir, world, args), log("resume")), args.timeout)
    text = open(log("resume")).read()
    fell_back = f"{os.path.basename(newest)} does not restore" in text
    probe("resume after all of it", f"exit 0, falls back past {os.path.basename(newest)}, ends at ckpt-{total}, "
          "temp folders removed", f"exit {rc}, fallback logged {fell_back}, checkpoints "
          f"{checkpoint_steps(run_dir)}, temp folders {len(temp_dirs(run_dir))}",
          rc == 0 and fell_back and checkpoint_steps(run_dir)[-1:] == [total] and not temp_dirs(run_dir))

    # 3. Same weights.
    if checkpoint_steps(ref_dir)[-1:] == [total] and checkpoint_steps(run_dir)[-1:] == [total]:
        a = read_variables(latest_prefix(ref_dir))
        b = read_variables(latest_prefix(run_dir))
        differ = [k for k in a if k not in b or not np.array_equal(a[k], b[k])]
        probe("final variables vs the uninterrupted run", f"all {len(a)} bitwise equal",
              f"{len(a) - len(differ)} of {len(a)} equal" + (f" (first differing: {differ[0]})" if differ else ""),
              not differ and set(a) == set(b))
    else:
        probe("final variables vs the uninterrupted run", "both runs reach the last step",
              "a run did not finish", False)

    print("\n| probe | expected | observed |\n|---|---|---|")
    for r in rows:
        print(f"| {r['probe']} | {r['expected']} | {r['observed']} {'' if r['ok'] else '**FAILED**'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
