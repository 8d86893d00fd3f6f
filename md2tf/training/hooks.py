"""The cadences of the training loop as small named hooks (log, images, validate, save, profile, ...).

`md2tf.training.trainer.Trainer.train` is a loop over steps and epochs; everything that happens
every N steps or at the end of an epoch is a `Hook` with its own interval (the shape of Orbit's
controller actions and of Keras callbacks). A hook gets what it needs at construction (a writer, a
``save`` or ``validate`` callable, the stop request), never the trainer; the trainer assembles them
(``Trainer.default_hooks``). Hooks share one `LoopState` (counters, the last scalars, the stop
reason) and ask the loop to stop by setting ``state.stop_reason``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from md2tf.progress import Progress
from md2tf.training import summaries
from md2tf.training.preemption import StopRequest

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StepInfo:
    """What one global training step produced.

    Attributes:
      step: global step after the update (1 after the first step).
      epoch: the epoch the step belongs to (0-based).
      scalars: the step's losses, replica means, as floats.
      applied: False when the loss or a gradient was non-finite and the update was skipped.
      stop_requested: a worker received SIGTERM/SIGINT (checked in the compiled step).
      learning_rate: the learning rate of the step.
    """

    step: int
    epoch: int
    scalars: dict[str, float]
    applied: bool
    stop_requested: bool
    learning_rate: float


@dataclasses.dataclass
class LoopState:
    """Mutable state shared by the loop and its hooks.

    Attributes:
      total_steps: steps the run will take in all (None = unknown), for the progress bar.
      stop_reason: None while training; ``max_steps``, ``preempted`` or ``nonfinite`` to stop.
      scalars: the latest step's scalars.
      consecutive_nonfinite, total_nonfinite: skipped updates in a row / in all.
      last_checkpoint: prefix of the last checkpoint written (chief only).
      validations: ``(epoch, step, results)`` of every validation pass of this call, in order.
      best: ``best.json`` of the best validation epoch so far (chief only; None without one).
      warnings: what the run summary must say about the result (e.g. a learned K that cannot be
        trusted), one line each.
    """

    total_steps: int | None = None
    stop_reason: str | None = None
    scalars: dict[str, float] = dataclasses.field(default_factory=dict)
    consecutive_nonfinite: int = 0
    total_nonfinite: int = 0
    last_checkpoint: str | None = None
    validations: list[tuple[int, int, dict[str, float]]] = dataclasses.field(default_factory=list)
    best: dict | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


class Hook:
    """Base hook: every method is a no-op; subclasses override the ones they need."""

    def begin(self, state: LoopState, step: int) -> None:
        """Before the first step (``step`` = the global step training starts or resumes at)."""

    def after_step(self, state: LoopState, info: StepInfo) -> None:
        """After every step."""

    def after_epoch(self, state: LoopState, epoch: int, step: int) -> None:
        """After ``epoch`` epochs are complete (1 after the first), at global ``step``."""

    def end(self, state: LoopState, step: int) -> None:
        """Once, when training ends for any reason (in reverse hook order)."""


def due(step: int, every: int) -> bool:
    """True when a cadence of ``every`` steps (0 = never) fires at ``step``."""
    return every > 0 and step % every == 0


class NonFiniteGuard(Hook):
    """Counts skipped (non-finite) updates; stops after ``max_consecutive`` in a row."""

    def __init__(self, max_consecutive: int) -> None:
        self.max_consecutive = max_consecutive

    def after_step(self, state, info):
        if info.applied:
            state.consecutive_nonfinite = 0
            return
        state.consecutive_nonfinite += 1
        state.total_nonfinite += 1
        logger.warning("non-finite loss at step %d (%d in a row): update skipped", info.step,
                       state.consecutive_nonfinite)
        if state.consecutive_nonfinite >= self.max_consecutive:
            state.stop_reason = "nonfinite"

    def end(self, state, step):
        if state.stop_reason == "nonfinite":
            logger.error("stopping: %d consecutive non-finite losses, the last at step %d; saved %s",
                         state.consecutive_nonfinite, step, state.last_checkpoint)


class Preemption(Hook):
    """Stops after the current step when any worker received SIGTERM/SIGINT."""

    def __init__(self, stop_request: StopRequest) -> None:
        self.stop_request = stop_request

    def after_step(self, state, info):
        if info.stop_requested or self.stop_request.requested:
            state.stop_reason = "preempted"

    def end(self, state, step):
        if state.stop_reason == "preempted":
            logger.warning("stop requested (%s): saved %s at step %d", self.stop_request.signal_name,
                           state.last_checkpoint, step)


class ScalarSummaries(Hook):
    """Losses, learning rate, step time, samples/s, skipped updates and dropped samples to TensorBoard.

    Args:
      writer: the summary writer.
      every: steps between two writes (and the first step).
      batch_size: global batch size (samples/s).
      corrupt_samples: ``() -> int``, training samples dropped for corrupt images so far.
    """

    def __init__(self, writer, every: int, batch_size: int,
                 corrupt_samples: Callable[[], int] = lambda: 0) -> None:
        self.writer, self.every, self.batch_size = writer, every, batch_size
        self.corrupt_samples = corrupt_samples
        self._time, self._step = time.perf_counter(), 0

    def begin(self, state, step):
        self._time, self._step = time.perf_counter(), step

    def after_step(self, state, info):
        if not (due(info.step, self.every) or info.step == 1):
            return
        now = time.perf_counter()
        dt = (now - self._time) / max(info.step - self._step, 1)
        self._time, self._step = now, info.step
        summaries.write_scalars(self.writer, {
            **info.scalars, "train/learning_rate": info.learning_rate, "train/step_time_s": dt,
            "train/samples_per_s": self.batch_size / max(dt, 1e-9),
            "train/nonfinite_steps": state.total_nonfinite,
            "train/corrupt_samples": self.corrupt_samples()}, info.step)


class ImageSummaries(Hook):
    """Input, disparities, auto-masks and warped sources of a fixed validation batch.

    Args:
      writer: the summary writer.
      every: steps between two writes.
      batch_fn: ``() -> batch or None``, called once at the start.
      images_fn: ``batch -> {name: image tensor}``.
    """

    def __init__(self, writer, every: int, batch_fn: Callable[[], object],
                 images_fn: Callable[[object], dict]) -> None:
        self.writer, self.every, self.batch_fn, self.images_fn = writer, every, batch_fn, images_fn
        self._batch = None

    def begin(self, state, step):
        self._batch = self.batch_fn()

    def after_step(self, state, info):
        if self._batch is not None and due(info.step, self.every):
            summaries.write_images(self.writer, self.images_fn(self._batch), info.step)


class Checkpointing(Hook):
    """Saves every ``every_steps`` steps, after every epoch, and at the end (never twice a step).

    Args:
      every_steps: steps between two saves (0 = only at epoch ends and the end).
      save: ``() -> prefix or None`` saves the current step (None on non-chief workers).
      saved_step: ``() -> int``, the step of the last checkpoint written (-1 = none).
    """

    def __init__(self, every_steps: int, save: Callable[[], str | None],
                 saved_step: Callable[[], int]) -> None:
        self.every_steps, self.save, self.saved_step = every_steps, save, saved_step

    def _save(self, state, step):
        if self.saved_step() != step:
            state.last_checkpoint = self.save() or state.last_checkpoint

    def after_step(self, state, info):
        if due(info.step, self.every_steps):
            self._save(state, info.step)

    def after_epoch(self, state, epoch, step):
        self._save(state, step)

    def end(self, state, step):
        self._save(state, step)


class Validation(Hook):
    """A validation pass after every epoch: one short line on the console, and the networks of the
    best epoch (lowest `best_metric`) kept in ``<run_dir>/best/`` when ``best`` is given.

    Args:
      validate: ``step -> results`` (``{"loss/total": ..., "depth/abs_rel": ...}``; empty when
        there is nothing to validate on).
      progress: the progress bar to print the line above (None: the log).
      best: a ``md2tf.training.run_checkpoints.BestNetworks`` (None: no best-epoch networks).
    """

    def __init__(self, validate: Callable[[int], dict[str, float]], progress: Progress | None = None,
                 best=None) -> None:
        self.validate, self.progress, self.best = validate, progress, best

    def begin(self, state, step):
        state.best = self.best.record if self.best is not None else None

    def after_epoch(self, state, epoch, step):
        results = self.validate(step)
        if not results:
            return
        state.validations.append((epoch, step, results))
        line = f"epoch {epoch} (step {step}): " + validation_line(results)
        metric = best_metric(results)
        if self.best is not None and metric and self.best.is_better(results[metric]):
            self.best.save(epoch, metric, results[metric])
            state.best = self.best.record
            line += "  (best so far)" if len(state.validations) > 1 else ""
        (self.progress.write if self.progress else logger.info)(line)


#: Mean rotation (degrees per frame) below which a learned K is poorly determined.
MIN_ROTATION_DEG = 0.05
#: Mean rotation (degrees per frame) above which auto-masking can keep the pose network from learning
#: the rotations (`RotationMonitor`).
MAX_MASKED_ROTATION_DEG = 1.0
#: Relative change of a focal length, and change of a principal point in units of the image size,
#: over the last epoch above which a learned K has not settled.
MAX_FOCAL_CHANGE, MAX_PRINCIPAL_CHANGE = 0.01, 0.005
#: Relative change of a learned K's pixel aspect ``fx / fy`` from its start's above which the focal
#: lengths are not trusted (3 %: the accuracy docs/data.md asks of a learned focal length).
MAX_ASPECT_CHANGE = 0.03


class IntrinsicsMonitor(Hook):
    """``--intrinsics=learned``: says in the summary when the learned K should not be trusted.

    K is determined by the rotation between frames (Gordon et al., ICCV 2019, Sec. 3): under pure
    translation a focal-length error is absorbed by the depth (as for a rectified stereo pair, which
    ``ExperimentConfig`` therefore refuses without temporal frames). Per
    epoch the hook averages ``pose/rotation_deg`` (the rotation between neighbouring frames: the
    pose network's, or the known poses' with ``--pose_source=gt`` or ``rotation``) and keeps each camera's K
    (``intrinsics/<camera>/{fx,fy,cx,cy}``) at the epoch's first step; at the end it adds to
    ``state.warnings``: too little rotation in the last epoch, a K that still moved in it, or focal
    lengths that no longer agree.

    That last check catches a K that settled at a wrong value. A pose network that learns the
    rotations absorbs a focal-length error to first order (a yaw ``w`` moves the image by ``fx w``, a
    pitch by ``fy w``), so how well each focal length is pinned depends on the footage, and the two
    drift apart: on the synthetic world's turning cameras ``fx`` ended 20-25 % long while ``fy`` was
    within 1.3 % on one seed and 5.7 % on another (docs/data.md). The start K fixes the pixel aspect (square pixels for the default
    start; nearly every camera has them, so a calibration rarely differs), so a learned ``fx / fy``
    more than `MAX_ASPECT_CHANGE` off the start's says at least one focal length is wrong.

    Args:
      cameras: the cameras' names (the scalar tags).
      start_aspect: camera name -> the start K's normalised ``fx / fy`` (``(fx / W) / (fy / H)``, the
        units of the ``intrinsics/`` scalars); cameras left out are not checked.
    """

    def __init__(self, cameras: tuple[str, ...], start_aspect: dict[str, float] | None = None) -> None:
        self.cameras = cameras
        self.start_aspect = dict(start_aspect or {})
        self._start: dict[str, tuple[float, ...]] = {}
        self._last: dict[str, tuple[float, ...]] = {}
        self._rotation: list[float] = []
        self._epoch = -1

    def _k(self, scalars: dict[str, float], camera: str) -> tuple[float, ...] | None:
        keys = [f"intrinsics/{camera}/{c}" for c in ("fx", "fy", "cx", "cy")]
        return tuple(scalars[k] for k in keys) if all(k in scalars for k in keys) else None

    def after_step(self, state, info):
        if info.epoch != self._epoch:  # a new epoch (or the first step of a resumed run)
            self._epoch, self._rotation = info.epoch, []
            self._start = {c: k for c in self.cameras if (k := self._k(info.scalars, c)) is not None}
        self._last = {c: k for c in self.cameras if (k := self._k(info.scalars, c)) is not None}
        if "pose/rotation_deg" in info.scalars:
            self._rotation.append(info.scalars["pose/rotation_deg"])

    def end(self, state, step):
        if self._rotation:
            rotation = float(np.mean(self._rotation))
            if rotation < MIN_ROTATION_DEG:
                state.warnings.append(
                    f"the camera hardly rotates (mean {rotation:.3f} degrees between frames in the last "
                    f"epoch, below {MIN_ROTATION_DEG}): the learned K is poorly determined; use footage "
                    "with turns, or give the calibration")
        for camera, start in self._start.items():
            end = self._last.get(camera, start)
            focal = max(abs(e / s - 1.0) for s, e in zip(start[:2], end[:2]))
            principal = max(abs(e - s) for s, e in zip(start[2:], end[2:]))
            if focal > MAX_FOCAL_CHANGE or principal > MAX_PRINCIPAL_CHANGE:
                state.warnings.append(
                    f"the learned K of camera {camera} still moved in the last epoch (focal length by "
                    f"{100 * focal:.1f} %, principal point by {100 * principal:.1f} % of the image): "
                    "train longer before trusting it")
        for camera, end in self._last.items():
            if camera not in self.start_aspect:
                continue
            change = (end[0] / end[1]) / self.start_aspect[camera] - 1.0
            if abs(change) > MAX_ASPECT_CHANGE:
                state.warnings.append(
                    f"the learned focal lengths of camera {camera} disagree: fx / fy moved {100 * change:+.1f} % "
                    f"from the start's (square pixels unless the start K said otherwise), so at least one of "
                    "them is not determined by this footage (a pose network's rotations absorb a "
                    "focal-length error): do not use this K for metric geometry; give the calibration, "
                    "or known rotations (--pose_source=rotation), which pin it")


class RotationMonitor(Hook):
    """A pose network that turns by more than `MAX_MASKED_ROTATION_DEG` per frame, auto-masked from the
    first step: says in the summary that the mask may have kept it from learning the rotations.

    Auto-masking (paper Eq. 5) gives no gradient to a rotation predicted the wrong way, or more than
    twice too large: every pixel then matches the unwarped source better. A handheld camera turns by
    degrees per frame, and a pose network that got the direction wrong stays wrong; the warm-up
    (``--automask_warmup_steps``) trains without the mask first. The hook averages
    ``pose/rotation_deg`` over the last epoch.
    """

    def __init__(self) -> None:
        self._rotation: list[float] = []
        self._epoch = -1

    def after_step(self, state, info):
        if info.epoch != self._epoch:
            self._epoch, self._rotation = info.epoch, []
        if "pose/rotation_deg" in info.scalars:
            self._rotation.append(info.scalars["pose/rotation_deg"])

    def end(self, state, step):
        rotation = float(np.mean(self._rotation)) if self._rotation else 0.0
        if rotation > MAX_MASKED_ROTATION_DEG:
            state.warnings.append(
                f"the pose network turns {rotation:.1f} degrees per frame (mean of the last epoch): "
                "auto-masking gives no gradient to a rotation predicted the wrong way, so if the depth "
                "did not learn, retrain with --automask_warmup_steps=<about half the steps> and keep "
                "the footage's full frame rate (docs/mono.md, \"A camera that turns\")")


def best_metric(results: dict[str, float]) -> str | None:
    """The validation score the best epoch is chosen by: ``depth/abs_rel`` where the split has depth
    GT, else the validation loss (lower is better for both)."""
    return next((k for k in ("depth/abs_rel", "loss/total") if k in results), None)


def validation_line(results: dict[str, float]) -> str:
    """``val loss 0.1234  abs_rel 0.206  a1 0.744`` from a validation result dict."""
    parts = [f"val loss {results['loss/total']:.4f}"] if "loss/total" in results else []
    parts += [f"{k} {results[f'depth/{k}']:.3f}" for k in ("abs_rel", "a1") if f"depth/{k}" in results]
    return "  ".join(parts)


class Profiler(Hook):
    """Captures a TensorBoard profiler trace of steps ``start + 1 .. stop``."""

    def __init__(self, logdir: str, start: int, stop: int) -> None:
        self.logdir, self.start, self.stop = logdir, start, stop
        self._active = False

    def _maybe_start(self, step):
        if step == self.start and not self._active:
            tf.profiler.experimental.start(self.logdir)
            self._active = True

    def begin(self, state, step):
        self._maybe_start(step)

    def after_step(self, state, info):
        if self._active and info.step >= self.stop:
            tf.profiler.experimental.stop()
            self._active = False
        self._maybe_start(info.step)

    def end(self, state, step):
        if self._active:
            tf.profiler.experimental.stop()
            self._active = False


class ProgressBar(Hook):
    """The console progress bar: steps, samples/s, the latest loss and an ETA that includes the work
    between epochs (validation, checkpoints), which a rate over steps alone does not see.

    ETA = remaining steps x step time (moving average, the first, compiling step left out) +
    remaining epoch ends x the measured time of the last epoch end.

    Args:
      progress: the bar (made with ``own_eta=True``).
      total_steps: the run's last step (None = unknown: no ETA).
      steps_per_epoch: steps per epoch (None = unknown: no epoch-end time in the ETA).
    """

    def __init__(self, progress: Progress, total_steps: int | None = None,
                 steps_per_epoch: int | None = None) -> None:
        self.progress, self.total_steps, self.steps_per_epoch = progress, total_steps, steps_per_epoch
        self.step_s: float | None = None  # moving average of one training step, seconds
        self.epoch_end_s = 0.0  # validation + checkpoint time of the last epoch end, seconds
        self._last = 0.0
        self._epoch_ended_at: float | None = None
        self._skip = True  # the next step's time is not a plain step's (compile, epoch end)

    def begin(self, state, step):
        self._last, self._skip = time.perf_counter(), True

    def after_epoch(self, state, epoch, step):
        self._epoch_ended_at = time.perf_counter()  # the validation and save hooks run after this

    def after_step(self, state, info):
        now = time.perf_counter()
        if self._epoch_ended_at is not None:
            self.epoch_end_s = max(now - self._epoch_ended_at - (self.step_s or 0.0), 0.0)
            self._epoch_ended_at = None
        elif not self._skip:
            dt = now - self._last
            self.step_s = dt if self.step_s is None else 0.9 * self.step_s + 0.1 * dt
        self._last, self._skip = now, False
        self.progress.update(1, postfix=f"loss {info.scalars.get('loss/total', float('nan')):.4f}",
                             eta_s=self.eta_s(info.step))

    def eta_s(self, step: int) -> float | None:
        """Seconds left after global ``step`` (None until a step time is measured)."""
        if self.step_s is None or not self.total_steps:
            return None
        left = max(self.total_steps - step, 0) * self.step_s
        if self.steps_per_epoch:
            # Epoch ends at steps step..total: the one at ``step`` runs after this hook.
            ends = self.total_steps // self.steps_per_epoch - (step - 1) // self.steps_per_epoch
            left += max(ends, 0) * self.epoch_end_s
        return left

    def end(self, state, step):
        self.progress.close()


class StepCallback(Hook):
    """Calls ``fn(global_step, scalars)`` after every step (scripts, experiments)."""

    def __init__(self, fn: Callable[[int, dict], None]) -> None:
        self.fn = fn

    def after_step(self, state, info):
        self.fn(info.step, info.scalars)
