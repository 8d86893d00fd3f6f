"""TFLite conversion from an exported SavedModel, builtin ops only.

Every model is converted from the SavedModel's ``serving_default`` signature (uint8 ``[1, H, W, 3]``
in, ``disparity`` and ``depth`` float32 ``[1, H, W, 1]`` out) with
``supported_ops = [TFLITE_BUILTINS]`` (plus ``TFLITE_BUILTINS_INT8`` for int8), never
``SELECT_TF_OPS``: a graph needing a Flex op fails to convert, and `check_builtin_only` re-checks the
result, so no export can silently need the Flex delegate.

Quantization (`TFLiteOptions.quantization`; the export formats that use each are entries of
``md2tf.deploy.formats.FORMATS``):
  * ``none``: float32 weights and activations.
  * ``float16``: float16 weights (dequantised to float32 at load; GPU delegates run fp16).
  * ``dynamic``: int8 weights, float activations (``Optimize.DEFAULT``, no dataset).
  * ``int8``: full integer (int8 weights and activations) calibrated on a representative dataset;
    the uint8 input and float32 outputs stay, so the contract is the same for every model. Two
    changes to the converter's default result (`convert` has the details):
      - the output head (every op after the last convolution: sigmoid, ``disp_to_depth``) stays
        float (`output_head_tensors`): an int8 sigmoid has a fixed step of 1/256, i.e. 2 levels for
        a disparity of 0.01, and the int8 DIV ``1 / disparity`` runs outside XNNPACK;
      - each float ELU island the quantizer leaves (DEQUANTIZE, ELU, data movement, QUANTIZE)
        becomes the int8 ELU builtin (`fuse_int8_elu`), which XNNPACK runs in int8.

The flatbuffer itself (op lists, metadata, those edits) is `md2tf.deploy.tflite_graph`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import convert as lite_convert

from md2tf import native_stderr
from md2tf.deploy.tflite_graph import (
    add_metadata,
    check_builtin_only,
    fuse_int8_elu,
    not_a_model,
    output_head_tensors,
)

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


@contextlib.contextmanager
def native_stderr_held_back():
    """Holds back what native (C++) code writes to stderr inside the block, unless it raises.

    The converter and LiteRT print info lines (``fully_quantize: 0, ...``, ``Created TensorFlow Lite
    XNNPACK delegate``) straight to file descriptor 2, past Python's logging. While
    ``TF_CPP_MIN_LOG_LEVEL`` asks for fewer logs (md2tf's commands set it unless TF's logs are
    wanted), those lines are captured and dropped (`md2tf.native_stderr.held_back`); if the block
    raises, they are written out, as they may explain the error.
    """
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    if not level.isdigit() or int(level) < 1:
        yield
        return
    with native_stderr.held_back():
        yield


@dataclass(frozen=True)
class TFLiteOptions:
    """Converter options of one TFLite export format.

    Attributes:
      quantization: one of `QUANTIZATIONS` (see the module docstring); ``int8`` needs
        representative images.
    """

    quantization: str = "none"

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}")


def convert(saved_model_dir: str, options: TFLiteOptions | None = None,
            representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
            metadata: dict | None = None) -> bytes:
    """Converts the ``serving_default`` signature of a SavedModel to a TFLite flatbuffer.

    Args:
      saved_model_dir: directory written by `md2tf.deploy.saved_model.export_saved_model`.
      options: converter options (`TFLiteOptions`); None = float32 (``TFLiteOptions()``).
      representative_images: for ``int8`` only: a callable returning an iterable of uint8 RGB
        images ``[1, H, W, 3]`` (or ``[H, W, 3]``) at the model's size, used for calibration.
      metadata: JSON-serialisable dict embedded as TFLite metadata ``md2tf_model`` (optional).

    Returns:
      The ``.tflite`` model bytes.

    Raises:
      ValueError: int8 without representative images, or a non-builtin op.
    """
    quantization = (options or TFLiteOptions()).quantization
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        if representative_images is None:
            raise ValueError("int8 quantization needs representative_images (a calibration dataset)")

        def gen():
            # A list (inputs by position: the one ``images`` input), not a {name: array} dict: for
            # a dict the calibrator builds a tf.lite.Interpreter, deprecated in favour of LiteRT's,
            # only to look the name up.
            for img in representative_images():
                img = np.asarray(img, np.uint8)
                yield [img if img.ndim == 4 else img[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
        # Calibrate, then quantize with the output head denylisted (what
        # tf.lite.experimental.QuantizationDebugger does for selective quantization).
        converter._experimental_calibrate_only = True  # noqa: SLF001
    with native_stderr_held_back():
        content = converter.convert()
    if quantization == "int8":
        with native_stderr_held_back():
            content = lite_convert.mlir_quantize(content, fully_quantize=False,
                                                 denylisted_nodes=output_head_tensors(content))
        content, _ = fuse_int8_elu(content)
    check_builtin_only(content)
    if metadata is not None:
        content = add_metadata(content, {"md2tf_model": json.dumps(metadata).encode()})
    return content


def analyze(content: bytes) -> tuple[str, bool]:
    """Runs ``tf.lite.experimental.Analyzer`` with the GPU-delegate compatibility check.

    Returns:
      (analyzer text, gpu_compatible). ``gpu_compatible`` is False when the analyzer prints a
      ``GPU COMPATIBILITY WARNING``.
    """

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tf.lite.experimental.Analyzer.analyze(model_content=content, gpu_compatibility=True)
    text = buf.getvalue()
    return text, "GPU COMPATIBILITY WARNING" not in text


def analyzer_ops(text: str) -> list[str]:
    """Sorted distinct op names from analyzer text (lines like ``Op#3 CONV_2D(T#1, ...)``)."""
    return sorted(set(re.findall(r"Op#\d+ (\w+)\(", text)))


def make_interpreter(content: bytes, num_threads: int | None = None,
                     source: str = "the TFLite model"):
    """A LiteRT interpreter (``ai_edge_litert``, an install requirement), allocated.

    Never TensorFlow's ``tf.lite.Interpreter``, which is deprecated in favour of LiteRT's.

    Raises:
      ValueError: naming ``source`` (how messages name the model, e.g. its path) when LiteRT's
        flatbuffer verifier refuses the bytes.
    """
    if not content:
        raise not_a_model(source, "the file is empty")
    with native_stderr_held_back():
        try:
            interpreter = Interpreter(model_content=content, num_threads=num_threads)
        except ValueError as e:  # "The model is not a valid Flatbuffer buffer"
            raise not_a_model(source, " ".join(str(e).split())) from None
        interpreter.allocate_tensors()
    return interpreter


def run(content_or_interpreter, images: np.ndarray) -> dict[str, np.ndarray]:
    """Runs a converted model on uint8 images ``[B, H, W, 3]``, one at a time.

    Returns:
      ``{"disparity", "depth"}``, each float32 ``[B, H, W, 1]``.
    """
    interp = content_or_interpreter
    if isinstance(interp, bytes | bytearray):
        interp = make_interpreter(bytes(interp))
    runner = interp.get_signature_runner("serving_default")
    outs = [runner(images=np.asarray(img, np.uint8)[None]) for img in images]
    return {k: np.concatenate([o[k] for o in outs], axis=0) for k in ("disparity", "depth")}


def write_atomic(path: str, content: bytes) -> None:
    """Writes ``content`` to ``path`` so that ``path`` never holds a partial file.

    The bytes go to ``<path>.part`` (flushed and fsynced) and are renamed over ``path`` (atomic on
    POSIX); on any error the ``.part`` file is removed.
    """
    part = path + ".part"
    try:
        with open(part, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
    finally:
        if os.path.exists(part):
            os.remove(part)
