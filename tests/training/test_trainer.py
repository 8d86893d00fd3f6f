"""The training loop: smoke run, non-finite losses, stop requests, data errors (fake data in-test).

Heavier cases (MirroredStrategy vs one device, bitwise resume, SIGTERM, two-worker
MultiWorkerMirroredStrategy, the end-to-end ``md2tf.train`` smoke run) need a fresh process each and
are ``slow``; they run ``tests/training/run_case.py`` in a subprocess with a timeout.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from md2tf.config import DataConfig, ExperimentConfig
from md2tf.data.datasets.folder import read_intrinsics
from md2tf.losses import monodepth2_loss
from md2tf.models.checkpoint import load_learned_intrinsics
from md2tf.rundir import RunDir
from md2tf.training import inputs
from md2tf.training import trainer as trainer_lib
from tests.training import fakes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def event_tags(run_dir: str) -> set[str]:
    tags = set()
    for path in glob.glob(os.path.join(run_dir, "tensorboard", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def weights(t) -> list[np.ndarray]:
    return [v.numpy() for n in (t.depth_net, t.pose_net) for v in n.weights]


@pytest.mark.parametrize("real_networks", [
    pytest.param(False, id="stand_in_networks"),
    pytest.param(True, id="real_networks", marks=pytest.mark.slow)])
def test_smoke(tmp_path, real_networks):
    """A few steps (+ the real loss): finite, weights move, checkpoint, scalar and image summaries."""
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=2)
    t = trainer_lib.Trainer(config, dataset_fn=fakes.fake_dataset_fn(8),
                            networks=None if real_networks else fakes.tiny_networks)
    before = weights(t)
    result = t.train()
    assert (result.reason, result.step, result.epoch, result.nonfinite_steps) == ("completed", 2, 1, 0)
    assert np.isfinite(result.last_scalars["loss/total"])
    assert max(np.max(np.abs(a - b)) for a, b in zip(before, weights(t))) > 0
    assert result.checkpoint.endswith("ckpt-2")
    assert tf.io.gfile.exists(result.checkpoint + ".index")
    assert json.load(open(tmp_path / "config.json"))["data"]["height"] == fakes.H
    tags = event_tags(str(tmp_path))
    for tag in ("loss/total", "loss/reprojection_s3", "train/learning_rate", "train/samples_per_s",
                "automask/masked_fraction", "input/target", "disparity/s0", "automask/s0",
                "warped/source0", "val/loss/total", "val/depth/abs_rel", "val/depth/a1"):
        assert tag in tags, tag


def nan_after(num_ok: int):
    """A loss that is finite for ``num_ok`` calls (traces count once), then NaN."""
    calls = tf.Variable(0)

    def loss_fn(*args, **kwargs):
        out = monodepth2_loss(*args, **kwargs)
        calls.assign_add(1)
        total = tf.where(calls > num_ok, tf.constant(np.nan, tf.float32), out.total)
        return out._replace(total=total)

    return loss_fn


def test_nonfinite_steps_are_skipped_then_training_stops(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=50, max_nonfinite_steps=3,
                               image_log_every=0, validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(
        8, repeat=True), loss_fn=nan_after(1))
    seen = {}
    result = t.train(step_callback=lambda s, _: seen.setdefault(s, weights(t)))
    assert result.reason == "nonfinite" and result.step == 4 and result.nonfinite_steps == 3
    for s in (3, 4):  # NaN steps changed nothing
        for a, b in zip(seen[1], seen[s]):
            np.testing.assert_array_equal(a, b)
    assert result.checkpoint.endswith("ckpt-4") and tf.io.gfile.exists(result.checkpoint + ".index")
    assert int(t.optimizer.iterations.numpy()) == 1  # only the finite step reached Adam


def test_stop_request_saves_and_exits_after_the_step(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=100, image_log_every=0,
                               validate_every_epoch=False, save_every_steps=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                            dataset_fn=fakes.fake_dataset_fn(8, repeat=True))
    result = t.train(step_callback=lambda s, _: t.stop_request.request("test") if s == 2 else None)
    assert (result.reason, result.step) == ("preempted", 2)
    assert result.checkpoint.endswith("ckpt-2")
    # A new trainer resumes from it.
    again = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                                dataset_fn=fakes.fake_dataset_fn(8, repeat=True))
    assert again.restore() == result.checkpoint and int(again.step.numpy()) == 2


def test_learning_rate_follows_epochs_and_resume_skips_done_batches(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=2, num_epochs=3, lr_decay_epochs=(1, 2),
                               lr_decay_factor=0.5, learning_rate=1e-3, image_log_every=0,
                               validate_every_epoch=False)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(8))
    lrs = {}
    result = t.train(step_callback=lambda s, _: lrs.setdefault(s, float(t.optimizer.learning_rate)))
    assert result.step == 6 and result.epoch == 3
    np.testing.assert_allclose([lrs[s] for s in range(1, 7)], [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])


def test_missing_kitti_dir_names_flag_and_synthetic_config(tmp_path):
    config = ExperimentConfig(data=DataConfig(dataset="kitti", data_dir=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match=r"--data_dir.*download_kitti.*configs/synthetic.flags"):
        inputs.check_data_available(config)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_keeps_losses_float32(tmp_path, policy):
    import keras

    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=1, mixed_precision=policy,
                               image_log_every=0, validate_every_epoch=False)
    try:
        t = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                                dataset_fn=fakes.fake_dataset_fn(4))
        assert t.depth_net.conv1.compute_dtype != "float32"
        assert isinstance(t.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
        result = t.train()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.step == 1 and result.nonfinite_steps == 0
    assert np.isfinite(result.last_scalars["loss/total"])


@pytest.mark.slow
def test_jit_compile_single_replica_runs(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=1, jit_compile=True, image_log_every=0,
                               validate_every_epoch=False)
    result = trainer_lib.Trainer(config, networks=fakes.tiny_networks,
                                 dataset_fn=fakes.fake_dataset_fn(4)).train()
    assert result.step == 1 and np.isfinite(result.last_scalars["loss/total"])



@pytest.mark.slow
def test_jit_compile_loss_step_matches_the_graph_loss_step(tmp_path):
    """--jit_compile_loss: the loss runs as an XLA cluster; one step moves the weights as without it."""
    weights = {}
    for jit in (False, True):
        config = fakes.tiny_config(str(tmp_path / str(jit)), steps_per_epoch=1, jit_compile_loss=jit,
                                   image_log_every=0, validate_every_epoch=False)
        t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(4))
        assert (t.loss_fn.__name__ == "xla_monodepth2_loss") == jit
        initial = [v.numpy() for v in t.variables]
        assert t.train().step == 1
        weights[jit] = [v.numpy() for v in t.variables]
    # Fresh trainers start from the same seed. Adam's first update is about lr * sign(gradient), so
    # gradients that differ by float rounding can only flip the sign of near-zero ones.
    graph = np.concatenate([(w - w0).ravel() for w, w0 in zip(weights[False], initial)])
    xla = np.concatenate([(w - w0).ravel() for w, w0 in zip(weights[True], initial)])
    assert np.abs(graph).mean() > 1e-5  # the step moved the weights
    assert np.abs(xla - graph).mean() < 0.01 * np.abs(graph).mean()

# --- subprocess cases (slow) --------------------------------------------------------------------


def run_case(case: str, run_dir: str, timeout: float, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.training.run_case", case, run_dir], cwd=REPO,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_mirrored_two_cpus_matches_one_device(tmp_path):
    out = run_case("mirrored", str(tmp_path), timeout=600)
    assert out["replicas"] == 2
    assert out["max_update"] > 1e-3  # SGD(lr=1): the update is the gradient itself
    assert out["max_diff"] < 1e-4 * max(1.0, out["max_update"]), out


@pytest.mark.slow
def test_resume_is_bitwise_identical(tmp_path):
    out = run_case("resume", str(tmp_path), timeout=600, env={"TF_ENABLE_ONEDNN_OPTS": "0"})
    assert out["steps"] == [4, 2, 4]
    assert out["bitwise_equal"] and out["optimizer_equal"], out
    assert out["changed"] > 0
    assert out["lr"] == pytest.approx(1e-5)


@pytest.mark.slow
def test_sigterm_leaves_a_restorable_checkpoint(tmp_path):
    err_path = tmp_path / "stderr.txt"
    proc = subprocess.Popen([sys.executable, "-m", "tests.training.run_case", "sigterm",
                             str(tmp_path / "run")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=open(err_path, "w"), text=True)
    try:
        deadline = time.time() + 400
        for line in proc.stdout:
            if line.startswith("STEP 2"):
                proc.send_signal(signal.SIGTERM)
                break
            assert time.time() < deadline, "no training step within the time limit"
        rest = proc.communicate(timeout=200)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    result = json.loads([x for x in rest.splitlines() if x.startswith("RESULT ")][-1][7:])
    assert result["reason"] == "preempted" and result["step"] >= 2
    from md2tf.models import checkpoint as model_checkpoint

    config, depth_net, pose_net = model_checkpoint.load_models(str(tmp_path / "run"))
    assert config.data.height == fakes.H and pose_net is not None
    step = tf.train.load_variable(result["checkpoint"], "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == result["step"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_local_workers_run_and_exit(tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.training.run_case", "multiworker", str(tmp_path)], cwd=REPO,
            env={**os.environ, "TF_CONFIG": json.dumps(tf_config)}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = []
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads([x for x in out.splitlines() if x.startswith("RESULT ")][-1][7:]))
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 and r["step"] == 2 for r in results)
    assert results[0]["loss"] == pytest.approx(results[1]["loss"])  # reduced across workers
    assert results[0]["checkpoint"].endswith("ckpt-2") and results[1]["checkpoint"] is None
    assert not glob.glob(str(tmp_path / "checkpoints" / "workertemp_*" / "*.index"))


@pytest.mark.slow
def test_train_entry_point_smoke_flags(tmp_path):
    """``python -m md2tf.train --flagfile=configs/smoke.flags``: world generated, 2 steps, run dir."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "md2tf.train", "--flagfile=configs/smoke.flags", f"--run_dir={run_dir}",
           f"--synthetic_cache_dir={tmp_path / 'world'}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "flags.txt").exists() and (run_dir / "config.json").exists()
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-2")
    assert "val/depth/abs_rel" in event_tags(str(run_dir))
    replay = (run_dir / "flags.txt").read_text()
    assert "--height=64" in replay and "--max_steps=2" in replay


