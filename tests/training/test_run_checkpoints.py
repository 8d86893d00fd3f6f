"""Run-directory checkpoints: round trip, every variable saved, keep-K, worker paths, damaged or
mismatched checkpoints, a full disk."""

from __future__ import annotations

import errno
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf.models import checkpoint as model_checkpoint
from md2tf.training import distribute, run_checkpoints
from tests.training import fakes


def build_state():
    depth, pose = fakes.tiny_networks()
    depth(tf.zeros([1, 16, 16, 3]))
    pose(tf.zeros([1, 16, 16, 6]))
    variables = depth.trainable_variables + pose.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64)
    epoch = tf.Variable(0, dtype=tf.int64)
    return depth, pose, optimizer, step, epoch


def make_manager(run_dir, keep=2):
    depth, pose, optimizer, step, epoch = build_state()
    manager = run_checkpoints.RunCheckpoints(str(run_dir), depth_net=depth, pose_net=pose,
                                         optimizer=optimizer, step=step, epoch=epoch, keep=keep)
    return manager, (depth, pose, optimizer, step, epoch)


def test_save_restore_round_trip(tmp_path):
    manager, (depth, pose, optimizer, step, epoch) = make_manager(tmp_path)
    grads = [tf.ones_like(v) for v in depth.trainable_variables + pose.trainable_variables]
    optimizer.apply(grads, depth.trainable_variables + pose.trainable_variables)
    step.assign(7)
    epoch.assign(2)
    path = manager.save()
    assert path.endswith("ckpt-7") and path.startswith(str(tmp_path / "checkpoints"))
    saved = [v.numpy() for v in depth.weights + pose.weights + optimizer.variables]

    other, (d2, p2, o2, s2, e2) = make_manager(tmp_path)
    assert other.restore_latest() == path
    assert (int(s2.numpy()), int(e2.numpy())) == (7, 2)
    for a, b in zip(saved, [v.numpy() for v in d2.weights + p2.weights + o2.variables]):
        np.testing.assert_array_equal(a, b)
    # Every network variable has an entry (Keras 3 can silently drop untracked ones).
    assert model_checkpoint.unsaved_variables("depth_net", depth, path) == []
    assert model_checkpoint.unsaved_variables("pose_net", pose, path) == []
    names = {n for n, _ in tf.train.list_variables(path)}
    assert any(n.startswith("optimizer/") for n in names) and any(n.startswith("epoch") for n in names)


def test_keeps_last_k(tmp_path):
    manager, state = make_manager(tmp_path, keep=2)
    for s in (1, 2, 3):
        state[3].assign(s)
        manager.save()
    kept = sorted(os.path.basename(p) for p in manager.manager.checkpoints)
    assert kept == ["ckpt-2", "ckpt-3"]
    assert not tf.io.gfile.exists(str(tmp_path / "checkpoints" / "ckpt-1.index"))


def test_restore_with_no_checkpoint_returns_none(tmp_path):
    manager, _ = make_manager(tmp_path)
    assert manager.restore_latest() is None


def test_run_dir_required():
    depth, pose, optimizer, step, epoch = build_state()
    with pytest.raises(ValueError, match="--run_dir"):
        run_checkpoints.RunCheckpoints("", depth_net=depth, pose_net=pose, optimizer=optimizer,
                                   step=step, epoch=epoch)


def test_non_chief_worker_writes_to_temporary_dir(tmp_path, monkeypatch):
    tf_config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert not distribute.is_chief()
    assert distribute.worker_dir("/r/checkpoints", None) == "/r/checkpoints/workertemp_1"
    tf_config["task"]["index"] = 0
    monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief()
    assert distribute.worker_dir("/r/checkpoints", None) == "/r/checkpoints"


