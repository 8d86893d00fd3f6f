"""`native_stderr.held_back`: lines written to fd 2 are filtered, and all kept when the block raises."""

from __future__ import annotations

import os

import pytest

from md2tf import native_stderr

# Written by a GPU build of TensorFlow 2.21 on a machine without a GPU, at import and first device query.
CUDA_PROBE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795957780.764572   18611 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.\n"
    "E0000 00:00:1795957781.824434   18611 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA "
    "error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
# Written by TF 2.21 at import when oneDNN is on (md2tf.tf_start.use_onednn), twice.
ONEDNN_NOTICE = (
    "I0000 00:00:1795971388.881521    8460 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors from different "
    "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
OTHER = "E0000 00:00:1795957781.9 op_kernel.cc:1] something the user must see\n"


def _native_write(text: str) -> None:
    os.write(2, text.encode())  # past sys.stderr, as C++ code writes


def test_start_up_lines_are_dropped_and_others_kept(capfd):
    with native_stderr.held_back(native_stderr.STARTUP_NOISE.search):
        _native_write(ONEDNN_NOTICE + CUDA_PROBE + ONEDNN_NOTICE + OTHER)
    assert capfd.readouterr().err == OTHER


def test_every_line_is_kept_when_the_block_raises(capfd):
    with pytest.raises(ImportError):
        with native_stderr.held_back(native_stderr.STARTUP_NOISE.search):
            _native_write(CUDA_PROBE)
            raise ImportError("libcudart.so: cannot open shared object file")
    assert capfd.readouterr().err == CUDA_PROBE


def test_default_drops_everything_and_restores_fd2(capfd):
    with native_stderr.held_back():
        _native_write("fully_quantize: 0\n")
    _native_write("after\n")
    assert capfd.readouterr().err == "after\n"
