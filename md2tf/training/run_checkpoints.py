"""Run-directory checkpoints: models, optimizer, step and epoch under ``<run_dir>/checkpoints/``.

Object names (``depth_net``, ``pose_net``, ``optimizer``, ``step``, ``epoch``) are a contract with the
evaluation/export/predict entry points, which restore the networks only (``expect_partial``).
Multi-worker runs: every worker saves (collectives may be involved), but only the chief writes into
the run directory; the others write to a temporary directory that is deleted right away.

A save that finds the disk full removes what it wrote (the ``ckpt-N_temp`` folder would keep the
disk full) and raises `DiskFullError`; the checkpoints written before stay intact.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import shutil

import numpy as np
import tensorflow as tf

from md2tf.models import checkpoint as model_checkpoint
from md2tf.rundir import RunDir
from md2tf.training import distribute

logger = logging.getLogger(__name__)

#: How a full disk (or an exhausted quota) reads in the message of a TF file-system error.
_DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


class DiskFullError(OSError, ValueError):
    """A checkpoint did not fit on its disk; the partial save was removed, earlier ones are intact.

    A ValueError as well, so the commands end with its one-line message (exit status 2).
    """


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says the disk (or the user's quota) is full: an OSError with ENOSPC or
    EDQUOT, or a TF file-system error with that text (TF's file writes raise OpErrors)."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(error, tf.errors.OpError) and any(t in str(error) for t in _DISK_FULL_TEXTS)


def _mount_point(path: str) -> str:
    """The mount point of the file system holding ``path`` (its nearest existing ancestor)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def save_checkpoint(manager: tf.train.CheckpointManager, number: int) -> str:
    """``manager.save(checkpoint_number=number)``, cleaning up after a full disk.

    Returns:
      The prefix of the checkpoint written.

    Raises:
      DiskFullError: the disk filled up during the save. The partial checkpoint (its ``_temp``
        folder, and its files unless a complete checkpoint of that number existed before) is
        removed first; the message names the file system and the newest intact checkpoint.
    """
    prefix = os.path.join(manager.directory, f"ckpt-{number}")
    existed = prefix in manager.checkpoints
    try:
        return manager.save(checkpoint_number=number)
    except (OSError, tf.errors.OpError) as error:
        if not is_disk_full(error):
            raise
        shutil.rmtree(prefix + "_temp", ignore_errors=True)
        if not existed:
            for path in glob.glob(glob.escape(prefix) + ".*"):
                os.remove(path)
        intact = manager.latest_checkpoint
        kept = (f"{os.path.basename(intact)} is intact, and the same command resumes from it once "
                "there is space" if intact else "no earlier checkpoint exists")
        where = _mount_point(manager.directory)
        raise DiskFullError(f"no space left on {where} (saving {prefix}): freed the partial "
                            f"checkpoint; {kept}") from error


