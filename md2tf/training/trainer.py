"""The Monodepth2 training loop under tf.distribute.

One compiled ``train_step`` per batch (``strategy.run`` of the replica step, a global finite-check,
then the optimizer update); the Python loop only logs, validates, checkpoints and polls for
preemption. Everything is built inside ``strategy.scope()``, and the optimizer is built there before
the first step (Keras 3 + MirroredStrategy requirement).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from md2tf import models
from md2tf.config import ExperimentConfig
from md2tf.convert import init_encoders
from md2tf.data import datasets
from md2tf.data.datasets.folder import write_intrinsics
from md2tf.evaluation import metrics
from md2tf.losses import monodepth2_loss, xla_loss
from md2tf.models.checkpoint import load_models, restore_networks
from md2tf.progress import Progress
from md2tf.rundir import RunDir
from md2tf.training import distribute, inputs, run_checkpoints, schedule, step, summaries
from md2tf.training import hooks as hooks_lib
from md2tf.training.preemption import StopRequest

logger = logging.getLogger(__name__)

class TrainResult(NamedTuple):
    """How a ``Trainer.train()`` call ended.

    Attributes:
      step: global step reached.
      epoch: completed epochs.
      reason: ``completed``, ``max_steps``, ``preempted`` or ``nonfinite``.
      checkpoint: prefix of the last checkpoint written (None on non-chief workers).
      last_scalars: the last step's scalar dict (floats).
      nonfinite_steps: total number of skipped (non-finite) updates.
      validations: ``(epoch, step, results)`` of each validation pass of this call.
      best: ``<run_dir>/best/best.json`` of the best validation epoch (epoch, step, metric, value,
        checkpoint), or None.
      wall_time_s: wall time of this call, seconds.
      warnings: lines the run summary must show (`md2tf.training.hooks.LoopState.warnings`).
      learned_intrinsics: ``--intrinsics=learned``: camera name -> normalised ``(fx, fy, cx, cy)``.
    """

    step: int
    epoch: int
    reason: str
    checkpoint: str | None
    last_scalars: dict
    nonfinite_steps: int
    validations: tuple = ()
    best: dict | None = None
    wall_time_s: float = 0.0
    warnings: tuple[str, ...] = ()
    learned_intrinsics: dict | None = None


def _adam(learning_rate: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)


class Trainer:
    """Builds networks, optimizer, data and checkpoints for an `ExperimentConfig` and trains.

    Args:
      config: the experiment.
      strategy: tf.distribute strategy (default: ``--strategy`` selection).
      networks: optional ``(depth_net, pose_net)`` factory called inside the strategy scope
        (tests' stand-ins); default ``md2tf.models.build``.
      dataset_fn: optional `DatasetFn` (default ``md2tf.data.pipeline.make_dataset``).
      loss_fn: optional ``monodepth2_loss``-compatible callable.
      optimizer_fn: optional ``learning_rate -> keras optimizer`` (default Adam with torch's eps).
      learned_cameras: ``--intrinsics=learned``: ``(camera names, [C, 3, 3] normalised start K)``;
        default `md2tf.training.inputs.learned_cameras` of the (prepared) dataset.
    """

    def __init__(self, config: ExperimentConfig, *, strategy: tf.distribute.Strategy | None = None,
                 networks: Callable[[], tuple] | None = None, dataset_fn: inputs.DatasetFn | None = None,
                 loss_fn: Callable | None = None,
                 optimizer_fn: Callable[[float], keras.optimizers.Optimizer] | None = None,
                 learned_cameras: tuple[tuple[str, ...], np.ndarray] | None = None) -> None:
        self.config = config
        tc = config.train
        if not tc.run_dir:
            raise ValueError("--run_dir is required: the run directory for checkpoints and TensorBoard")
        if dataset_fn is None:
            inputs.check_poses_available(config)
            inputs.check_distances_available(config)
            inputs.check_stereo_units(config)
        # The strategy first: MultiWorkerMirroredStrategy must configure collectives before any op.
        self.strategy = strategy or distribute.select_strategy(tc.strategy)
        if tc.jit_compile and self.strategy.num_replicas_in_sync > 1:
            # A nested tf.function may not contain cross-replica synchronisation (sync BatchNorm).
            raise ValueError(f"--jit_compile needs a single replica, got "
                             f"{self.strategy.num_replicas_in_sync} (synchronized BatchNorm cannot "
                             "run inside the nested XLA function)")
        if tc.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(tc.seed)
        keras.mixed_precision.set_global_policy(tc.mixed_precision)
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.is_chief = distribute.is_chief(self.strategy)
        #: Training samples dropped for corrupt images (``--skip_corrupt_images``).
        self.corrupt_samples = tf.Variable(0, dtype=tf.int64, trainable=False, name="corrupt_samples")
        self.dataset_fn = dataset_fn or inputs.default_dataset_fn(config, self.corrupt_samples)
        # The loss as one XLA cluster unless the whole step is compiled already.
        self.loss_fn = loss_fn or (xla_loss() if tc.jit_compile_loss and not tc.jit_compile
                                   else monodepth2_loss)
        self.scales = tuple(config.model.scales)
        with self.strategy.scope():
            self._build_networks(networks or self._default_networks, learned_cameras)
            self._build_optimizer(optimizer_fn or _adam)
        self._build_run_files()
        # XLA compiles the replica's forward + backward (the optimizer update stays outside).
        self._replica_compute = (tf.function(self._replica_compute_fn, jit_compile=True)
                                 if tc.jit_compile else self._replica_compute_fn)
        self.train_step = tf.function(self._train_step_fn)
        self._val_step = tf.function(self._val_step_fn)
        self._image_fn = tf.function(self._image_fn_impl)
        self.stop_request = StopRequest()
        #: Global step of the last checkpoint this trainer wrote (-1 = none yet).
        self.saved_step = -1

    # --- construction ----------------------------------------------------------------------------

    def _default_networks(self) -> tuple:
        """``md2tf.models.build`` of the config, encoders initialised unless a resume restores them."""
        config, tc = self.config, self.config.train
        nets = models.build(config.model, use_pose_net=config.use_pose_net,
                            synchronized_bn=self.num_replicas > 1)
        if not (tc.resume and self._has_checkpoint(tc.run_dir)):  # else restored
            init_encoders(config.model.encoder_weights, *nets)
        return nets

    def _build_networks(self, networks: Callable[[], tuple],
                        learned_cameras: tuple[tuple[str, ...], np.ndarray] | None = None) -> None:
        """Builds the networks and the learned K (inside the strategy scope); lists their variables."""
        h, w = self.config.data.height, self.config.data.width
        self.depth_net, self.pose_net = networks()
        #: ``--intrinsics=learned``: the cameras' names (``Batch.camera`` order) and their K.
        self.camera_names: tuple[str, ...] = ()
        self.intrinsics: models.LearnedIntrinsics | None = None
        if self.config.data.intrinsics == "learned":
            names, start = learned_cameras or inputs.learned_cameras(self.config)
            self.camera_names = tuple(names)
            self.intrinsics = models.LearnedIntrinsics(
                len(names), start, learning_rate_scale=self.config.train.intrinsics_lr_scale,
                name="learned_intrinsics")
        #: ``--distill_from``: the frozen teacher depth network (not trained, not checkpointed).
        self.teacher = None
        if self.config.train.distill_from:
            try:
                _, self.teacher, _ = load_models(self.config.train.distill_from, load_pose_net=False)
            except (FileNotFoundError, ValueError) as error:  # one line naming the flag
                raise ValueError(f"--distill_from: {error}") from None
            self.teacher.trainable = False
        self.depth_net(tf.zeros([1, h, w, 3]), training=False)
        if self.pose_net is not None:
            self.pose_net(tf.zeros([1, h, w, 6]), training=False)
        nets = [n for n in (self.depth_net, self.pose_net) if n is not None]
        self.variables = [v for n in nets for v in n.trainable_variables]
        if self.intrinsics is not None:  # trained with the networks: gradients come from the warp
            self.variables += self.intrinsics.trainable_variables
        # BatchNorm moving statistics change in the forward pass itself: a skipped (non-finite)
        # step must put them back, or one bad batch leaves inf/NaN statistics behind.
        self.statistics = [v for n in nets for v in n.non_trainable_variables
                           if "float" in str(v.dtype)]

    def _build_optimizer(self, optimizer_fn: Callable[[float], keras.optimizers.Optimizer]) -> None:
        """The optimizer, built before the first step (Keras 3 + MirroredStrategy), and the counters."""
        tc = self.config.train
        optimizer = optimizer_fn(tc.learning_rate)
        if tc.mixed_precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(self.variables)
        self.optimizer = optimizer
        self._use_loss_scale = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch",
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def _build_run_files(self) -> None:
        """Checkpoints, the best epoch's networks and the TensorBoard writer of the run directory."""
        tc = self.config.train
        nets = {"depth_net": self.depth_net, "pose_net": self.pose_net}
        self.checkpoints = run_checkpoints.RunCheckpoints(
            tc.run_dir, **nets, optimizer=self.optimizer, step=self.step, epoch=self.epoch,
            keep=tc.keep_checkpoints, strategy=self.strategy, intrinsics=self.intrinsics)
        #: The best validation epoch's networks (``<run_dir>/best/``), beside the latest checkpoints.
        self.best_networks = run_checkpoints.BestNetworks(tc.run_dir, **nets, step=self.step,
                                                      strategy=self.strategy, intrinsics=self.intrinsics)
        self.writer = (tf.summary.create_file_writer(RunDir(tc.run_dir).tensorboard) if self.is_chief
                       else tf.summary.create_noop_writer())

    # --- compiled pieces -------------------------------------------------------------------------

    def _forward(self, batch, noise_seed, training: bool,
                 automask_off: tf.Tensor | None = None) -> step.ForwardOutputs:
        return step.forward(self.depth_net, self.pose_net, batch, self.config.data, self.config.loss,
                            self.loss_fn, noise_seed, training, intrinsics=self.intrinsics,
                            teacher=self.teacher, automask_off=automask_off,
                            known_rotation=self.config.train.pose_source == "rotation")

    def learned_intrinsics(self) -> dict[str, tuple[float, ...]]:
        """Camera name -> normalised ``(fx, fy, cx, cy)`` of the learned K (empty unless learned)."""
        if self.intrinsics is None:
            return {}
        values = self.intrinsics.normalized().numpy()
        return {name: tuple(float(v) for v in values[i]) for i, name in enumerate(self.camera_names)}

    def _intrinsics_scalars(self) -> dict[str, tf.Tensor]:
        if self.intrinsics is None:
            return {}
        values = self.intrinsics.normalized()
        return {f"intrinsics/{name}/{key}": values[i, j] for i, name in enumerate(self.camera_names)
                for j, key in enumerate(("fx", "fy", "cx", "cy"))}

    def _replica_compute_fn(self, batch, noise_seed, automask_off=None):
        """Replica-local forward + backward: (scalars, grads, finite as float32)."""
        with tf.GradientTape() as tape:
            out = self._forward(batch, noise_seed, training=True, automask_off=automask_off)
            loss = tf.cast(out.losses.total, tf.float32)
            # The Keras 3 optimizer all-reduce SUMs replica gradients: scale for the global batch.
            scaled = loss / self.num_replicas
            if self._use_loss_scale:
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, self.variables)
        # With loss scaling, non-finite gradients are the LossScaleOptimizer's business.
        finite = step.all_finite([loss] + ([] if self._use_loss_scale else grads))
        scalars = {**step.scalar_losses(out.losses, self.scales), **self._intrinsics_scalars()}
        if out.speed is not None:
            scalars["loss/speed"] = out.speed
        if out.distill is not None:
            scalars["loss/distill"] = out.distill
        temporal = self.config.data.temporal_offsets
        # The rotation between frames: the pose network's (hooks.RotationMonitor) or the known poses'
        # with a learned K, which it determines (hooks.IntrinsicsMonitor).
        if temporal and (self.pose_net is not None or self.intrinsics is not None):
            scalars["pose/rotation_deg"] = step.rotation_deg(out.source_from_target, temporal)
        return scalars, grads, tf.cast(finite, tf.float32)

    def _replica_step(self, batch, global_step, stop):
        lc = self.config.loss
        noise_seed = None
        if lc.automask and lc.identity_noise_std > 0:
            # Seeded by (global step, replica id): a resumed run draws exactly the same noise.
            noise_seed = step.noise_seed_for(global_step, self.config.train.seed)
        automask_off = None
        if lc.automask_warmup_steps:
            automask_off = global_step < lc.automask_warmup_steps
        before = [tf.identity(v) for v in self.statistics]  # read before the forward pass
        with tf.control_dependencies(before):
            scalars, grads, finite = self._replica_compute(batch, noise_seed, automask_off)
        finite *= tf.cast(step.all_finite([tf.identity(v) for v in self.statistics]), tf.float32)
        return scalars, grads, finite, tf.identity(stop), before

    def _train_step_fn(self, iterator, stop: tf.Tensor):
        """One global step. Returns (mean scalars, update applied, any worker asked to stop)."""
        batch = next(iterator)
        global_step = self.step.read_value()
        scalars, grads, finite, stop_pr, before = self.strategy.run(
            self._replica_step, args=(batch, global_step, stop))
        num_finite = self.strategy.reduce(tf.distribute.ReduceOp.SUM, finite, axis=None)
        stops = self.strategy.reduce(tf.distribute.ReduceOp.SUM, stop_pr, axis=None)
        applied = num_finite > self.num_replicas - 0.5

        def apply():
            self.strategy.run(lambda g: self.optimizer.apply(g, self.variables), args=(grads,))

        def skip():
            def restore(values):
                for v, value in zip(self.statistics, values):
                    v.assign(value)

            self.strategy.run(restore, args=(before,))

        tf.cond(applied, apply, skip)
        with tf.control_dependencies([applied]):  # count a step only once its batch was read
            self.step.assign_add(1)
        means = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                 for k, v in scalars.items()}
        return means, applied, stops > 0

    def _val_step_fn(self, batch):
        def replica(b):
            out = self._forward(b, None, training=False)
            return step.scalar_losses(out.losses, self.scales), out.disparities[0], b.depth_gt

        scalars, disp, gt = self.strategy.run(replica, args=(batch,))
        means = {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                 for k, v in scalars.items()}
        return means, disp, gt

    def _image_fn_impl(self, batch):
        out = self._forward(batch, None, training=False)
        return summaries.visualisation_images(batch, out.disparities, out.losses)

    # --- data ------------------------------------------------------------------------------------

    def epoch_plan(self) -> schedule.EpochPlan:
        """The run's step/epoch arithmetic (`schedule.plan_epochs` over the training split's batch
        count); logs a warning when ``--steps_per_epoch`` is clamped to the split."""
        tc = self.config.train
        ds = self.dataset_fn("train", tc.batch_size, True, None, tc.seed)
        n = int(ds.cardinality().numpy())
        if n == tf.data.UNKNOWN_CARDINALITY and hasattr(self.dataset_fn, "num_batches"):
            n = self.dataset_fn.num_batches("train", tc.batch_size, tc.seed)
        num_batches = -1 if n == tf.data.INFINITE_CARDINALITY else (n if n >= 0 else None)
        plan, warning = schedule.plan_epochs(tc.steps_per_epoch, num_batches, tc.num_epochs,
                                             tc.max_steps)
        if warning:
            logger.warning(warning)
        return plan

    def steps_per_epoch(self) -> int:
        """Training steps per epoch (see `epoch_plan`)."""
        return self.epoch_plan().steps_per_epoch

    def _distributed(self, split: str, training: bool, seed: int, take: int = 0, skip: int = 0):
        tc = self.config.train

        def fn(ctx):
            ds = self.dataset_fn(split, tc.batch_size, training, ctx, seed)
            # One global step takes one per-replica batch for each replica fed by this pipeline.
            per_step = max(ctx.num_replicas_in_sync // ctx.num_input_pipelines, 1)
            if training and take:  # every epoch is exactly `take` steps, whatever a filter dropped
                ds = ds.repeat()
            if take:
                ds = ds.take(take * per_step)
            if skip:
                ds = ds.skip(skip * per_step)
            return ds

        return self.strategy.distribute_datasets_from_function(fn)

    # --- loop ------------------------------------------------------------------------------------

    def learning_rate_for_epoch(self, epoch: int) -> float:
        tc = self.config.train
        return schedule.learning_rate_at_epoch(epoch, tc.learning_rate, tc.lr_decay_epochs,
                                               tc.lr_decay_factor)

    @staticmethod
    def _has_checkpoint(run_dir: str) -> bool:
        return tf.train.latest_checkpoint(RunDir(run_dir).checkpoints) is not None

    def restore(self) -> str | None:
        """Resumes from the run's latest checkpoint (``--resume``), else initialises from
        ``--init_checkpoint`` or ``--encoder_init`` if given. Returns the checkpoint used."""
        tc = self.config.train
        if tc.resume:
            path = self.checkpoints.restore_latest()
            if path:
                logger.info("resumed from %s (step %d, epoch %d)", path, int(self.step.numpy()),
                            int(self.epoch.numpy()))
                return path
        if tc.init_checkpoint:
            return restore_networks(tc.init_checkpoint, self.depth_net, self.pose_net)
        if tc.encoder_init:
            path, nets = run_checkpoints.restore_encoders(tc.encoder_init, self.depth_net, self.pose_net)
            logger.info("encoders of %s initialised from %s", " and ".join(nets), path)
            return path
        return None

    def save(self) -> str | None:
        """Checkpoint at the current step (every worker calls it); the prefix on the chief."""
        path = self.checkpoints.save()
        self.saved_step = int(self.step.numpy())
        if self.intrinsics is not None and self.is_chief:  # the file follows the checkpoint
            write_intrinsics(RunDir(self.config.train.run_dir).learned_intrinsics_path,
                             self.learned_intrinsics())
        return path if self.is_chief else None

    def weights_finite(self) -> bool:
        """Whether every network weight, BatchNorm statistic and optimizer slot is finite."""
        values = self.variables + self.statistics + list(self.optimizer.variables)
        return all(np.all(np.isfinite(np.asarray(v))) for v in values
                   if np.issubdtype(np.asarray(v).dtype, np.floating))

    @contextlib.contextmanager
    def save_on_failure(self):
        """Around the training loop: an exception saves the last step (if its weights are finite).

        Input-pipeline errors (a corrupt image, a vanished file) are re-raised as `TrainingDataError`
        with one line naming the cause; a full disk (`run_checkpoints.DiskFullError`) is re-raised as it
        is, without a second save into the full disk; any other exception keeps its traceback.
        """
        try:
            yield
        except run_checkpoints.DiskFullError:
            raise  # its message names the intact checkpoint; another save would fail the same way
        except Exception as error:
            gstep = int(self.step.numpy())
            saved = None
            # Several workers save collectively: a lone failing worker would wait for the others.
            multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
            try:
                if self.saved_step == gstep:
                    saved = self.checkpoints.latest
                elif self.weights_finite() and not multi_worker:
                    saved = self.save()
            except Exception as save_error:  # never mask the original failure
                logger.error("could not save after the failure: %s", save_error)
            where = f"saved {saved}" if saved else "no checkpoint written for it"
            message = inputs.error_cause(error)
            if isinstance(error, tf.errors.OpError) and (
                    "IteratorGetNext" in str(error) or isinstance(error, tf.errors.DataLossError)):
                hint = "; --skip_corrupt_images drops such samples" if "corrupt" in message else ""
                raise inputs.TrainingDataError(f"training stopped at step {gstep} by its input data: "
                                        f"{message} ({where}){hint}") from error
            logger.error("training failed at step %d (%s: %s); %s", gstep, type(error).__name__,
                         message, where)
            raise

    def default_hooks(self, total_steps: int | None, start_step: int,
                      step_callback: Callable[[int, dict], None] | None = None,
                      steps_per_epoch: int | None = None) -> list[hooks_lib.Hook]:
        """The hooks of ``config.train``, in the order they run after a step.

        The step callback runs first (it may request a stop), then the guards that decide a stop,
        so the checkpoint hook's ``end`` (first of the reversed ``end`` calls) saves the step that
        stopped.
        """
        tc = self.config.train
        chief = self.is_chief
        progress = Progress(total_steps, "train", unit="step", enabled=tc.progress_bar and chief,
                            initial=start_step, own_eta=True)
        hooks = [hooks_lib.StepCallback(step_callback)] if step_callback is not None else []
        hooks += [hooks_lib.NonFiniteGuard(tc.max_nonfinite_steps),
                  hooks_lib.Preemption(self.stop_request),
                  hooks_lib.ScalarSummaries(self.writer, tc.log_every, tc.batch_size,
                                            lambda: int(self.corrupt_samples.numpy()))]
        if chief and tc.image_log_every:
            hooks.append(hooks_lib.ImageSummaries(self.writer, tc.image_log_every, self.image_batch,
                                                  self.images))
        if tc.profile_steps and chief:
            hooks.append(hooks_lib.Profiler(RunDir(tc.run_dir).tensorboard, *tc.profile_steps))
        hooks.append(hooks_lib.ProgressBar(progress, total_steps, steps_per_epoch))
        if tc.validate_every_epoch:
            hooks.append(hooks_lib.Validation(self.validate, progress, self.best_networks))
        if self.intrinsics is not None:
            start = self.intrinsics.start_normalized()
            hooks.append(hooks_lib.IntrinsicsMonitor(
                self.camera_names, start_aspect={c: float(k[0] / k[1]) for c, k in zip(self.camera_names, start)}))
        loss = self.config.loss
        if (self.pose_net is not None and self.config.train.pose_source == "network" and loss.automask
                and not loss.automask_warmup_steps):
            hooks.append(hooks_lib.RotationMonitor())
        hooks.append(hooks_lib.Checkpointing(tc.save_every_steps, self.save, lambda: self.saved_step))
        return hooks

    def train(self, step_callback: Callable[[int, dict], None] | None = None,
              hooks: list[hooks_lib.Hook] | None = None) -> TrainResult:
        """Runs (or resumes) training until the epochs, ``max_steps``, a stop signal or too many
        consecutive non-finite losses end it. Always leaves a checkpoint behind.

        Args:
          step_callback: optional ``callback(global_step, scalars)`` after every step (scripts).
          hooks: the loop's hooks; default `default_hooks` of the config.

        Raises:
          md2tf.config.ConfigError: a resumed run changed a setting that is not resumable
            (`RunDir.record`).
          run_checkpoints.DiskFullError: a checkpoint did not fit on the disk.
        """
        tc = self.config.train
        started = time.perf_counter()
        if self.is_chief:  # config.json, or a resume's changed settings beside it
            RunDir(tc.run_dir).record(self.config)
        self.restore()
        plan = self.epoch_plan()
        start = int(self.step.numpy())
        state = hooks_lib.LoopState(total_steps=plan.total_steps)
        loss = self.config.loss
        if loss.automask and loss.automask_warmup_steps >= plan.total_steps:
            state.warnings.append(
                f"--automask_warmup_steps={loss.automask_warmup_steps} covers the whole run "
                f"({plan.total_steps} steps): auto-masking never started; warm up for about half "
                "the run, or train with --noautomask")
            logger.warning(state.warnings[-1])
        if hooks is None:
            hooks = self.default_hooks(plan.total_steps, start, step_callback, plan.steps_per_epoch)
        with self.stop_request, self.save_on_failure():
            for hook in hooks:
                hook.begin(state, start)
            for epoch in range(int(self.epoch.numpy()), tc.num_epochs):
                for info in self._epoch_steps(epoch, plan, state):
                    state.scalars = info.scalars
                    for hook in hooks:
                        hook.after_step(state, info)
                    if state.stop_reason:
                        break
                if state.stop_reason:
                    break
                self.epoch.assign(epoch + 1)
                for hook in hooks:
                    hook.after_epoch(state, epoch + 1, int(self.step.numpy()))
            for hook in reversed(hooks):
                hook.end(state, int(self.step.numpy()))
        if int(self.corrupt_samples.numpy()):
            logger.warning("skipped %d training sample(s) with corrupt images (--skip_corrupt_images)",
                           int(self.corrupt_samples.numpy()))
        self.writer.flush()
        return TrainResult(int(self.step.numpy()), int(self.epoch.numpy()), state.stop_reason or "completed",
                           state.last_checkpoint, state.scalars, state.total_nonfinite,
                           tuple(state.validations), state.best, time.perf_counter() - started,
                           tuple(state.warnings), self.learned_intrinsics() or None)

    def _epoch_steps(self, epoch: int, plan: schedule.EpochPlan, state: hooks_lib.LoopState):
        """Yields a `hooks.StepInfo` per step of ``epoch`` (resuming mid-epoch where the step says).

        Ends at the epoch's last step, when the data runs out, or at ``max_steps`` (which sets
        ``state.stop_reason``).
        """
        tc = self.config.train
        lr = self.learning_rate_for_epoch(epoch)
        self.optimizer.learning_rate = lr
        spe = plan.steps_per_epoch
        gstep = int(self.step.numpy())
        iterator = iter(self._distributed("train", True, tc.seed + epoch, take=spe,
                                          skip=plan.done_in_epoch(gstep, epoch)))
        while True:  # every compiled step adds exactly 1 to self.step (skipped updates too)
            if gstep >= (epoch + 1) * spe:
                return
            if tc.max_steps and gstep >= tc.max_steps:
                state.stop_reason = "max_steps"
                return
            stop_flag = tf.constant(1.0 if self.stop_request.requested else 0.0)
            try:
                out, applied, any_stop = self.train_step(iterator, stop_flag)
            except (tf.errors.OutOfRangeError, StopIteration):
                raise inputs.TrainingDataError(f"the training data ran out at step {gstep} of epoch {epoch} "
                                        f"({spe} steps per epoch): is the split empty?") from None
            gstep += 1
            yield hooks_lib.StepInfo(step=gstep, epoch=epoch, scalars={k: float(v) for k, v in out.items()},
                                     applied=bool(applied), stop_requested=bool(any_stop), learning_rate=lr)

    def image_batch(self):
        """A fixed validation batch for the image summaries (None when the split cannot be read)."""
        try:
            ds = self.dataset_fn("val", min(2, self.config.train.batch_size), False, None,
                                 self.config.train.seed)
            return next(iter(ds))
        except (ValueError, FileNotFoundError, StopIteration) as e:
            logger.warning("no validation batch for image summaries: %s", e)
            return None

    def images(self, batch) -> dict[str, tf.Tensor]:
        """The image summaries of ``batch`` (inputs, disparities, auto-masks, warped sources)."""
        return self._image_fn(batch)

    def validate(self, global_step: int) -> dict[str, float]:
        """Validation losses (and depth metrics where GT exists), written to TensorBoard."""
        tc = self.config.train
        try:
            dist = self._distributed("val", False, self.config.train.seed, take=tc.val_steps)
        except (ValueError, FileNotFoundError) as e:
            logger.warning("validation skipped: %s", e)
            return {}
        sums, count, gts, disps = {}, 0, [], []
        for batch in dist:
            means, disp, gt = self._val_step(batch)
            for k, v in means.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            for d, g in zip(self.strategy.experimental_local_results(disp),
                            self.strategy.experimental_local_results(gt)):
                disps.extend(self.depth_net.disp_to_depth(d.numpy())[0][..., 0])
                gts.extend(np.asarray(g.numpy())[..., 0])
        results = {k: v / max(count, 1) for k, v in sums.items()}
        results.update(self._depth_metrics(gts, disps))
        summaries.write_scalars(self.writer, results, global_step, prefix="val/")
        logger.debug("validation at step %d: %s", global_step,
                    ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
        return results

    def _depth_metrics(self, gts, disps) -> dict[str, float]:
        if not gts or not any(np.any(g > 0) for g in gts):
            return {}
        split = datasets.get_dataset(self.config.data.dataset).eval_split
        try:
            scores = metrics.score_predictions(gts, disps, metrics.ScoringOptions(split=split))
        except ValueError as e:
            logger.warning("validation metrics skipped: %s", e)
            return {}
        return {f"depth/{k}": v for k, v in scores.metrics.items()}
