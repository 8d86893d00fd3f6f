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
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from md2tf import native_stderr

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
    import tensorflow as tf  # noqa: PLC0415

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
        from tensorflow.lite.python import convert as lite_convert  # noqa: PLC0415

        with native_stderr_held_back():
            content = lite_convert.mlir_quantize(content, fully_quantize=False,
                                                 denylisted_nodes=output_head_tensors(content))
        content, _ = fuse_int8_elu(content)
    check_builtin_only(content)
    if metadata is not None:
        content = add_metadata(content, {"md2tf_model": json.dumps(metadata).encode()})
    return content


def _model_t(content: bytes):
    from tensorflow.lite.tools import flatbuffer_utils  # noqa: PLC0415

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(content))


def _builtin_names() -> dict[int, str]:
    """Builtin operator code -> name (``CONV_2D``)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _builtin_code(model, op) -> int:
    code = model.operatorCodes[op.opcodeIndex]
    return max(code.builtinCode, code.deprecatedBuiltinCode)


_CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")


def output_head_tensors(content: bytes) -> list[str]:
    """Output tensor names of the ops between the last convolutions and the outputs (subgraph 0).

    Walks back from every model output through the producing ops and stops at a convolution
    (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED; not included). For the depth graph
    these are LOGISTIC and ``disp_to_depth``'s MUL, ADD, DIV, MUL (plus the flip post-processing
    ops when enabled). `convert` passes them to the quantizer as ``denylisted_nodes`` so they stay
    float. Returns [] when some output reaches a model input without passing a convolution (nothing
    to single out).
    """
    names = _builtin_names()
    model = _model_t(content)
    graph = model.subgraphs[0]
    producer = {int(t): op for op in graph.operators for t in op.outputs}
    inputs = {int(t) for t in graph.inputs}
    head, seen, todo = [], set(), [int(t) for t in graph.outputs]
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in inputs:
            return []
        op = producer.get(t)
        if op is None or names.get(_builtin_code(model, op)) in _CONVOLUTIONS:
            continue
        name = graph.tensors[t].name
        head.append(name.decode() if isinstance(name, bytes) else name)
        todo += [int(x) for x in op.inputs if x >= 0]
    return sorted(set(head))


def float_ops(content: bytes) -> list[str]:
    """Sorted names of the ops of subgraph 0 that compute in float: float32 output, not DEQUANTIZE.

    For an int8 depth model: CAST (uint8 input) and the output head (`output_head_tensors`).
    """
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    names = _builtin_names()
    model = _model_t(content)
    graph = model.subgraphs[0]
    found = {names.get(_builtin_code(model, op)) for op in graph.operators
             if op.outputs is not None and len(op.outputs)
             and graph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32}
    return sorted(found - {"DEQUANTIZE"})


# Ops that only move values (same scale in and out in int8): an ELU island may pass through them.
_DATA_MOVEMENT = ("CONCATENATION", "DEPTH_TO_SPACE", "MIRROR_PAD", "RESHAPE",
                  "RESIZE_NEAREST_NEIGHBOR", "SLICE", "STRIDED_SLICE")


def fuse_int8_elu(content: bytes) -> tuple[bytes, int]:
    """Turns the float ELU islands of a full-integer model into the int8 ELU builtin.

    The TFLite quantizer keeps ``tf.nn.elu`` float: ``int8 -> DEQUANTIZE -> ELU -> [data movement:
    slices, concatenations, DEPTH_TO_SPACE, ...] -> QUANTIZE -> int8``. The ELU builtin has an int8
    kernel (a 256-entry lookup table built from the input and output scales; XNNPACK runs it too),
    so each island is rewritten as: ELU reads the int8 input of the DEQUANTIZE; ELU's output and
    every tensor of the island become int8 with the scale and zero point of the QUANTIZE; the
    DEQUANTIZE and QUANTIZE ops go. Values: ``quantize(elu(dequantize(q)))`` either way, since data
    movement commutes with the elementwise ELU and the requantisation.

    An island is left alone unless: the DEQUANTIZE feeds only the ELU, every op reached from the
    ELU's output is data movement whose float inputs all belong to the island or a QUANTIZE, no
    island tensor is a model output, and all its QUANTIZE ops have one int8 scale and zero point.

    Args:
      content: a ``.tflite`` flatbuffer.

    Returns:
      ``(content, number of ELUs fused)``; the input bytes when there is nothing to fuse.
    """
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415
    from tensorflow.lite.tools import flatbuffer_utils  # noqa: PLC0415

    names = _builtin_names()
    model = _model_t(content)
    fused = 0
    for graph in model.subgraphs:
        ops = graph.operators
        kind = [names.get(_builtin_code(model, op)) for op in ops]
        producer = {int(t): i for i, op in enumerate(ops) for t in op.outputs}
        consumers: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            for t in op.inputs:
                consumers.setdefault(int(t), []).append(i)
        outputs = {int(t) for t in graph.outputs}
        tensors = graph.tensors
        drop: set[int] = set()
        for e, op in enumerate(ops):
            if kind[e] != "ELU":
                continue
            d = producer.get(int(op.inputs[0]))
            if d is None or kind[d] != "DEQUANTIZE" or consumers[int(op.inputs[0])] != [e]:
                continue
            island, moves, quantizes = {int(op.outputs[0])}, set(), set()
            todo, ok = [int(op.outputs[0])], True
            while todo and ok:
                t = todo.pop()
                ok = t not in outputs
                for c in consumers.get(t, []):
                    if kind[c] == "QUANTIZE":
                        quantizes.add(c)
                    elif kind[c] in _DATA_MOVEMENT:
                        if c not in moves:
                            moves.add(c)
                            island.update(int(x) for x in ops[c].outputs)
                            todo += [int(x) for x in ops[c].outputs]
                    else:
                        ok = False
            float_inputs = {int(t) for c in moves for t in ops[c].inputs
                            if t >= 0 and tensors[t].type == schema.TensorType.FLOAT32}
            params = {(tuple(tensors[ops[q].outputs[0]].quantization.scale),
                       tuple(tensors[ops[q].outputs[0]].quantization.zeroPoint),
                       tensors[ops[q].outputs[0]].type) for q in quantizes}
            if (not ok or not quantizes or not float_inputs <= island or len(params) != 1
                    or next(iter(params))[2] != schema.TensorType.INT8
                    or any(int(ops[q].outputs[0]) in outputs for q in quantizes)):
                continue
            quantization = tensors[ops[next(iter(quantizes))].outputs[0]].quantization
            for t in island:
                tensors[t].type = schema.TensorType.INT8
                tensors[t].quantization = copy.deepcopy(quantization)
            op.inputs = np.array([ops[d].inputs[0]], np.int32)
            rename = {int(ops[q].outputs[0]): int(ops[q].inputs[0]) for q in quantizes}
            for other in ops:
                other.inputs = np.array([rename.get(int(t), int(t)) for t in other.inputs], np.int32)
            drop |= {d, *quantizes}
            fused += 1
        graph.operators = [op for i, op in enumerate(ops) if i not in drop]
    if not fused:
        return content, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), fused


def op_list(content: bytes) -> list[str]:
    """Names of the operator codes used by a TFLite model, sorted (custom ops by their custom code)."""
    names = _builtin_names()
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


#: The flatbuffer file identifier of a TFLite model (bytes 4..8 of the file).
FILE_IDENTIFIER = b"TFL3"


def _not_a_model(source: str, why: str) -> ValueError:
    return ValueError(f"{source} is not a valid, complete TFLite model ({why})")


def read_metadata(content: bytes, source: str = "the TFLite model") -> dict[str, bytes]:
    """The TFLite ``metadata`` table as ``{name: bytes}``.

    Args:
      content: the ``.tflite`` bytes.
      source: how error messages name the model (its file path).

    Raises:
      ValueError: naming ``source``: the bytes are empty, not a TFLite flatbuffer (no ``TFL3``
        identifier, e.g. a text file) or cut short / damaged (the flatbuffer does not parse).
    """
    if not content:
        raise _not_a_model(source, "the file is empty")
    if content[4:8] != FILE_IDENTIFIER:
        raise _not_a_model(source, f"no {FILE_IDENTIFIER.decode()} identifier at bytes 4..8")
    try:
        model = _model_t(content)
        out = {}
        for meta in model.metadata or []:
            name = meta.name.decode() if isinstance(meta.name, bytes) else meta.name
            data = model.buffers[meta.buffer].data
            out[name] = bytes(np.asarray(data if data is not None else [], np.uint8))
    # An offset or length past the end of the bytes: what a file cut short gives.
    except (struct.error, IndexError, TypeError, ValueError) as e:
        raise _not_a_model(source, f"cut short or damaged, {len(content)} bytes: {e}") from None
    return out


def make_interpreter(content: bytes, num_threads: int | None = None,
                     source: str = "the TFLite model"):
    """A LiteRT interpreter (``ai_edge_litert``, an install requirement), allocated.

    Never TensorFlow's ``tf.lite.Interpreter``, which is deprecated in favour of LiteRT's.

    Raises:
      ValueError: naming ``source`` (how messages name the model, e.g. its path) when LiteRT's
        flatbuffer verifier refuses the bytes.
    """
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    if not content:
        raise _not_a_model(source, "the file is empty")
    with native_stderr_held_back():
        try:
            interpreter = Interpreter(model_content=content, num_threads=num_threads)
        except ValueError as e:  # "The model is not a valid Flatbuffer buffer"
            raise _not_a_model(source, " ".join(str(e).split())) from None
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
