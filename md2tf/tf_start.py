"""Starting TensorFlow quietly and fast: TF's own log lines held back, oneDNN CPU kernels asked for.

Every ``python -m md2tf.<command>`` calls `start_tensorflow` after parsing its flags and before
anything imports TensorFlow (the C++ log level and oneDNN are read at import). md2tf's own lines
(progress, results, warnings) are never affected. This module imports TensorFlow only inside
`start_tensorflow`.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import warnings

from md2tf import native_stderr

#: Environment variable: ``1`` keeps TensorFlow's own log lines (C++ banner, saver, converter).
TF_LOGS_ENV = "MD2TF_TF_LOGS"
#: Environment variable read by TF at start-up: ``1`` = oneDNN CPU kernels (see `use_onednn`).
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
#: Python warnings raised inside TensorFlow about TensorFlow itself, never about the user's run: the
#: int8 converter calibrates with TF's deprecated interpreter (md2tf's own code uses LiteRT's).
NOISE_WARNINGS = (r"\s*Warning: tf\.lite\.Interpreter is deprecated",)
#: Installed TensorFlow packages whose absl log records below ERROR are TF's, not md2tf's.
_TF_SOURCE = re.compile(r"[/\\](site|dist)-packages[/\\](tensorflow|keras|tf_keras|tensorflow_datasets)"
                        r"[/\\]")


class _TensorFlowRecords(logging.Filter):
    """Drops absl log records below ERROR emitted from TensorFlow's own source files."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not _TF_SOURCE.search(record.pathname or "")


def quiet_tensorflow(verbosity: int = 0, environ: dict[str, str] | None = None) -> bool:
    """Silences TensorFlow's log lines so a command prints only md2tf's own (call before TF starts).

    TF's C++ logs (the CPU-feature banner, SavedModel loader and converter chatter) need
    ``TF_CPP_MIN_LOG_LEVEL`` before ``import tensorflow``; an explicit value is kept. Its Python
    logger and the absl records TF's own files write (``Sharding callback duration``, signature
    renaming notes) keep errors only, and `NOISE_WARNINGS` are ignored. md2tf's own lines (progress, results, warnings) are unaffected.

    Args:
      verbosity: absl's ``--verbosity``; >= 1 (debug) keeps TF's logs.
      environ: the environment to read and update (default ``os.environ``).

    Returns:
      True when TF's logs were silenced, False when ``MD2TF_TF_LOGS=1`` or ``verbosity >= 1``.
    """
    environ = os.environ if environ is None else environ
    if environ.get(TF_LOGS_ENV, "0").strip() not in ("", "0") or verbosity >= 1:
        return False
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++: errors only
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _TensorFlowRecords) for f in absl_logger.filters):
        absl_logger.addFilter(_TensorFlowRecords())
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
    return True


def use_onednn(environ: dict[str, str] | None = None, deterministic: bool = False,
               machine: str | None = None) -> bool:
    """Asks TF for its oneDNN CPU kernels on x86 unless ``TF_ENABLE_ONEDNN_OPTS`` is set (call before TF starts).

    TF 2.21 turns oneDNN on by default only on x86 CPUs with AVX512-VNNI/BF16, AVX-VNNI or AMX; on
    plain AVX2 parts (many AMD EPYC and laptop CPUs) its convolutions and matmuls fall back to Eigen,
    whose convolution filter gradients run at under half the speed. Measured on a 2-core AVX2 EPYC
    (``docs/benchmarks.md``): the M training step at 192x640 is 1.28-1.45x faster with oneDNN, a
    float32 matmul 1.9x. Other architectures keep TF's default (unmeasured there).

    Args:
      environ: the environment to read and update (default ``os.environ``). An explicit
        ``TF_ENABLE_ONEDNN_OPTS`` is kept (``0`` for an A/B against Eigen).
      deterministic: the run asks for bitwise reproducibility (``--deterministic``): TF's op
        determinism does not cover oneDNN's kernels, so Eigen's are asked for instead.
      machine: ``platform.machine()`` (tests).

    Returns:
      Whether oneDNN is requested for a TF started after this call (TF also needs a oneDNN build).
    """
    environ = os.environ if environ is None else environ
    machine = platform.machine() if machine is None else machine
    if deterministic:
        environ.setdefault(ONEDNN_ENV, "0")
    elif machine.lower() in ("x86_64", "amd64"):
        environ.setdefault(ONEDNN_ENV, "1")
    return environ.get(ONEDNN_ENV, "").strip().lower() in ("1", "true")


def start_tensorflow(verbosity: int = 0, deterministic: bool = False) -> None:
    """How every md2tf command and script starts TF: `use_onednn`, `quiet_tensorflow`, then, when it
    silenced TF, the import with its start-up lines held back (`native_stderr.STARTUP_NOISE`).

    Args:
      verbosity: absl's ``--verbosity`` (>= 1 keeps TF's log lines).
      deterministic: the run's ``--deterministic`` (see `use_onednn`).
    """
    use_onednn(deterministic=deterministic)
    if quiet_tensorflow(verbosity):
        native_stderr.start_tensorflow_quietly()
