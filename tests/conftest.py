"""Shared test settings: one dtype -> tolerance table, quiet TensorFlow, CPU only."""

from __future__ import annotations

import importlib.util
import os
import types

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
from md2tf.tf_start import use_onednn  # noqa: E402  (no TensorFlow import)

use_onednn()  # the CPU kernels md2tf's commands run with

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# (rtol, atol) per dtype. float32 ops that accumulate over a few hundred terms stay well inside these.
TOLERANCES = {
    np.float64: (1e-9, 1e-9),
    np.float32: (1e-5, 1e-5),
    np.float16: (1e-2, 1e-2),
}


def tol(dtype=np.float32) -> dict[str, float]:
    """``assertAllClose``/``np.testing.assert_allclose`` keyword arguments for ``dtype``."""
    rtol, atol = TOLERANCES[np.dtype(dtype).type]
    return {"rtol": rtol, "atol": atol}


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(name: str) -> types.ModuleType:
    """The module of ``scripts/<name>.py`` (scripts are not a package), loaded fresh."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