def test_bad_tf_config_and_strategy_names(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.tf_config()
    monkeypatch.delenv("TF_CONFIG")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.select_strategy("multi_worker")
    with pytest.raises(ValueError, match="--strategy"):
        distribute.select_strategy("tpu")
    assert distribute.select_strategy("auto") is tf.distribute.get_strategy()


def _truncate(prefix: str) -> None:
    for path in tf.io.gfile.glob(prefix + ".data-*"):
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size // 2)


def test_truncated_newest_checkpoint_falls_back_to_the_previous(tmp_path, caplog):
    manager, (depth, pose, optimizer, step, epoch) = make_manager(tmp_path, keep=3)
    step.assign(2)
    want = [v.numpy() for v in depth.weights]
    manager.save()
    step.assign(4)
    for v in depth.trainable_variables:
        v.assign(v + 1.0)
    newest = manager.save()
    _truncate(newest)
    os.makedirs(tmp_path / "checkpoints" / "ckpt-6_temp")  # an interrupted save's leftover
    again, (depth2, _, _, step2, _) = make_manager(tmp_path, keep=3)
    assert not (tmp_path / "checkpoints" / "ckpt-6_temp").exists()
    with caplog.at_level("WARNING"):
        path = again.restore_latest()
    assert path.endswith("ckpt-2") and int(step2.numpy()) == 2
    for a, b in zip(want, [v.numpy() for v in depth2.weights]):
        np.testing.assert_array_equal(a, b)
    assert any("ckpt-4 does not restore" in r.getMessage() for r in caplog.records)
    _truncate(path)
    third, _ = make_manager(tmp_path, keep=3)
    with pytest.raises(ValueError, match=r"no checkpoint of .* restores, every one is damaged: "
                                         r".*ckpt-4 .*ckpt-2 .*Start a new --run_dir$"):
        third.restore_latest()


class WideDepthNet(fakes.TinyDepthNet):
    """The stand-in depth network with another layer width: a checkpoint of other networks."""

    def __init__(self, **kwargs):
        tf.keras.Model.__init__(self, **kwargs)
        self.conv1 = tf.keras.layers.Conv2D(16, 3, padding="same", activation="elu")
        self.conv2 = tf.keras.layers.Conv2D(1, 3, padding="same")


def test_checkpoints_of_other_networks_are_not_called_damaged(tmp_path):
    manager, (_, _, _, step, _) = make_manager(tmp_path)
    step.assign(2)
    manager.save()
    depth = WideDepthNet()
    depth(tf.zeros([1, 16, 16, 3]))
    _, pose, optimizer, step, epoch = build_state()
    other = run_checkpoints.RunCheckpoints(str(tmp_path), depth_net=depth, pose_net=pose,
                                       optimizer=optimizer, step=step, epoch=epoch)
    with pytest.raises(ValueError) as error:
        other.restore_latest()
    message = str(error.value)
    assert "ckpt-2 (ValueError: Received incompatible tensor" in message
    assert "written for other networks than this run's" in message and "config.json" in message
    assert "damaged" not in message and "Remove" not in message
    assert tf.io.gfile.exists(str(tmp_path / "checkpoints" / "ckpt-2.index"))


# --- a full disk ---------------------------------------------------------------------------------


def fill_disk_on_save(manager: run_checkpoints.RunCheckpoints, error: Exception, calls: list):
    """Makes ``manager``'s next saves fail as on a full disk, after writing part of the checkpoint
    into its ``ckpt-N_temp`` folder (as TensorFlow's sharded save does)."""

    def save(checkpoint_number):
        calls.append(checkpoint_number)
        temp = os.path.join(manager.directory, f"ckpt-{checkpoint_number}_temp")
        os.makedirs(temp, exist_ok=True)
        with open(os.path.join(temp, "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
            f.write(b"\0" * 4096)
        raise error

    manager.manager.save = save


DISK_FULL = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
             tf.errors.ResourceExhaustedError(None, None, "/r/ckpt-4_temp/part-00000-of-00001.data-"
                                              "00000-of-00001.tempstate1; No space left on device")]


@pytest.mark.parametrize("error", DISK_FULL, ids=["OSError", "tf"])
def test_full_disk_frees_the_partial_checkpoint_and_keeps_the_previous(tmp_path, error):
    manager, (depth, _, _, step, _) = make_manager(tmp_path)
    step.assign(2)
    manager.save()
    want = [v.numpy() for v in depth.weights]
    step.assign(4)
    calls = []
    fill_disk_on_save(manager, error, calls)
    with pytest.raises(run_checkpoints.DiskFullError) as raised:
        manager.save()
    message = str(raised.value)
    assert isinstance(raised.value, ValueError) and "\n" not in message
    assert message.startswith("no space left on /")
    saving = tmp_path / "checkpoints" / "ckpt-4"
    assert (f"(saving {saving}): freed the partial checkpoint; ckpt-2 is intact, and the same "
            "command resumes from it") in message
    assert calls == [4] and not glob.glob(str(tmp_path / "checkpoints" / "*_temp"))
    again, (depth2, _, _, step2, _) = make_manager(tmp_path)
    assert again.restore_latest().endswith("ckpt-2") and int(step2.numpy()) == 2
    for a, b in zip(want, [v.numpy() for v in depth2.weights]):
        np.testing.assert_array_equal(a, b)


def test_other_save_errors_are_not_taken_for_a_full_disk(tmp_path):
    manager, _ = make_manager(tmp_path)
    fill_disk_on_save(manager, OSError(errno.EACCES, "Permission denied"), [])
    with pytest.raises(OSError, match="Permission denied") as raised:
        manager.save()
    assert not isinstance(raised.value, run_checkpoints.DiskFullError)
