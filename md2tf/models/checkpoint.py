"""The one md2tf checkpoint format that training, evaluation, export, prediction and conversion share.

A run directory holds ``config.json`` (``ExperimentConfig.to_dict()``) and ``checkpoints/``, written by a
``tf.train.CheckpointManager`` over ``tf.train.Checkpoint(depth_net=..., pose_net=...)`` (the trainer
adds ``optimizer``, ``step`` and ``epoch`` to the same object; readers ignore them).

`load_models` restores with ``expect_partial()`` (optimizer state ignored) but then verifies that every
variable of the networks, BatchNorm moving statistics included, was present in the checkpoint: Keras 3
can silently skip variables, and a partially restored network must not be evaluated.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from md2tf.config import ExperimentConfig
from md2tf.models.builder import build
from md2tf.models.depth_net import DepthNet
from md2tf.models.intrinsics import LearnedIntrinsics
from md2tf.models.pose_net import PoseNet
from md2tf.rundir import RunDir


def variable_paths(model: tf.Module) -> dict[int, tuple[str, ...]]:
    """Object-graph paths (child names from ``model``) of every variable reachable from ``model``.

    Walks the same trackable edges that ``tf.train.Checkpoint`` serialises, breadth-first.

    Returns:
      ``{id(variable): (name, ...)}``; variables held only in untracked containers are absent.
    """
    paths: dict[int, tuple[str, ...]] = {}
    seen = {id(model)}
    queue: list[tuple[object, tuple[str, ...]]] = [(model, ())]
    while queue:
        obj, path = queue.pop(0)
        for name, child in obj._trackable_children(save_type="checkpoint").items():
            if id(child) in seen:
                continue
            seen.add(id(child))
            child_path = path + (name,)
            if isinstance(child, tf.Variable) or isinstance(child, keras.Variable):
                paths[id(child)] = child_path
            queue.append((child, child_path))
    return paths


def variable_checkpoint_keys(root_name: str, model: tf.Module, checkpoint_prefix: str) -> dict[int, str | None]:
    """Checkpoint keys of ``model``'s variables saved under ``root_name`` (e.g. ``depth_net``).

    Follows the checkpoint's own object graph (the one restore uses), so it works whatever else was
    saved alongside (optimizer, step) and however TF named the tensors.

    Returns:
      ``{id(variable): key}`` for every variable of ``model.weights``; the key is None when the
      checkpoint does not hold that variable.
    """
    reader = tf.train.load_checkpoint(checkpoint_prefix)
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

    def lookup(names: tuple[str, ...]):
        node = 0  # the root tf.train.Checkpoint
        for name in names:
            edges = {c.local_name: c.node_id for c in graph.nodes[node].children}
            if name not in edges:
                return None
            node = edges[name]
        return graph.nodes[node]

    paths = variable_paths(model)
    found: dict[int, str | None] = {}
    for var in model.weights:
        path = paths.get(id(var))
        node = lookup((root_name,) + path) if path is not None else None
        keys = [a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"] if node else []
        found[id(var)] = keys[0] if keys and reader.has_tensor(keys[0]) else None
    return found


def unsaved_variables(root_name: str, model: tf.Module, checkpoint_prefix: str) -> list[str]:
    """Paths of ``model``'s variables that the checkpoint does not hold under ``root_name``."""
    keys = variable_checkpoint_keys(root_name, model, checkpoint_prefix)
    return [getattr(var, "path", var.name) for var in model.weights if keys[id(var)] is None]


def save_models(
    out_dir: str,
    config: ExperimentConfig,
    depth_net: DepthNet,
    pose_net: PoseNet | None = None,
    step: int = 0,
) -> str:
    """Writes ``out_dir/config.json`` and a checkpoint ``out_dir/checkpoints/ckpt-<step>``.

    Args:
      out_dir: run directory (created if needed).
      config: the experiment the networks belong to (``config.model`` must describe them).
      depth_net: built `DepthNet`.
      pose_net: built `PoseNet` or None.
      step: checkpoint number.

    Returns:
      The checkpoint prefix (``.../checkpoints/ckpt-<step>``).
    """
    run = RunDir(out_dir)
    run.write_config(config)
    objects = {"depth_net": depth_net}
    if pose_net is not None:
        objects["pose_net"] = pose_net
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(**objects), run.checkpoints, max_to_keep=None
    )
    return manager.save(checkpoint_number=step)


def resolve_checkpoint(path: str) -> tuple[str, str]:
    """Finds ``(checkpoint_prefix, run_dir)`` for a run directory or a checkpoint prefix.

    Raises:
      FileNotFoundError: if no checkpoint or no ``config.json`` is found (the message says where it
        looked).
    """
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(RunDir(path).checkpoints) or (
            tf.train.latest_checkpoint(path)
        )
        if prefix is None:
            raise FileNotFoundError(
                f"no checkpoint in {RunDir(path).checkpoints!r} (expected a run directory "
                "with checkpoints/ or a checkpoint prefix such as run/checkpoints/ckpt-100)"
            )
        candidates = [path, os.path.dirname(os.path.dirname(prefix))]
    else:
        if not tf.io.gfile.exists(path + ".index"):
            raise FileNotFoundError(
                f"{path!r} is neither a run directory nor a checkpoint prefix ({path}.index missing)"
            )
        prefix = path
        parent = os.path.dirname(os.path.abspath(path))
        candidates = [parent, os.path.dirname(parent)]
    for run_dir in candidates:
        if RunDir(run_dir).has_config():
            return prefix, run_dir
    raise FileNotFoundError(f"no {RunDir.CONFIG} for checkpoint {prefix!r}; looked in {candidates}")


