"""Run-directory checkpoints: models, optimizer, step and epoch under ``<run_dir>/checkpoints/``.

Object names (``depth_net``, ``pose_net``, ``optimizer``, ``step``, ``epoch``) are a contract with the
evaluation/export/predict entry points, which restore the networks only (``expect_partial``).
Multi-worker runs: every worker saves (collectives may be involved), but only the chief writes into
the run directory; the others write to a temporary directory that is deleted right away.
"""

from __future__ import annotations

import json
import os
import shutil

import tensorflow as tf

from md2tf.config import ExperimentConfig
from md2tf.models import checkpoint as model_checkpoint
from md2tf.training import distribute

CHECKPOINT_SUBDIR = model_checkpoint.CHECKPOINT_DIR
CONFIG_FILE = "config.json"


def checkpoint_dir(run_dir: str) -> str:
    """``<run_dir>/checkpoints``."""
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


class RunCheckpoints:
    """`tf.train.CheckpointManager` over the training state, with chief/worker handling.

    Args:
      run_dir: the run directory.
      depth_net, pose_net: the networks (``pose_net`` None for stereo-only runs).
      optimizer: the Keras optimizer (built, so its slots exist before a restore).
      step, epoch: int64 ``tf.Variable`` counters.
      keep: number of checkpoints kept.
      strategy: the distribution strategy (decides chief vs worker paths).
    """

    def __init__(self, run_dir: str, *, depth_net, pose_net, optimizer, step: tf.Variable,
                 epoch: tf.Variable, keep: int = 3,
                 strategy: tf.distribute.Strategy | None = None) -> None:
        if not run_dir:
            raise ValueError("--run_dir is required to save checkpoints")
        self.strategy = strategy or tf.distribute.get_strategy()
        objects = {"depth_net": depth_net, "optimizer": optimizer, "step": step, "epoch": epoch}
        if pose_net is not None:
            objects["pose_net"] = pose_net
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.is_chief = distribute.is_chief(self.strategy)
        self.directory = distribute.worker_dir(checkpoint_dir(run_dir), self.strategy)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=keep)
        self._step = step

    @property
    def latest(self) -> str | None:
        """Prefix of the newest checkpoint of this run (chief's directory), or None."""
        return self.manager.latest_checkpoint

    def restore_latest(self) -> str | None:
        """Restores the newest checkpoint if there is one; returns its prefix (or None)."""
        path = self.manager.latest_checkpoint
        if path is None and not self.is_chief:
            # Workers restore from the chief's directory.
            path = tf.train.latest_checkpoint(os.path.dirname(self.directory))
        if path is not None:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self) -> str:
        """Saves at the current step; returns the prefix (deleted again on non-chief workers)."""
        path = self.manager.save(checkpoint_number=int(self._step.numpy()))
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)
        return path


def write_config(run_dir: str, config: ExperimentConfig) -> str:
    """Writes ``config.json`` (``ExperimentConfig.to_dict()``) into the run directory."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, CONFIG_FILE)
    with open(path, "w") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)
    return path


def read_config(run_dir: str) -> ExperimentConfig:
    """Reads ``<run_dir>/config.json``; ValueError naming the file when it is missing."""
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.exists(path):
        raise ValueError(f"no {CONFIG_FILE} in run directory {run_dir!r}: expected a directory written "
                         "by `python -m md2tf.train --run_dir=...`")
    with open(path) as f:
        return ExperimentConfig.from_dict(json.load(f))


def restore_networks(path: str, depth_net, pose_net=None) -> str:
    """Restores only the networks from a run directory or checkpoint prefix (``--init_checkpoint``).

    The networks must be built (variables created). Every network variable must be in the checkpoint.

    Returns:
      The checkpoint prefix used.

    Raises:
      FileNotFoundError: no checkpoint at ``path``. ValueError: variables missing from it.
    """
    prefix, _ = model_checkpoint.resolve_checkpoint(path)
    objects = {"depth_net": depth_net}
    if pose_net is not None:
        objects["pose_net"] = pose_net
    missing = []
    for name, model in objects.items():
        missing += [f"{name}: {p}" for p in model_checkpoint.unsaved_variables(name, model, prefix)]
    if missing:
        raise ValueError(f"--init_checkpoint {prefix!r} lacks {len(missing)} network variable(s): "
                         f"{missing[:10]}")
    tf.train.Checkpoint(**objects).restore(prefix).expect_partial()
    return prefix


def restore_encoders(path: str, depth_net, pose_net=None) -> tuple[str, list[str]]:
    """Copies the encoder weights of another run into built networks (``--encoder_init``).

    The stand-in for ImageNet initialisation (paper Sec. 4.1): the depth encoder, and the pose encoder
    when both this run and the source have a pose network, take the source's weights and BatchNorm
    statistics; the decoders keep their fresh initialisation. The encoders' variables are matched by
    their place in the network (``depth_net/encoder/...``), so the source may have been trained at
    another resolution, on other data or with other losses (S, MS), but must have the same encoder
    architecture (ResNet depth, read from its ``config.json``).

    Args:
      path: a run directory (its latest checkpoint) or a checkpoint prefix.
      depth_net: built `DepthNet` of this run.
      pose_net: built `PoseNet` of this run, or None (stereo-only run).

    Returns:
      ``(checkpoint prefix, names of the networks whose encoder was initialised)``.

    Raises:
      FileNotFoundError: no checkpoint or ``config.json`` at ``path``.
      ValueError: the source's encoder has another ResNet depth, lacks a variable or holds one with
        another shape.
    """
    prefix, run_dir = model_checkpoint.resolve_checkpoint(path)
    source = read_config(run_dir)
    nets = {"depth_net": depth_net}
    if pose_net is not None and source.use_pose_net:
        nets["pose_net"] = pose_net
    # A deeper source holds every variable of a shallower ResNet with the same shapes (ResNet34's
    # layer1.0 is ResNet18's), so the depths are compared, not only the variables.
    depths = {"depth_net": ("--num_layers", source.model.num_layers),
              "pose_net": ("--pose_num_layers", source.model.pose_num_layers)}
    for name, net in nets.items():
        flag, depth = depths[name]
        if net.encoder.num_layers != depth:
            raise ValueError(f"--encoder_init {run_dir!r} has a ResNet{depth} {name} encoder ({flag}), "
                             f"this run a ResNet{net.encoder.num_layers}")
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
                         f"({len(problems)} problem(s), same --num_layers/--pose_num_layers needed): "
                         f"{problems[:5]}")
    for var, key in assignments:
        var.assign(reader.get_tensor(key))
    return prefix, list(nets)


#: ``load_models(path) -> (config, depth_net, pose_net)``: the shared reader (md2tf.models.checkpoint).
load_models = model_checkpoint.load_models
