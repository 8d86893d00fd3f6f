"""`tflite.native_stderr_held_back`: native info lines are dropped when quiet, kept on errors."""

from __future__ import annotations

import os

import pytest

from md2tf.deploy import tflite


def _native_write(text: str) -> None:
    os.write(2, text.encode())  # past sys.stderr, as C++ code writes


def test_quiet_drops_native_lines(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with tflite.native_stderr_held_back():
        _native_write("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
    _native_write("after\n")
    assert capfd.readouterr().err == "after\n"


def test_quiet_replays_native_lines_when_the_block_raises(monkeypatch, capfd):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    with pytest.raises(RuntimeError, match="conversion failed"):
        with tflite.native_stderr_held_back():
            _native_write("error: op not supported\n")
            raise RuntimeError("conversion failed")
    assert capfd.readouterr().err == "error: op not supported\n"


@pytest.mark.parametrize("level", ["0", "", "x"])
def test_verbose_keeps_native_lines(monkeypatch, capfd, level):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with tflite.native_stderr_held_back():
        _native_write("fully_quantize: 0\n")
    assert capfd.readouterr().err == "fully_quantize: 0\n"