class RunCheckpoints:
    """`tf.train.CheckpointManager` over the training state, with chief/worker handling.

    Args:
      run_dir: the run directory.
      depth_net, pose_net: the networks (``pose_net`` None for stereo-only runs).
      intrinsics: the learned K (`md2tf.models.LearnedIntrinsics`) of ``--intrinsics=learned``,
        else None.
      optimizer: the Keras optimizer (built, so its slots exist before a restore).
      step, epoch: int64 ``tf.Variable`` counters.
      keep: number of checkpoints kept.
      strategy: the distribution strategy (decides chief vs worker paths).
    """

    def __init__(self, run_dir: str, *, depth_net, pose_net, optimizer, step: tf.Variable,
                 epoch: tf.Variable, keep: int = 3,
                 strategy: tf.distribute.Strategy | None = None, intrinsics=None) -> None:
        if not run_dir:
            raise ValueError("--run_dir is required to save checkpoints")
        self.strategy = strategy or tf.distribute.get_strategy()
        objects = {"depth_net": depth_net, "optimizer": optimizer, "step": step, "epoch": epoch}
        if pose_net is not None:
            objects["pose_net"] = pose_net
        if intrinsics is not None:
            objects["intrinsics"] = intrinsics
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.run_dir = run_dir
        self.is_chief = distribute.is_chief(self.strategy)
        self.directory = distribute.worker_dir(RunDir(run_dir).checkpoints, self.strategy)
        if self.is_chief:
            remove_stale_temp_dirs(self.directory)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=keep)
        self._step = step

    @property
    def latest(self) -> str | None:
        """Prefix of the newest checkpoint of this run (chief's directory), or None."""
        return self.manager.latest_checkpoint

    def restore_latest(self) -> str | None:
        """Restores the newest intact checkpoint; returns its prefix (or None when there is none).

        A checkpoint that fails to restore (truncated or corrupt files) is reported by path and the
        previous one is tried, newest first.

        Raises:
          ValueError: naming every checkpoint tried when none of them restores.
        """
        candidates = list(reversed(self.manager.checkpoints))
        if not candidates and not self.is_chief:
            # Workers restore from the chief's directory.
            chief = tf.train.get_checkpoint_state(os.path.dirname(self.directory))
            candidates = list(reversed(chief.all_model_checkpoint_paths)) if chief else []
        damaged, mismatched = [], []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, IndexError, AssertionError, OSError) as error:
                cause = " ".join(str(error).split())[:300]
                logger.warning("checkpoint %s does not restore (%s: %s); trying the previous one",
                               path, type(error).__name__, cause)
                # A variable of another shape (ValueError) or an object without a value
                # (AssertionError) is a checkpoint of other networks, not a damaged file.
                bucket = mismatched if isinstance(error, (ValueError, AssertionError)) else damaged
                bucket.append(f"{path} ({type(error).__name__}: {cause})")
                continue
            if damaged or mismatched:
                logger.warning("resumed from %s instead of the newest checkpoint", path)
            return path
        if mismatched:
            raise ValueError(
                f"no checkpoint of {self.directory} restores: "
                + (f"damaged: {'; '.join(damaged)}; " if damaged else "")
                + f"written for other networks than this run's: {'; '.join(mismatched)}. The run's "
                "settings are in its config.json: resume with those, or start a new --run_dir")
        if damaged:
            best = RunDir(self.run_dir).best
            hint = (f" (--init_checkpoint={best} starts it from the best epoch's networks)"
                    if tf.train.latest_checkpoint(best) else "")
            raise ValueError(f"no checkpoint of {self.directory} restores, every one is damaged: "
                             f"{'; '.join(damaged)}. Start a new --run_dir{hint}")
        return None

    def save(self) -> str:
        """Saves at the current step; returns the prefix (deleted again on non-chief workers).

        Raises:
          DiskFullError: the disk is full (the partial save is removed; see `save_checkpoint`).
        """
        path = save_checkpoint(self.manager, int(self._step.numpy()))
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path


class BestNetworks:
    """The networks (no optimizer state) of the best validation epoch, in ``<run_dir>/best/``.

    One checkpoint is kept, replaced whenever validation improves, with ``best.json`` naming its
    epoch, step and score; ``md2tf.evaluate --models <run_dir>/best`` and ``md2tf.export --checkpoint
    <run_dir>/best`` read it like a run directory (its ``config.json`` is the parent's).

    Args:
      run_dir: the run directory.
      depth_net, pose_net: the networks (``pose_net`` None for stereo-only runs).
      step: the int64 step counter (the checkpoint number).
      strategy: the distribution strategy (only the chief's copy is kept).
      intrinsics: the learned K of ``--intrinsics=learned`` (kept with the networks), or None.
    """

    def __init__(self, run_dir: str, *, depth_net, pose_net, step: tf.Variable,
                 strategy: tf.distribute.Strategy | None = None, intrinsics=None) -> None:
        self.strategy = strategy or tf.distribute.get_strategy()
        objects = {name: obj for name, obj in (("depth_net", depth_net), ("pose_net", pose_net),
                                               ("intrinsics", intrinsics)) if obj is not None}
        self.run = RunDir(run_dir)
        self.is_chief = distribute.is_chief(self.strategy)
        self.directory = distribute.worker_dir(self.run.best, self.strategy)
        self.manager = tf.train.CheckpointManager(tf.train.Checkpoint(**objects), self.directory,
                                                  max_to_keep=1)
        self._step = step
        #: ``best.json`` of this run so far (a resumed run keeps its earlier best), or None. Every
        #: worker reads it: all must agree on whether to save (the save may be collective).
        self.record = self.run.read_best()

    def is_better(self, value: float) -> bool:
        """Whether a validation score (lower is better) beats the best so far."""
        return np.isfinite(value) and (self.record is None or value < self.record["value"])

    def save(self, epoch: int, metric: str, value: float) -> str | None:
        """Saves the networks as the new best; returns the prefix on the chief (None elsewhere).

        Raises:
          DiskFullError: the disk is full (the partial save is removed; see `save_checkpoint`).
        """
        path = save_checkpoint(self.manager, int(self._step.numpy()))
        self.record = {"epoch": epoch, "step": int(self._step.numpy()), "metric": metric,
                       "value": float(value), "checkpoint": path}
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        self.run.write_best(self.record)
        return path


