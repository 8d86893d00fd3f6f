"""TFLite conversion (fp32 / fp16 / dynamic / int8) from an exported SavedModel, builtin ops only.

Every variant is converted from the SavedModel's ``serving_default`` signature (uint8 ``[1, H, W, 3]``
in, ``disparity`` and ``depth`` float32 ``[1, H, W, 1]`` out) with
``supported_ops = [TFLITE_BUILTINS]`` (plus ``TFLITE_BUILTINS_INT8`` for int8), never
``SELECT_TF_OPS``: a graph needing a Flex op fails to convert, and `check_builtin_only` re-checks the
result, so no export can silently need the Flex delegate.

Variants:
  * ``tflite_fp32``: float32 weights and activations.
  * ``tflite_fp16``: float16 weights (dequantised to float32 at load; GPU delegates run fp16).
  * ``tflite_dynamic``: int8 weights, float activations (``Optimize.DEFAULT``, no dataset).
  * ``tflite_int8``: full integer (int8 weights and activations) calibrated on a representative dataset;
    the uint8 input and float32 outputs stay, so the contract is the same for every variant.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Callable, Iterable

import numpy as np

TFLITE_VARIANTS = ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")


def convert(saved_model_dir: str, variant: str = "tflite_fp32",
            representative_images: Callable[[], Iterable[np.ndarray]] | None = None,
            metadata: dict | None = None) -> bytes:
    """Converts the ``serving_default`` signature of a SavedModel to a TFLite flatbuffer.

    Args:
      saved_model_dir: directory written by `md2tf.deploy.saved_model.export_saved_model`.
      variant: one of `TFLITE_VARIANTS`.
      representative_images: for ``tflite_int8`` only: a callable returning an iterable of uint8 RGB
        images ``[1, H, W, 3]`` (or ``[H, W, 3]``) at the model's size, used for calibration.
      metadata: JSON-serialisable dict embedded as TFLite metadata ``md2tf_model`` (optional).

    Returns:
      The ``.tflite`` model bytes.

    Raises:
      ValueError: unknown variant, int8 without representative images, or a non-builtin op.
    """
    import tensorflow as tf  # noqa: PLC0415

    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"variant must be one of {TFLITE_VARIANTS}, got {variant!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=["serving_default"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "tflite_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "tflite_int8":
        if representative_images is None:
            raise ValueError("tflite_int8 needs representative_images (a calibration dataset)")

        def gen():
            for img in representative_images():
                img = np.asarray(img, np.uint8)
                yield {"images": img if img.ndim == 4 else img[None]}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = gen
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
    content = converter.convert()
    check_builtin_only(content)
    if metadata is not None:
        content = add_metadata(content, {"md2tf_model": json.dumps(metadata).encode()})
    return content


def _model_t(content: bytes):
    from tensorflow.lite.tools import flatbuffer_utils  # noqa: PLC0415

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(content))


def op_list(content: bytes) -> list[str]:
    """Names of the operator codes used by a TFLite model, sorted (custom ops by their custom code)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops = set()
    for code in _model_t(content).operatorCodes or []:
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = names.get(builtin, str(builtin))
        if name == "CUSTOM":
            custom = code.customCode
            name = "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
        ops.add(name)
    return sorted(ops)


def check_builtin_only(content: bytes) -> list[str]:
    """Returns the op list; raises ValueError if any Flex (``FlexXxx``) or custom op is present."""
    ops = op_list(content)
    bad = [op for op in ops if op.startswith("CUSTOM") or "Flex" in op]
    if bad:
        raise ValueError(f"TFLite model uses non-builtin ops {bad}; md2tf exports must use builtins only")
    return ops


def analyze(content: bytes) -> tuple[str, bool]:
    """Runs ``tf.lite.experimental.Analyzer`` with the GPU-delegate compatibility check.

    Returns:
      (analyzer text, gpu_compatible). ``gpu_compatible`` is False when the analyzer prints a
      ``GPU COMPATIBILITY WARNING``.
    """
    import tensorflow as tf  # noqa: PLC0415

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tf.lite.experimental.Analyzer.analyze(model_content=content, gpu_compatibility=True)
    text = buf.getvalue()
    return text, "GPU COMPATIBILITY WARNING" not in text


def analyzer_ops(text: str) -> list[str]:
    """Sorted distinct op names from analyzer text (lines like ``Op#3 CONV_2D(T#1, ...)``)."""
    return sorted(set(re.findall(r"Op#\d+ (\w+)\(", text)))


def add_metadata(content: bytes, entries: dict[str, bytes]) -> bytes:
    """Embeds named byte buffers in the TFLite flatbuffer's ``metadata`` table (no tflite-support)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415
    from tensorflow.lite.tools import flatbuffer_utils  # noqa: PLC0415

    model = _model_t(content)
    model.metadata = list(model.metadata or [])
    for name, data in entries.items():
        buf = schema.BufferT()
        buf.data = np.frombuffer(data, np.uint8).copy()
        model.buffers.append(buf)
        meta = schema.MetadataT()
        meta.name = name
        meta.buffer = len(model.buffers) - 1
        model.metadata.append(meta)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(content: bytes) -> dict[str, bytes]:
    """The TFLite ``metadata`` table as ``{name: bytes}``."""
    model = _model_t(content)
    out = {}
    for meta in model.metadata or []:
        name = meta.name.decode() if isinstance(meta.name, bytes) else meta.name
        data = model.buffers[meta.buffer].data
        out[name] = bytes(np.asarray(data if data is not None else [], np.uint8))
    return out


def make_interpreter(content: bytes, num_threads: int | None = None):
    """A LiteRT interpreter (``ai_edge_litert``; falls back to ``tf.lite.Interpreter``), allocated."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError:  # pragma: no cover - ai-edge-litert is an install requirement
        import tensorflow as tf  # noqa: PLC0415

        Interpreter = tf.lite.Interpreter  # noqa: N806
    interpreter = Interpreter(model_content=content, num_threads=num_threads)
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
