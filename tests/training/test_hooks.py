"""Loop hooks: the ETA that includes the epoch ends, the best-epoch networks, hooks built from values."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from md2tf.rundir import RunDir
from md2tf.training import hooks
from md2tf.training import trainer as trainer_lib
from tests.training import fakes


class _Bar:
    """Records what the hook shows."""

    def __init__(self):
        self.etas = []

    def update(self, n=1, postfix=None, eta_s=None):
        self.etas.append(eta_s)

    def close(self):
        pass


def _info(step):
    return hooks.StepInfo(step, 0, {"loss/total": 0.1}, True, False, 1e-4)


def test_eta_counts_remaining_steps_and_epoch_ends():
    bar = hooks.ProgressBar(_Bar(), total_steps=10, steps_per_epoch=5)
    bar.step_s, bar.epoch_end_s = 2.0, 10.0
    assert bar.eta_s(3) == pytest.approx(7 * 2.0 + 2 * 10.0)  # epoch ends at steps 5 and 10 left
    assert bar.eta_s(5) == pytest.approx(5 * 2.0 + 2 * 10.0)  # step 5's own end runs after the bar
    assert bar.eta_s(6) == pytest.approx(4 * 2.0 + 1 * 10.0)
    assert bar.eta_s(10) == pytest.approx(10.0)  # the last validation
    assert hooks.ProgressBar(_Bar(), total_steps=None).eta_s(3) is None


def test_eta_measures_steps_and_the_epoch_end_and_skips_the_compiling_step(monkeypatch):
    """Fake clock: a 30 s first step, 1 s steps, 20 s of validation after step 2 (2 steps/epoch)."""
    clock = iter([0.0, 30.0, 31.0, 31.0, 52.0, 53.0])
    monkeypatch.setattr(hooks.time, "perf_counter", lambda: next(clock))
    shown = _Bar()
    bar = hooks.ProgressBar(shown, total_steps=6, steps_per_epoch=2)
    bar.begin(None, 0)                 # t=0
    bar.after_step(None, _info(1))  # t=30: compile step, not a step time
    bar.after_step(None, _info(2))  # t=31: 1 s
    bar.after_epoch(None, 1, 2)     # t=31, then validation runs
    bar.after_step(None, _info(3))  # t=52: 21 s = 1 s step + 20 s epoch end
    bar.after_step(None, _info(4))  # t=53: 1 s
    assert bar.step_s == pytest.approx(1.0) and bar.epoch_end_s == pytest.approx(20.0)
    assert shown.etas[0] is None
    # After step 4: 2 steps and the epoch ends at steps 4 (its validation) and 6.
    assert shown.etas[-1] == pytest.approx(2 * 1.0 + 2 * 20.0)


def test_best_epoch_keeps_its_networks_beside_one_latest_checkpoint(tmp_path):
    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=2, num_epochs=3, image_log_every=0)
    t = trainer_lib.Trainer(config, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(8))
    scripted = [0.5, 0.3, 0.4]  # validation abs_rel of epochs 1..3: epoch 2 is the best
    t.validate = lambda step: {"loss/total": 0.1, "depth/abs_rel": scripted.pop(0), "depth/a1": 0.7}
    at_step = {}
    result = t.train(step_callback=lambda s, _: at_step.setdefault(
        s, [v.numpy().copy() for v in t.depth_net.weights]))
    assert result.best["epoch"] == 2 and result.best["step"] == 4
    assert result.best["value"] == pytest.approx(0.3)
    assert RunDir(str(tmp_path)).read_best() == result.best
    assert [e for e, _, _ in result.validations] == [1, 2, 3]
    # Default --keep_checkpoints: only the latest training checkpoint stays.
    assert [os.path.basename(p) for p in glob.glob(str(tmp_path / "checkpoints" / "*.index"))] == [
        "ckpt-6.index"]
    depth, _ = fakes.tiny_networks()
    depth(tf.zeros([1, fakes.H, fakes.W, 3]))
    tf.train.Checkpoint(depth_net=depth).restore(result.best["checkpoint"]).expect_partial()
    for restored, saved in zip(depth.weights, at_step[4]):
        np.testing.assert_array_equal(restored.numpy(), saved)
    assert not np.allclose(at_step[4][0], at_step[6][0])  # training went on after the best


def test_hooks_take_what_they_need_not_the_trainer():
    """Each hook is built from callables and values: checkpointing, validation and the stop request."""
    saved, validated = [], []
    state = hooks.LoopState()
    last = {"step": -1}

    def save():
        saved.append(len(saved) + 1)
        return f"ckpt-{len(saved)}"

    checkpointing = hooks.Checkpointing(2, save, lambda: last["step"])
    checkpointing.after_step(state, _info(1))
    checkpointing.after_step(state, _info(2))
    assert saved == [1] and state.last_checkpoint == "ckpt-1"
    last["step"] = 2
    checkpointing.end(state, 2)  # the step is saved already
    assert saved == [1]

    validation = hooks.Validation(lambda step: validated.append(step) or {"loss/total": 0.5})
    validation.begin(state, 0)
    validation.after_epoch(state, 1, 2)
    assert validated == [2] and state.validations == [(1, 2, {"loss/total": 0.5})]

    class Stop:
        requested, signal_name = True, "SIGTERM"

    hooks.Preemption(Stop()).after_step(state, _info(3))
    assert state.stop_reason == "preempted"


def _k_info(step: int, epoch: int, fx: float, rotation: float, fy: float = 1.5) -> hooks.StepInfo:
    scalars = {"intrinsics/cam/fx": fx, "intrinsics/cam/fy": fy, "intrinsics/cam/cx": 0.5,
               "intrinsics/cam/cy": 0.5, "pose/rotation_deg": rotation}
    return hooks.StepInfo(step, epoch, scalars, True, False, 1e-4)


def _monitor_warnings(fx_by_step, rotation: float, fy_by_step=None, start_aspect=None) -> list[str]:
    monitor = hooks.IntrinsicsMonitor(("cam",), start_aspect=start_aspect)
    state = hooks.LoopState()
    for i, fx in enumerate(fx_by_step):
        fy = 1.5 if fy_by_step is None else fy_by_step[i]
        monitor.after_step(state, _k_info(i + 1, i // 4, fx, rotation, fy))
    monitor.end(state, len(fx_by_step))
    return state.warnings


def test_intrinsics_monitor_trusts_a_settled_k_under_rotation():
    assert _monitor_warnings([0.9, 0.8, 0.7, 0.6, 0.601, 0.6, 0.602, 0.603], rotation=0.3) == []


def test_intrinsics_monitor_says_when_k_still_moves_in_the_last_epoch():
    """Only the last epoch counts: a large early change is what learning K means."""
    (line,) = _monitor_warnings([0.9, 0.8, 0.7, 0.6, 0.6, 0.59, 0.58, 0.57], rotation=0.3)
    assert "camera cam still moved in the last epoch (focal length by 5.0 %" in line


def test_intrinsics_monitor_says_when_the_camera_hardly_rotates():
    (line,) = _monitor_warnings([0.6] * 8, rotation=0.01)
    assert "hardly rotates (mean 0.010 degrees" in line


def test_intrinsics_monitor_says_when_the_focal_lengths_disagree():
    """Settled, rotating, but fx drifted 20 % relative to fy (start: square pixels, fx / fy = 0.4
    normalised): the K settled at a wrong value, which only the aspect reveals."""
    fx = [0.6, 0.66, 0.7, 0.72, 0.72, 0.72, 0.72, 0.72]
    fy = [1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    (line,) = _monitor_warnings(fx, rotation=0.3, fy_by_step=fy, start_aspect={"cam": 0.4})
    assert "focal lengths of camera cam disagree: fx / fy moved +20.0 %" in line
    assert line.endswith("or known rotations (--pose_source=rotation), which pin it")
    # Both focal lengths wrong by the same factor keep the aspect: nothing to see (and nothing said).
    assert _monitor_warnings([1.2 * x for x in fx], rotation=0.3, fy_by_step=[1.2 * 1.8] * 8,
                             start_aspect={"cam": 0.4}) == []
    # Within the tolerance: 2 %.
    assert _monitor_warnings([0.612] * 8, rotation=0.3, start_aspect={"cam": 0.4}) == []
    # Without a start aspect nothing is compared.
    assert _monitor_warnings(fx, rotation=0.3, fy_by_step=fy) == []


def _rotation_warnings(rotations) -> list[str]:
    monitor, state = hooks.RotationMonitor(), hooks.LoopState()
    for i, rotation in enumerate(rotations):
        monitor.after_step(state, hooks.StepInfo(i + 1, i // 2, {"pose/rotation_deg": rotation}, True,
                                                 False, 1e-4))
    monitor.end(state, len(rotations))
    return state.warnings


def test_rotation_monitor_points_a_turning_camera_to_the_warmup():
    """Only the last epoch's mean counts (steps 3-4 here)."""
    (line,) = _rotation_warnings([0.1, 0.2, 1.4, 1.6])
    assert "turns 1.5 degrees per frame" in line and "--automask_warmup_steps" in line
    assert _rotation_warnings([2.0, 2.0, 0.3, 0.5]) == []  # a car's tenths of a degree
    assert _rotation_warnings([]) == []
