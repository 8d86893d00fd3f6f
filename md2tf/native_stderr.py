"""What native (C++) code writes to stderr: held back around noisy calls, kept when it explains an error.

TensorFlow's and LiteRT's C++ code writes some lines straight to file descriptor 2, past Python's
logging and past ``TF_CPP_MIN_LOG_LEVEL``: the CUDA probe of a GPU build on a machine without a GPU
(``cudart_stub.cc: Could not find cuda drivers``, ``failed call to cuInit``, each preceded by
``WARNING: All log messages before absl::InitializeLog() ...``), the oneDNN notice
(``oneDNN custom operations are on``), the converter's
``fully_quantize: 0, ...`` and LiteRT's ``Created TensorFlow Lite XNNPACK delegate``. `held_back`
captures fd 2 inside a block and writes back only the lines a filter keeps, or every line if the
block raises (they may explain the error). No TensorFlow import here: the module is usable before TF
starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator

#: Lines TF writes as it starts (the GPU probe on a machine without a usable GPU, the oneDNN notice):
#: facts about the machine, not the run.
STARTUP_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|cudart_stub\.cc.*Could not find cuda drivers"
    r"|cuda_platform\.cc.*failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation_placer\.cc.*already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|port\.cc.*oneDNN custom operations are on")


@contextlib.contextmanager
def held_back(drop: Callable[[str], bool] = lambda line: True) -> Iterator[None]:
    """Captures fd 2 inside the block; afterwards writes back the lines ``drop`` rejects.

    Args:
      drop: a line (without its newline) -> True to discard it. Default: discard all.

    If the block raises, every captured line is written back before the exception propagates.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if failed or not drop(line.rstrip("\n")))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow and probes its devices with `STARTUP_NOISE` held back (other lines kept).

    Call once a command has decided to silence TF's logs, before anything imports TensorFlow: the
    probe lines are written at import and at the first device query, whatever ``TF_CPP_MIN_LOG_LEVEL``.
    """
    with held_back(STARTUP_NOISE.search):
        import tensorflow as tf  # noqa: PLC0415  (the import is what is held back)

        tf.config.list_physical_devices()