def load_models(
    path: str, load_pose_net: bool = True
) -> tuple[ExperimentConfig, DepthNet, PoseNet | None]:
    """Builds the networks described by a run's ``config.json`` and restores them from a checkpoint.

    Args:
      path: a run directory (its latest checkpoint in ``checkpoints/``) or a checkpoint prefix
        (``config.json`` is looked up in the prefix's folder and its parent).
      load_pose_net: also build/restore the pose network when the config has one.

    Returns:
      ``(config, depth_net, pose_net or None)``.

    Raises:
      FileNotFoundError: see `resolve_checkpoint`.
      ValueError: if any depth/pose variable is not in the checkpoint (names listed).
    """
    prefix, run_dir = resolve_checkpoint(path)
    config = RunDir(run_dir).read_config()
    use_pose = load_pose_net and config.use_pose_net
    depth_net, pose_net = build(config.model, use_pose_net=use_pose)
    restore_networks(prefix, depth_net, pose_net)
    return config, depth_net, pose_net


def restore_networks(path: str, depth_net: tf.Module, pose_net: tf.Module | None = None) -> str:
    """Restores built networks from a run directory (its latest checkpoint) or a checkpoint prefix.

    The one restore path of md2tf: evaluation, export, prediction and ``--init_checkpoint`` all use
    it. Optimizer state and counters in the checkpoint are ignored (``expect_partial``), but every
    variable of the given networks, BatchNorm statistics included, must be present: Keras 3 can
    silently skip variables, and a partially restored network must never be used.

    Args:
      path: a run directory or checkpoint prefix (`resolve_checkpoint`).
      depth_net: a built `DepthNet`.
      pose_net: a built `PoseNet`, or None (not restored).

    Returns:
      The checkpoint prefix used.

    Raises:
      FileNotFoundError: see `resolve_checkpoint`.
      ValueError: naming the checkpoint and the first missing variables, or naming the checkpoint
        when its files are truncated, damaged or missing.
    """
    prefix, _ = resolve_checkpoint(path)
    objects = {name: net for name, net in (("depth_net", depth_net), ("pose_net", pose_net))
               if net is not None}
    try:
        missing = [f"{name}: {p}" for name, net in objects.items()
                   for p in unsaved_variables(name, net, prefix)]
        if not missing:
            tf.train.Checkpoint(**objects).restore(prefix).expect_partial()
    # What TF's checkpoint reader raises for a cut-short ``.data`` file ("Read less bytes than
    # requested"), a damaged ``.index`` ("not an sstable") or a missing shard.
    except (tf.errors.OpError, IndexError) as error:
        cause = " ".join(str(error).split())[:300]
        raise ValueError(f"checkpoint {prefix!r} cannot be read: its files are truncated, damaged or "
                         f"missing ({type(error).__name__}: {cause})") from None
    if missing:
        raise ValueError(f"checkpoint {prefix!r} does not hold {len(missing)} variable(s) of the networks: "
                         f"{missing[:20]}{' ...' if len(missing) > 20 else ''}")
    return prefix


_LEARNED_FOCAL_KEY = "intrinsics/focal/.ATTRIBUTES/VARIABLE_VALUE"


def load_learned_intrinsics(path: str) -> dict[str, tuple[float, float, float, float]]:
    """The K an ``--intrinsics=learned`` run stored with its networks (the same checkpoint).

    Args:
      path: a run directory, its ``best/`` or a checkpoint prefix (`resolve_checkpoint`).

    Returns:
      camera name -> normalised ``(fx, fy, cx, cy)`` (fx, cx / width; fy, cy / height), in the
      run's camera order; names from ``<run_dir>/intrinsics_learned.json`` where it lists several,
      ``camera`` for a single one. Empty for a run whose K was not learned.

    Raises:
      ValueError: a learned run's checkpoint without its K (naming the checkpoint).
    """
    prefix, run_dir = resolve_checkpoint(path)
    run = RunDir(run_dir)
    config = run.read_config()
    if config.data.intrinsics != "learned":
        return {}
    shapes = dict(tf.train.list_variables(prefix))
    if _LEARNED_FOCAL_KEY not in shapes:
        raise ValueError(f"checkpoint {prefix!r} of an --intrinsics=learned run holds no learned K")
    num_cameras = int(shapes[_LEARNED_FOCAL_KEY][0])
    layer = LearnedIntrinsics(num_cameras, np.eye(3), learning_rate_scale=config.train.intrinsics_lr_scale)
    tf.train.Checkpoint(intrinsics=layer).restore(prefix).expect_partial()
    names = ["camera"] if num_cameras == 1 else [f"camera_{i}" for i in range(num_cameras)]
    if num_cameras > 1 and os.path.isfile(run.learned_intrinsics_path):
        with open(run.learned_intrinsics_path, encoding="utf-8") as f:
            listed = list(json.load(f).get("cameras", {}))
        names = listed if len(listed) == num_cameras else names
    values = layer.normalized().numpy()
    return {name: tuple(float(v) for v in values[i]) for i, name in enumerate(names)}
