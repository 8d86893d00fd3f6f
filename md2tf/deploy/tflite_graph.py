"""A converted TFLite model as a flatbuffer: its ops, metadata, and the edits `md2tf.deploy.tflite`
makes after conversion (the float output head of an int8 model, int8 ELUs).

Reads and writes the TFLite schema (``tensorflow.lite.python.schema_py_generated``) through
``flatbuffer_utils``; `read_metadata` parses only the few flatbuffer tables it needs, so a damaged
file is named in one line.
"""

from __future__ import annotations

import copy
import struct

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils


def _model_t(content: bytes):

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(content))


def _builtin_names() -> dict[int, str]:
    """Builtin operator code -> name (``CONV_2D``)."""

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


def add_metadata(content: bytes, entries: dict[str, bytes]) -> bytes:
    """Embeds named byte buffers in the TFLite flatbuffer's ``metadata`` table (no tflite-support)."""

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


def not_a_model(source: str, why: str) -> ValueError:
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
        raise not_a_model(source, "the file is empty")
    if content[4:8] != FILE_IDENTIFIER:
        raise not_a_model(source, f"no {FILE_IDENTIFIER.decode()} identifier at bytes 4..8")
    try:
        model = _model_t(content)
        out = {}
        for meta in model.metadata or []:
            name = meta.name.decode() if isinstance(meta.name, bytes) else meta.name
            data = model.buffers[meta.buffer].data
            out[name] = bytes(np.asarray(data if data is not None else [], np.uint8))
    # An offset or length past the end of the bytes: what a file cut short gives.
    except (struct.error, IndexError, TypeError, ValueError) as e:
        raise not_a_model(source, f"cut short or damaged, {len(content)} bytes: {e}") from None
    return out
