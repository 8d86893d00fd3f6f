"""Strategy selection and chief/worker helpers for tf.distribute.

``auto``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster, ``MirroredStrategy`` over
all local GPUs when there is more than one, else the default strategy (CPU or one GPU).
"""

from __future__ import annotations

import json
import os

import tensorflow as tf


def tf_config() -> dict:
    """Parsed ``TF_CONFIG`` environment variable (``{}`` when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {raw[:200]!r}") from e


def select_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy named by ``--strategy``.

    Args:
      name: ``auto``, ``default``, ``mirrored`` (all local GPUs, or all logical CPUs when there are
        no GPUs) or ``multi_worker`` (needs ``TF_CONFIG``).
    """
    if name == "auto":
        if tf_config().get("cluster"):
            name = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not tf_config().get("cluster"):
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                             '({"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}})')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--strategy must be auto, default, mirrored or multi_worker, got {name!r}")


def split_cpu(num_devices: int) -> None:
    """Splits the physical CPU into ``num_devices`` logical devices (tests; call before any TF op)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])


def task_info(strategy: tf.distribute.Strategy | None = None) -> tuple[str | None, int | None]:
    """(task type, task id) of this process from ``TF_CONFIG``; (None, None) outside multi-worker."""
    config = tf_config()
    if not config.get("cluster"):
        return None, None
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is not None and resolver.task_type is not None:
        return resolver.task_type, resolver.task_id
    task = config.get("task", {})
    return task.get("type"), task.get("index")


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True for the process that writes the real checkpoints and summaries (from ``TF_CONFIG``)."""
    task_type, task_id = task_info(strategy)
    if task_type is None or task_type == "chief":
        return True
    cluster = tf_config().get("cluster", {})
    return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_dir(path: str, strategy: tf.distribute.Strategy) -> str:
    """``path`` on the chief; a per-worker temporary directory elsewhere (TF's documented pattern).

    Every worker must take part in a checkpoint save (the variables may need collective ops), but
    only the chief's copy is kept.
    """
    if is_chief(strategy):
        return path
    _, task_id = task_info(strategy)
    return os.path.join(path, f"workertemp_{task_id}")