def remove_stale_temp_dirs(directory: str) -> list[str]:
    """Deletes ``ckpt-N_temp`` folders that an interrupted save left in ``directory``; returns them.

    A checkpoint is written into such a folder and renamed when complete, so a left-over one is never
    a usable checkpoint (the chief calls this at start, before any save of its own).
    """
    stale = sorted(d for d in glob.glob(os.path.join(glob.escape(directory), "*_temp"))
                   if os.path.isdir(d))
    for path in stale:
        logger.warning("removing %s, left by an interrupted checkpoint save", path)
        shutil.rmtree(path, ignore_errors=True)
    return stale


def restore_encoders(path: str, depth_net, pose_net=None) -> tuple[str, list[str]]:
    """Copies the encoder weights of another run into built networks (``--encoder_init``).

    The stand-in for ImageNet initialisation (paper Sec. 4.1): the depth encoder, and the pose encoder
    when both this run and the source have a pose network, take the source's weights and BatchNorm
    statistics; the decoders keep their fresh initialisation. The encoders' variables are matched by
    their place in the network (``depth_net/encoder/...``), so the source may have been trained at
    another resolution, on other data or with other losses (S, MS), but must have the same encoder
    architecture (``--encoder`` and ResNet depth, read from its ``config.json``).

    Args:
      path: a run directory (its latest checkpoint) or a checkpoint prefix.
      depth_net: built `DepthNet` of this run.
      pose_net: built `PoseNet` of this run, or None (stereo-only run).

    Returns:
      ``(checkpoint prefix, names of the networks whose encoder was initialised)``.

    Raises:
      FileNotFoundError: no checkpoint or ``config.json`` at ``path``.
      ValueError: the source's encoder has another architecture, lacks a variable or holds one with
        another shape.
    """
    prefix, run_dir = model_checkpoint.resolve_checkpoint(path)
    source = RunDir(run_dir).read_config()
    nets = {"depth_net": depth_net}
    if pose_net is not None and source.use_pose_net:
        nets["pose_net"] = pose_net
    # A deeper source holds every variable of a shallower ResNet with the same shapes (ResNet34's
    # layer1.0 is ResNet18's), so the architectures are compared, not only the variables.
    archs = {"depth_net": (("--encoder", "--num_layers"), source.model.depth_architecture),
             "pose_net": (("--pose_encoder", "--pose_num_layers"), source.model.pose_architecture)}
    for name, net in nets.items():
        (kind_flag, depth_flag), arch = archs[name]
        if net.encoder.architecture != arch:
            both_resnet = arch.startswith("resnet") and net.encoder.architecture.startswith("resnet")
            raise ValueError(f"--encoder_init {run_dir!r} has a {_display(arch)} {name} encoder "
                             f"({depth_flag if both_resnet else kind_flag}), this run a "
                             f"{_display(net.encoder.architecture)}")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    assignments, problems = [], []
    for name, net in nets.items():
        keys = model_checkpoint.variable_checkpoint_keys(name, net, prefix)
        for var in net.encoder.weights:
            key = keys[id(var)]
            label = f"{name}/{getattr(var, 'path', var.name)}"
            if key is None:
                problems.append(f"{label} missing")
            elif tuple(shapes[key]) != tuple(var.shape):
                problems.append(f"{label} has shape {tuple(shapes[key])} in the source, "
                                f"{tuple(var.shape)} here")
            else:
                assignments.append((var, key))
    if problems:
        raise ValueError(f"--encoder_init {prefix!r} does not match this run's encoders "
                         f"({len(problems)} problem(s), same encoders needed): "
                         f"{problems[:5]}")
    for var, key in assignments:
        var.assign(reader.get_tensor(key))
    return prefix, list(nets)


def _display(architecture: str) -> str:
    """``resnet18`` -> ``ResNet18``; other `md2tf.config.encoder_architecture` names as they are."""
    return architecture.replace("resnet", "ResNet")


#: ``load_models(path) -> (config, depth_net, pose_net)``: the shared reader (md2tf.models.checkpoint).
load_models = model_checkpoint.load_models
