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

Two more probes, each on its own run directory:

3. two writers: a second training on the run directory of a running one must exit 2 at once with
   one line naming the first's PID, while the first trains on;
4. a full disk: the run directory on a tmpfs with room for one checkpoint and a half (when the
   script may mount one, e.g. as root; else ``md2tf.train`` runs with its checkpoint writer patched
   to raise ENOSPC). The second save fails: exit 2 with one line naming the intact checkpoint, no
   ``*_temp`` folder left behind, the first checkpoint readable.

``--probes`` picks the groups to run (``interrupts`` = 1-2 above, ``two_writers``, ``full_disk``).
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


def checkpoint_bytes(run_dir: str) -> int:
    """Size of the newest checkpoint of ``run_dir`` (index and data files), bytes (0 = none)."""
    prefix = latest_prefix(run_dir)
    return sum(os.path.getsize(p) for p in glob.glob(prefix + ".*")) if prefix else 0


def last_line(log_path: str) -> str:
    with open(log_path) as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1] if lines else ""


#: ``python -c`` program: ``md2tf.train`` with a checkpoint writer that raises ENOSPC from the
#: second save on, after writing part of it into its ``ckpt-N_temp`` folder (as a full disk would).
FULL_DISK_PATCH = """
import errno, os, runpy, sys
import tensorflow as tf
real_save = tf.train.CheckpointManager.save
def save(self, checkpoint_number=None, **kwargs):
    if checkpoint_number is not None and checkpoint_number >= 2:
        temp = os.path.join(self.directory, f"ckpt-{checkpoint_number}_temp")
        os.makedirs(temp, exist_ok=True)
        with open(os.path.join(temp, "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
            f.write(bytes(1 << 20))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_save(self, checkpoint_number=checkpoint_number, **kwargs)
tf.train.CheckpointManager.save = save
sys.argv[0] = "md2tf.train"
runpy.run_module("md2tf.train", run_name="__main__")
"""


def mount_tmpfs(path: str, size_bytes: int) -> str:
    """Mounts a tmpfs of ``size_bytes`` at ``path``; returns "" or why it could not."""
    os.makedirs(path, exist_ok=True)
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", path],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return "" if proc.returncode == 0 else (proc.stderr.strip() or f"mount exit {proc.returncode}")


def probe_two_writers(args, world: str, probe, log) -> int:
    """A second training on a running one's run directory. Returns the first's checkpoint size."""
    run_dir = os.path.join(args.work_dir, "two_writers")
    longer = ["--steps_per_epoch=1000", "--num_epochs=1"]
    first = start(train_command(run_dir, world, args) + longer, log("writer_1"))
    running = wait_until(first, lambda: bool(checkpoint_steps(run_dir)), args.timeout, 0.05)
    started = time.time()
    rc = finish(start(train_command(run_dir, world, args) + longer, log("writer_2")), args.timeout)
    took = time.time() - started
    first_alive = first.poll() is None
    line = last_line(log("writer_2"))
    traceback = "Traceback" in open(log("writer_2")).read()
    size = checkpoint_bytes(run_dir)
    first.send_signal(signal.SIGTERM)
    rc_first = finish(first, args.timeout)
    probe("two writers on one run directory",
          f"second: exit 2 at once, one line naming PID {first.pid}; first trains on",
          f"second: exit {rc} after {took:.0f} s: {line!r}; first "
          f"{'still training' if first_alive else 'had ended'} (then SIGTERM: exit {rc_first})",
          running and rc == 2 and line.startswith("error: ") and str(first.pid) in line
          and not traceback and first_alive)
    return size


