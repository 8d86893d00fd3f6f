"""The Monodepth2 training loop under tf.distribute.

One compiled ``train_step`` per batch (``strategy.run`` of the replica step, a global finite-check,
then the optimizer update); the Python loop only logs, validates, checkpoints and polls for
preemption. Everything is built inside ``strategy.scope()``, and the optimizer is built there before
the first step (Keras 3 + MirroredStrategy requirement).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from md2tf.config import ExperimentConfig
from md2tf.training import checkpoints, distribute, schedule, step, summaries
from md2tf.training.preemption import StopRequest

logger = logging.getLogger(__name__)

#: ``dataset_fn(split, batch_size, training, input_context, seed) -> tf.data.Dataset`` of `Batch`,
#: ``batch_size`` global (split per replica through ``input_context``), one epoch.
DatasetFn = Callable[..., tf.data.Dataset]


class TrainResult(NamedTuple):
    """How a ``Trainer.train()`` call ended.

    Attributes:
      step: global step reached.
      epoch: completed epochs.
      reason: ``completed``, ``max_steps``, ``preempted`` or ``nonfinite``.
      checkpoint: prefix of the last checkpoint written (None on non-chief workers).
      last_scalars: the last step's scalar dict (floats).
      nonfinite_steps: total number of skipped (non-finite) updates.
    """

    step: int
    epoch: int
    reason: str
    checkpoint: str | None
    last_scalars: dict
    nonfinite_steps: int


class NonFiniteLossError(RuntimeError):
    """Raised by ``md2tf.train`` when training stopped after too many non-finite steps."""


def check_data_available(config: ExperimentConfig) -> None:
    """Fails early, naming ``--data_dir``, when a real dataset directory is missing.

    Raises:
      ValueError: with the expected layout, the download script and a pointer to the synthetic run.
    """
    data = config.data
    if data.dataset in ("synthetic",):
        return
    if not data.data_dir or not os.path.isdir(data.data_dir):
        layout = {
            "kitti": "<data_dir>/<date>/<date>_drive_<nnnn>_sync/image_0{2,3}/data/<index:010d>.jpg "
                     "(+ calib_cam_to_cam.txt per date)",
            "kitti_odom": "<data_dir>/sequences/<nn>/image_{2,3}/<index:06d>.png",
            "folder": "<data_dir>/<sequence>/<frame>.jpg",
        }.get(data.dataset, "")
        raise ValueError(
            f"--data_dir={data.data_dir!r} does not exist (--dataset={data.dataset}). Expected layout: "
            f"{layout}. Download KITTI raw with scripts/download_kitti.py (about 175 GB), or start with "
            "the built-in synthetic world: python -m md2tf.train --flagfile=configs/synthetic.flags "
            "--run_dir=runs/synthetic")


def _default_dataset_fn(config: ExperimentConfig) -> DatasetFn:
    def fn(split, batch_size, training, input_context=None, seed=None):
        from md2tf.data import pipeline

        return pipeline.make_dataset(config.data, split, batch_size, training=training,
                                     input_context=input_context, seed=seed)

    return fn


def _default_loss_fn() -> Callable:
    from md2tf.losses import monodepth2_loss

    return monodepth2_loss


def _adam(learning_rate: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-8)


def ensure_synthetic_world(config: ExperimentConfig, timeout_s: float = 3600.0, **world) -> None:
    """Generates the synthetic world into ``data_dir`` on first use (no-op for other datasets).

    Only the chief generates; other workers wait (up to ``timeout_s``) for its manifest.

    Args:
      config: the experiment (``data.dataset == "synthetic"`` to do anything).
      timeout_s: how long a non-chief worker waits.
      **world: ``WorldConfig`` fields (drives, frames, height, width, ...).
    """
    if config.data.dataset != "synthetic":
        return
    from md2tf.data import synthetic

    if distribute.is_chief():
        logger.info("synthetic world in %s (generated on first use)", config.data.data_dir)
        synthetic.ensure_world(config.data.data_dir, progress=True, **world)
        return
    manifest = os.path.join(config.data.data_dir, synthetic.MANIFEST)
    deadline = time.time() + timeout_s
    while not os.path.exists(manifest):
        if time.time() > deadline:
            raise TimeoutError(f"worker waited {timeout_s:.0f} s for the chief to write {manifest}")
        time.sleep(2.0)


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
    """

    def __init__(self, config: ExperimentConfig, *, strategy: tf.distribute.Strategy | None = None,
                 networks: Callable[[], tuple] | None = None, dataset_fn: DatasetFn | None = None,
                 loss_fn: Callable | None = None,
                 optimizer_fn: Callable[[float], keras.optimizers.Optimizer] | None = None) -> None:
        self.config = config
        tc = config.train
        if not tc.run_dir:
            raise ValueError("--run_dir is required: the run directory for checkpoints and TensorBoard")
        # The strategy first: MultiWorkerMirroredStrategy must configure collectives before any op.
        self.strategy = strategy or distribute.select_strategy(tc.strategy)
        if tc.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(tc.seed)
        keras.mixed_precision.set_global_policy(tc.mixed_precision)
        self.num_replicas = self.strategy.num_replicas_in_sync
        self.is_chief = distribute.is_chief(self.strategy)
        self.dataset_fn = dataset_fn or _default_dataset_fn(config)
        self.loss_fn = loss_fn or _default_loss_fn()
        self.scales = tuple(config.model.scales)
        h, w = config.data.height, config.data.width
        with self.strategy.scope():
            if networks is None:
                from md2tf import models

                networks = lambda: models.build(  # noqa: E731
                    config.model, use_pose_net=config.use_pose_net,
                    synchronized_bn=self.num_replicas > 1,
                    load_weights=not (tc.resume and self._has_checkpoint(tc.run_dir)))
            self.depth_net, self.pose_net = networks()
            self.depth_net(tf.zeros([1, h, w, 3]), training=False)
            if self.pose_net is not None:
                self.pose_net(tf.zeros([1, h, w, 6]), training=False)
            self.variables = list(self.depth_net.trainable_variables)
            if self.pose_net is not None:
                self.variables += list(self.pose_net.trainable_variables)
            # torch Adam defaults (betas 0.9/0.999, eps 1e-8); Keras' default eps is 1e-7.
            optimizer = (optimizer_fn or _adam)(tc.learning_rate)
            if tc.mixed_precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.variables)
            self.optimizer = optimizer
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch",
                                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.checkpoints = checkpoints.RunCheckpoints(
            tc.run_dir, depth_net=self.depth_net, pose_net=self.pose_net, optimizer=self.optimizer,
            step=self.step, epoch=self.epoch, keep=tc.keep_checkpoints, strategy=self.strategy)
        if self.is_chief:
            self.writer = tf.summary.create_file_writer(os.path.join(tc.run_dir, "tensorboard"))
        else:
            self.writer = tf.summary.create_noop_writer()
        self._use_loss_scale = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        # XLA compiles the replica's forward + backward (the optimizer update stays outside). A nested
        # tf.function may not contain cross-replica synchronisation (sync BatchNorm), so XLA is for
        # single-replica runs.
        if tc.jit_compile and self.num_replicas > 1:
            raise ValueError(f"--jit_compile needs a single replica, got {self.num_replicas} "
                             "(synchronized BatchNorm cannot run inside the nested XLA function)")
        self._replica_compute = (tf.function(self._replica_compute_fn, jit_compile=True)
                                 if tc.jit_compile else self._replica_compute_fn)
        self.train_step = tf.function(self._train_step_fn)
        self._val_step = tf.function(self._val_step_fn)
        self._image_fn = tf.function(self._image_fn_impl)
        self.stop_request = StopRequest()
        self._saved_step = -1

    # --- compiled pieces -------------------------------------------------------------------------

    def _forward(self, batch, noise_seed, training: bool) -> step.ForwardOutputs:
        return step.forward(self.depth_net, self.pose_net, batch, self.config.data, self.config.loss,
                            self.loss_fn, noise_seed, training)

    def _replica_compute_fn(self, batch, noise_seed):
        """Replica-local forward + backward: (scalars, grads, finite as float32)."""
        with tf.GradientTape() as tape:
            out = self._forward(batch, noise_seed, training=True)
            loss = tf.cast(out.losses.total, tf.float32)
            # The Keras 3 optimizer all-reduce SUMs replica gradients: scale for the global batch.
            scaled = loss / self.num_replicas
            if self._use_loss_scale:
                scaled = self.optimizer.scale_loss(scaled)
        grads = tape.gradient(scaled, self.variables)
        # With loss scaling, non-finite gradients are the LossScaleOptimizer's business.
        finite = step.all_finite([loss] + ([] if self._use_loss_scale else grads))
        return step.scalar_losses(out.losses, self.scales), grads, tf.cast(finite, tf.float32)

    def _replica_step(self, batch, global_step, stop):
        lc = self.config.loss
        noise_seed = None
        if lc.automask and lc.identity_noise_std > 0:
            # Seeded by (global step, replica id): a resumed run draws exactly the same noise.
            noise_seed = step.noise_seed_for(global_step, self.config.train.seed)
        return self._replica_compute(batch, noise_seed) + (tf.identity(stop),)

    def _train_step_fn(self, iterator, stop: tf.Tensor):
        """One global step. Returns (mean scalars, update applied, any worker asked to stop)."""
        batch = next(iterator)
        global_step = self.step.read_value()
        scalars, grads, finite, stop_pr = self.strategy.run(
            self._replica_step, args=(batch, global_step, stop))
        num_finite = self.strategy.reduce(tf.distribute.ReduceOp.SUM, finite, axis=None)
        stops = self.strategy.reduce(tf.distribute.ReduceOp.SUM, stop_pr, axis=None)
        applied = num_finite > self.num_replicas - 0.5

        def apply():
            self.strategy.run(lambda g: self.optimizer.apply(g, self.variables), args=(grads,))

        tf.cond(applied, apply, lambda: None)
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

    def steps_per_epoch(self) -> int | None:
        """Training steps per epoch: ``--steps_per_epoch`` or the training split's batch count."""
        tc = self.config.train
        if tc.steps_per_epoch:
            return tc.steps_per_epoch
        ds = self.dataset_fn("train", tc.batch_size, True, None, tc.seed)
        n = int(ds.cardinality().numpy())
        if n == tf.data.INFINITE_CARDINALITY:
            raise ValueError("the training dataset is infinite: set --steps_per_epoch")
        return n if n >= 0 else None

    def _distributed(self, split: str, training: bool, seed: int, take: int = 0, skip: int = 0):
        tc = self.config.train

        def fn(ctx):
            ds = self.dataset_fn(split, tc.batch_size, training, ctx, seed)
            # One global step takes one per-replica batch for each replica fed by this pipeline.
            per_step = max(ctx.num_replicas_in_sync // ctx.num_input_pipelines, 1)
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
        return tf.train.latest_checkpoint(checkpoints.checkpoint_dir(run_dir)) is not None

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
            return checkpoints.restore_networks(tc.init_checkpoint, self.depth_net, self.pose_net)
        if tc.encoder_init:
            path, nets = checkpoints.restore_encoders(tc.encoder_init, self.depth_net, self.pose_net)
            logger.info("encoders of %s initialised from %s", " and ".join(nets), path)
            return path
        return None

    def save(self) -> str | None:
        """Checkpoint at the current step (every worker calls it); the prefix on the chief."""
        path = self.checkpoints.save()
        self._saved_step = int(self.step.numpy())
        return path if self.is_chief else None

    def train(self, step_callback: Callable[[int, dict], None] | None = None) -> TrainResult:
        """Runs (or resumes) training until the epochs, ``max_steps``, a stop signal or too many
        consecutive non-finite losses end it. Always leaves a checkpoint behind.

        Args:
          step_callback: optional ``callback(global_step, scalars)`` after every step (scripts).
        """
        tc = self.config.train
        if self.is_chief:
            checkpoints.write_config(tc.run_dir, self.config)
        self.restore()
        spe = self.steps_per_epoch()
        total = spe * tc.num_epochs if spe else None
        if tc.max_steps:
            total = min(total, tc.max_steps) if total else tc.max_steps
        bar = summaries.ProgressBar(total, tc.batch_size, enabled=tc.progress_bar and self.is_chief)
        image_batch = self._image_batch() if (self.is_chief and tc.image_log_every) else None
        reason, scalars, consecutive_bad, total_bad = "completed", {}, 0, 0
        last_ckpt = None
        profiling = False
        with self.stop_request as stop_request:
            for epoch in range(int(self.epoch.numpy()), tc.num_epochs):
                lr = self.learning_rate_for_epoch(epoch)
                self.optimizer.learning_rate = lr
                done_in_epoch = int(self.step.numpy()) - epoch * spe if spe else 0
                iterator = iter(self._distributed("train", True, tc.seed + epoch, take=spe or 0,
                                                  skip=max(done_in_epoch, 0)))
                last_log_time, last_log_step = time.perf_counter(), int(self.step.numpy())
                while True:
                    gstep = int(self.step.numpy())
                    if spe and gstep >= (epoch + 1) * spe:
                        break
                    if tc.max_steps and gstep >= tc.max_steps:
                        reason = "max_steps"
                        break
                    if tc.profile_steps and gstep == tc.profile_steps[0] and self.is_chief:
                        tf.profiler.experimental.start(os.path.join(tc.run_dir, "tensorboard"))
                        profiling = True
                    stop_flag = tf.constant(1.0 if stop_request.requested else 0.0)
                    try:
                        out, applied, any_stop = self.train_step(iterator, stop_flag)
                    except (tf.errors.OutOfRangeError, StopIteration):
                        break
                    gstep += 1
                    if profiling and gstep >= tc.profile_steps[1]:
                        tf.profiler.experimental.stop()
                        profiling = False
                    scalars = {k: float(v) for k, v in out.items()}
                    if bool(applied):
                        consecutive_bad = 0
                    else:
                        consecutive_bad += 1
                        total_bad += 1
                        logger.warning("non-finite loss at step %d (%d in a row): update skipped",
                                       gstep, consecutive_bad)
                    if gstep % tc.log_every == 0 or gstep == 1:
                        now = time.perf_counter()
                        dt = (now - last_log_time) / max(gstep - last_log_step, 1)
                        last_log_time, last_log_step = now, gstep
                        summaries.write_scalars(self.writer, {
                            **scalars, "train/learning_rate": lr, "train/step_time_s": dt,
                            "train/samples_per_s": tc.batch_size / max(dt, 1e-9),
                            "train/nonfinite_steps": total_bad}, gstep)
                    if image_batch is not None and gstep % tc.image_log_every == 0:
                        summaries.write_images(self.writer, self._image_fn(image_batch), gstep)
                    bar.update(gstep, f"loss {scalars.get('loss/total', float('nan')):.4f}")
                    if step_callback is not None:
                        step_callback(gstep, scalars)
                    if tc.save_every_steps and gstep % tc.save_every_steps == 0:
                        last_ckpt = self.save()
                    if consecutive_bad >= tc.max_nonfinite_steps:
                        reason = "nonfinite"
                        break
                    if bool(any_stop) or stop_request.requested:
                        reason = "preempted"
                        break
                if reason != "completed":
                    break
                self.epoch.assign(epoch + 1)
                if tc.validate_every_epoch:
                    self.validate(int(self.step.numpy()))
                last_ckpt = self.save()
        if profiling:
            tf.profiler.experimental.stop()
        bar.close()
        gstep = int(self.step.numpy())
        if self._saved_step != gstep:
            last_ckpt = self.save()
        if reason == "nonfinite":
            logger.error("stopping: %d consecutive non-finite losses, the last at step %d; saved %s",
                         consecutive_bad, gstep, last_ckpt)
        elif reason == "preempted":
            logger.warning("stop requested (%s): saved %s at step %d", self.stop_request.signal_name,
                           last_ckpt, gstep)
        self.writer.flush()
        return TrainResult(gstep, int(self.epoch.numpy()), reason, last_ckpt, scalars, total_bad)

    def _image_batch(self):
        try:
            ds = self.dataset_fn("val", min(2, self.config.train.batch_size), False, None,
                                 self.config.train.seed)
            return next(iter(ds))
        except (ValueError, FileNotFoundError, StopIteration) as e:
            logger.warning("no validation batch for image summaries: %s", e)
            return None

    def validate(self, global_step: int) -> dict[str, float]:
        """Validation losses (and depth metrics where GT exists), written to TensorBoard."""
        tc = self.config.train
        try:
            dist = self._distributed("val", False, tc.seed, take=tc.val_steps)
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
                disps.extend(self._scaled_disp(d.numpy()))
                gts.extend(np.asarray(g.numpy())[..., 0])
        results = {k: v / max(count, 1) for k, v in sums.items()}
        results.update(self._depth_metrics(gts, disps))
        summaries.write_scalars(self.writer, results, global_step, prefix="val/")
        logger.info("validation at step %d: %s", global_step,
                    ", ".join(f"{k}={v:.4f}" for k, v in results.items()))
        return results

    def _scaled_disp(self, disp: np.ndarray) -> list[np.ndarray]:
        lc = self.config.loss
        lo, hi = 1.0 / lc.max_depth, 1.0 / lc.min_depth
        return list((lo + (hi - lo) * disp)[..., 0])

    def _depth_metrics(self, gts, disps) -> dict[str, float]:
        if not gts or not any(np.any(g > 0) for g in gts):
            return {}
        from md2tf.evaluation import metrics

        split = "eigen" if self.config.data.dataset == "kitti" else self.config.data.dataset
        try:
            scores = metrics.score_predictions(gts, disps, metrics.ScoringOptions(split=split))
        except ValueError as e:
            logger.warning("validation metrics skipped: %s", e)
            return {}
        return {f"depth/{k}": v for k, v in scores.metrics.items()}