def _learned_k_run(tmp_path):
    """(config, dataset_fn) of a tiny ``--intrinsics=learned`` run: one camera, every other sample
    flipped."""
    base = fakes.tiny_config(str(tmp_path), steps_per_epoch=2)
    config = dataclasses.replace(base, data=dataclasses.replace(base.data, intrinsics="learned"))
    fake = fakes.fake_dataset_fn(8)

    def with_cameras(split, batch_size, training, input_context=None, seed=None):
        ds = fake(split, batch_size, training, input_context, seed)
        return ds.map(lambda b: b._replace(camera=tf.zeros([batch_size], tf.int32),
                                           flipped=tf.range(batch_size) % 2 == 0))

    return config, with_cameras


def test_learned_intrinsics_train_checkpoint_and_file(tmp_path):
    """``--intrinsics=learned``: K moves with the networks, is checkpointed with them, logged per
    camera, and written to intrinsics_learned.json in the format --dataset=folder reads."""
    config, with_cameras = _learned_k_run(tmp_path)
    start = np.array([[0.5, 0, 0.55], [0, 1.5, 0.45], [0, 0, 1]], np.float32)
    t = trainer_lib.Trainer(config, dataset_fn=with_cameras, networks=fakes.tiny_networks,
                            learned_cameras=(("clip",), start[None]))
    np.testing.assert_allclose(t.learned_intrinsics()["clip"], [0.5, 1.5, 0.55, 0.45], rtol=1e-5)
    assert any(v is t.intrinsics.focal for v in t.variables)
    result = t.train()
    assert result.reason == "completed"
    learned = np.array(t.learned_intrinsics()["clip"])
    assert np.max(np.abs(learned - [0.5, 1.5, 0.55, 0.45])) > 1e-5  # gradients reached K
    names = [n for n, _ in tf.train.list_variables(result.checkpoint)]
    assert any(n.startswith("intrinsics/") for n in names), names
    K = read_intrinsics(RunDir(str(tmp_path)).learned_intrinsics_path)
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], learned, rtol=1e-6)
    assert {"intrinsics/clip/fx", "intrinsics/clip/cy"} <= event_tags(str(tmp_path))
    resumed = trainer_lib.Trainer(dataclasses.replace(config, train=dataclasses.replace(
        config.train, resume=True)), dataset_fn=with_cameras, networks=fakes.tiny_networks,
        learned_cameras=(("clip",), start[None]))
    resumed.restore()
    np.testing.assert_allclose(resumed.learned_intrinsics()["clip"], learned, rtol=1e-6)
    # What evaluation, export and predict read: the checkpoint's K, from the run and from best/.
    (stored,) = load_learned_intrinsics(str(tmp_path)).values()
    np.testing.assert_allclose(stored, learned, rtol=1e-6)
    assert result.best is not None
    (best,) = load_learned_intrinsics(RunDir(str(tmp_path)).best).values()
    assert np.all(np.isfinite(best)) and np.max(np.abs(np.array(best) - [0.5, 1.5, 0.55, 0.45])) > 1e-5
    assert not any("disagree" in line for line in result.warnings), result.warnings


def test_learned_intrinsics_summary_flags_focal_lengths_that_drifted_apart(tmp_path):
    """The trainer hands the start K's aspect to hooks.IntrinsicsMonitor: a run whose fx ends 20 %
    off relative to its fy (set here by hand) says so in its summary."""
    config, with_cameras = _learned_k_run(tmp_path)
    start = np.array([[0.5, 0, 0.5], [0, 1.5, 0.5], [0, 0, 1]], np.float32)
    t = trainer_lib.Trainer(config, dataset_fn=with_cameras, networks=fakes.tiny_networks,
                            learned_cameras=(("clip",), start[None]))
    scale = t.intrinsics.learning_rate_scale
    t.intrinsics.focal.assign([[np.log(np.expm1(0.6)) / scale, np.log(np.expm1(1.5)) / scale]])
    result = t.train()
    (line,) = [w for w in result.warnings if "disagree" in w]
    assert "camera clip disagree: fx / fy moved +20." in line