def probe_full_disk(args, world: str, probe, log, size: int) -> None:
    """The second checkpoint save finds the disk full (``size`` = bytes of one checkpoint)."""
    mnt = os.path.join(args.work_dir, "full_disk")
    run_dir = os.path.join(mnt, "run")
    cmd = train_command(run_dir, world, args)
    why = mount_tmpfs(mnt, int(1.5 * size) + (1 << 20)) if size else "no checkpoint size known"
    how = "tmpfs of 1.5 checkpoints"
    if why:
        how = f"writer patched to raise ENOSPC ({why})"
        cmd = [sys.executable, "-c", FULL_DISK_PATCH, *cmd[3:]]
    try:
        rc = finish(start(cmd, log("full_disk")), args.timeout)
        line = last_line(log("full_disk"))
        traceback = "Traceback" in open(log("full_disk")).read()
        left, steps = temp_dirs(run_dir), checkpoint_steps(run_dir)
        try:
            intact = bool(steps) and bool(read_variables(latest_prefix(run_dir)))
        except Exception as e:  # noqa: BLE001 (any failure to read it is what the probe reports)
            intact = False
            line += f" / ckpt unreadable: {type(e).__name__}"
        free_mb = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize / 2**20
    finally:
        if not why:
            subprocess.run(["umount", mnt], check=False)
    expected = r"error: no space left on .*: freed the partial checkpoint; ckpt-1 is intact"
    probe("full disk during a checkpoint write",
          "exit 2, one line: no space left ... ckpt-1 is intact; no *_temp left, ckpt-1 readable",
          f"{how}: exit {rc}: {line!r}; temp folders {len(left)}, checkpoints {steps} "
          f"({'readable' if intact else 'NOT readable'}), {free_mb:.0f} MiB free",
          rc == 2 and re.match(expected, line) is not None and not traceback and not left
          and steps == [1] and intact)


def read_variables(prefix: str) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TF starts: no C++ banner
    import tensorflow as tf  # noqa: PLC0415 (only the comparison needs TensorFlow)

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def probe_interrupts(args, world: str, probe, log) -> int:
    """Groups 1-2 of the module docstring. Returns the bytes of one checkpoint of the reference."""
    import numpy as np  # noqa: PLC0415

    ref_dir, run_dir = os.path.join(args.work_dir, "reference"), os.path.join(args.work_dir, "chaos")
    total = args.epochs * args.steps_per_epoch
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
    return checkpoint_bytes(ref_dir)


PROBES = ("interrupts", "two_writers", "full_disk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work_dir", required=True, help="Scratch directory (emptied first).")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps_per_epoch", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="Seconds per training process.")
    parser.add_argument("--json", default="", help="Also write the table here.")
    parser.add_argument("--probes", default=",".join(PROBES),
                        help=f"Comma-separated probe groups to run, of {', '.join(PROBES)}.")
    args = parser.parse_args()
    probes = args.probes.split(",")
    if not set(probes) <= set(PROBES):
        parser.error(f"--probes: unknown {sorted(set(probes) - set(PROBES))}; choose from {PROBES}")

    shutil.rmtree(args.work_dir, ignore_errors=True)
    os.makedirs(args.work_dir)
    world = os.path.join(args.work_dir, "world")
    rows = []

    def probe(name: str, expected: str, observed: str, ok: bool) -> None:
        rows.append({"probe": name, "expected": expected, "observed": observed, "ok": bool(ok)})
        print(f"[{'ok' if ok else 'FAILED'}] {name}: {observed}", flush=True)

    def log(name: str) -> str:
        return os.path.join(args.work_dir, f"{name}.log")

    size = 0  # bytes of one checkpoint, for the full disk's size
    if "interrupts" in probes:
        size = probe_interrupts(args, world, probe, log)
    if "two_writers" in probes:
        size = probe_two_writers(args, world, probe, log) or size
    if "full_disk" in probes:
        if not size:  # one step to measure a checkpoint (also renders the world)
            sized = os.path.join(args.work_dir, "checkpoint_size")
            finish(start(train_command(sized, world, args) + ["--max_steps=1"], log("size")),
                   args.timeout)
            size = checkpoint_bytes(sized)
        probe_full_disk(args, world, probe, log, size)

    print("\n| probe | expected | observed |\n|---|---|---|")
    for r in rows:
        print(f"| {r['probe']} | {r['expected']} | {r['observed']} {'' if r['ok'] else '**FAILED**'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
