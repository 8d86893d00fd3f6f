"""Measurement helpers and the section registry of ``scripts/benchmark.py``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable

SECTIONS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {}


def section(name: str):
    """Registers a benchmark section under ``--only NAME``."""

    def register(fn):
        SECTIONS[name] = fn
        return fn

    return register


# --- measurement -----------------------------------------------------------------------------------


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def _system_busy_seconds() -> float:
    """CPU seconds all processes spent busy since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _clock_ticks()


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclasses.dataclass
class Timing:
    """Repeated wall-clock timings of one operation (seconds)."""

    name: str
    runs: list[float]
    other_cpu_cores: float  # mean number of cores used by other processes during the runs
    items_per_run: float = 1.0  # e.g. batch size -> samples/s
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def to_dict(self, contaminated_cores: float) -> dict:
        return {
            "name": self.name,
            "median_s": self.median,
            "min_s": min(self.runs),
            "max_s": max(self.runs),
            "repeats": len(self.runs),
            "items_per_s": self.items_per_run / self.median,
            "other_cpu_cores": round(self.other_cpu_cores, 3),
            "contaminated": self.other_cpu_cores > contaminated_cores,
            **self.extra,
        }


def measure(name: str, fn: Callable[[], object], *, warmup: int, repeats: int,
            items_per_run: float = 1.0, **extra) -> Timing:
    """Runs ``fn`` ``warmup`` times untimed, then ``repeats`` times timed."""
    for _ in range(warmup):
        fn()
    runs = []
    busy0, own0, wall0 = _system_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    wall = time.perf_counter() - wall0
    others = max(0.0, (_system_busy_seconds() - busy0) - (_own_cpu_seconds() - own0)) / max(wall, 1e-9)
    return Timing(name, runs, others, items_per_run, dict(extra))


#: Size of the square matmul whose GFLOP/s is "the measured peak" of the train and infer sections.
PEAK_N = 4096


def matmul_fn(dtype_name: str) -> Callable[[], float]:
    """One ``PEAK_N``-square matmul in ``dtype_name`` (``float32``, ``bfloat16``), ready to time.

    ``2 * PEAK_N**3`` floating-point operations per call; the machine's peak is measured, never
    assumed: the CPU changes from machine to machine.
    """
    import tensorflow as tf

    dtype = tf.as_dtype(dtype_name)
    a = tf.random.stateless_uniform([PEAK_N, PEAK_N], seed=(1, 2), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b), tf.float32)))
    return lambda: float(matmul())


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info() -> dict:
    info = {"python": platform.python_version(), "cores": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        try:  # what TF itself runs (TF_ENABLE_ONEDNN_OPTS and the CPU decide)
            from tensorflow.python.util import _pywrap_util_port

            info["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
        except (ImportError, AttributeError):
            pass
        import keras

        info["keras"] = keras.__version__
    except ImportError:
        pass
    return info
