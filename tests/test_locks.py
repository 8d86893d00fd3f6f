"""One writer at a time: `md2tf.locks.hold` between processes, and the run directory of md2tf.train."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from md2tf import flags as md2tf_flags
from md2tf import locks
from md2tf.config import ExperimentConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Holds the lock argv[1] until its stdin closes (or it is killed); says "held" once it has it.
_HOLDER = """
import sys
sys.path.insert(0, {repo!r})
from md2tf import locks
with locks.hold(sys.argv[1], "the holder"):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder():
    """``start(path) -> Popen``: another process holding the lock ``path`` (no TensorFlow)."""
    procs = []

    def start(path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER.format(repo=REPO), str(path)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_holder_fails_at_once_naming_the_first_ones_pid(tmp_path, holder):
    path = tmp_path / "run" / ".lock"
    proc = holder(path)
    start = time.monotonic()
    with pytest.raises(locks.LockBusy) as error, locks.hold(str(path), "--run_dir=run", "choose another"):
        pass
    assert time.monotonic() - start < 1.0
    assert str(error.value) == (f"--run_dir=run is in use by process {proc.pid} (lock file {path}); "
                                "choose another")
    assert error.value.pid == proc.pid and isinstance(error.value, ValueError)


def test_the_lock_is_released_and_its_file_removed_however_the_body_ends(tmp_path):
    path = str(tmp_path / "new" / ".lock")  # the folder is created
    with pytest.raises(RuntimeError), locks.hold(path, "x"):
        assert open(path).read() == f"{os.getpid()}\n"
        raise RuntimeError("the body failed")
    assert not os.path.exists(path)
    with locks.hold(path, "x"):  # free again
        pass


def test_two_holds_in_one_process_conflict(tmp_path):
    path = str(tmp_path / ".lock")
    with locks.hold(path, "x"), pytest.raises(locks.LockBusy, match=f"process {os.getpid()}"):
        with locks.hold(path, "x"):
            pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    path = tmp_path / ".lock"
    proc = holder(path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert locks.holder_pid(str(path)) == proc.pid  # the file is left behind, with a dead PID ...
    with locks.hold(str(path), "x"):  # ... and taken over at once: the kernel dropped the lock
        assert locks.holder_pid(str(path)) == os.getpid()


def test_waiting_gets_the_lock_when_the_holder_ends_and_times_out_otherwise(tmp_path, holder):
    path = tmp_path / ".lock"
    proc = holder(path)
    with pytest.raises(locks.LockBusy, match=rf"x is in use by process {proc.pid} after waiting "
                                             r"0.3 s \(lock file"):
        with locks.hold(str(path), "x", wait_s=0.3, poll_s=0.05):
            pass
    threading.Timer(0.3, proc.stdin.close).start()  # the holder ends while we wait
    start = time.monotonic()
    with locks.hold(str(path), "x", wait_s=30, poll_s=0.05):
        assert locks.holder_pid(str(path)) == os.getpid()
    assert time.monotonic() - start < 10


def test_an_unwritable_folder_is_one_line_naming_the_lock_file(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ValueError, match=r"^--out=x: cannot create the lock file '.*\.x\.lock' "
                                         r"\(Read-only file system\)$"):
        with locks.hold(str(tmp_path / ".x.lock"), "--out=x"):
            pass
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match=r"cannot create the lock file .*file/.lock"):
        with locks.hold(str(tmp_path / "file" / ".lock"), "--run_dir=file"):
            pass


# --- md2tf.train: one training per run directory -----------------------------------------------------


@pytest.fixture
def train_stops_before_training(monkeypatch):
    """md2tf.train.main with data preparation replaced by a ValueError: no world, no Trainer."""
    from md2tf.training import inputs

    def stop(config, timeout_s=3600.0):
        raise ValueError("stopped before training")

    monkeypatch.setattr(inputs, "prepare_data", stop)
    from md2tf import train

    return train.main


def _train(main, run_dir, tmp_path) -> int:
    return md2tf_flags.call_command(main, ExperimentConfig, [
        f"--run_dir={run_dir}", "--dataset=synthetic", f"--data_dir={tmp_path / 'world'}"])


def test_a_second_training_on_one_run_dir_fails_at_once_naming_the_pid(
        tmp_path, capsys, train_stops_before_training):
    run_dir = tmp_path / "run"
    with locks.hold(str(run_dir / ".lock"), "the first training"):  # a live training's lock
        status = _train(train_stops_before_training, run_dir, tmp_path)
    err = capsys.readouterr().err
    assert status == md2tf_flags.USAGE_EXIT_STATUS, err
    assert err == (f"error: --run_dir={run_dir} is in use by process {os.getpid()} (lock file "
                   f"{run_dir}/.lock); another training writes there: wait for it to end, or choose "
                   "another --run_dir\n")
    assert os.listdir(run_dir) == []  # nothing written: no flags.txt, no config.json


def test_a_training_holds_its_run_dir_until_it_ends(tmp_path, capsys, monkeypatch,
                                                   train_stops_before_training):
    from md2tf.training import inputs

    run_dir, seen = tmp_path / "run", []

    def check_held(config, timeout_s=3600.0):
        with pytest.raises(locks.LockBusy, match=f"process {os.getpid()}"):
            with locks.hold(str(run_dir / ".lock"), "x"):
                pass
        seen.append(True)
        raise ValueError("stopped before training")

    monkeypatch.setattr(inputs, "prepare_data", check_held)
    assert _train(train_stops_before_training, run_dir, tmp_path) == md2tf_flags.USAGE_EXIT_STATUS
    assert seen and "error: stopped before training" in capsys.readouterr().err
    names = os.listdir(run_dir)
    assert "flags.txt" in names and ".lock" not in names  # lock released and removed at the end
    assert _train(train_stops_before_training, run_dir, tmp_path) == md2tf_flags.USAGE_EXIT_STATUS
    assert capsys.readouterr().err == "error: stopped before training\n"  # not "in use"


def test_only_the_chief_locks_the_run_dir(tmp_path, capsys, monkeypatch, train_stops_before_training):
    from md2tf.training import distribute

    monkeypatch.setattr(distribute, "is_chief", lambda strategy=None: False)
    run_dir = tmp_path / "run"
    with locks.hold(str(run_dir / ".lock"), "the chief"):
        assert _train(train_stops_before_training, run_dir, tmp_path) == 2
    assert capsys.readouterr().err == "error: stopped before training\n"
