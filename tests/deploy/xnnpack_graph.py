"""What a LiteRT interpreter makes of a .tflite: ops with their output dtypes, and what XNNPACK runs."""

from __future__ import annotations

import collections

import numpy as np


def interpreter_ops(content: bytes, xnnpack: bool = False) -> tuple[list[dict], dict[int, dict]]:
    """Interpreter nodes (plus one DELEGATE node per XNNPACK partition when ``xnnpack``) and the
    tensor details by index."""
    from ai_edge_litert import interpreter as lite

    resolver = (lite.OpResolverType.AUTO if xnnpack
                else lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp = lite.Interpreter(model_content=content, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    return interp._get_ops_details(), {t["index"]: t for t in interp.get_tensor_details()}


def typed_ops(content: bytes) -> collections.Counter:
    """Counter of ``(op name, output dtype name)``, e.g. ``("ELU", "int8")``."""
    ops, tensors = interpreter_ops(content)
    return collections.Counter((d["op_name"], np.dtype(tensors[d["outputs"][0]]["dtype"]).name)
                               for d in ops)


def not_delegated(content: bytes) -> collections.Counter:
    """Counter of the op names XNNPACK leaves to the builtin kernels.

    With the delegate applied the interpreter lists the original nodes and one DELEGATE node per
    partition; a partition covers the nodes reached walking back from its outputs to its inputs.
    """
    ops, _ = interpreter_ops(content, xnnpack=True)
    producer = {int(t): d["index"] for d in ops if d["op_name"] != "DELEGATE" for t in d["outputs"]}
    covered = set()
    for d in (d for d in ops if d["op_name"] == "DELEGATE"):
        stop, todo = {int(t) for t in d["inputs"]}, [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            if t in stop or t not in producer or producer[t] in covered:
                continue
            covered.add(producer[t])
            todo += [int(x) for x in ops[producer[t]]["inputs"] if x >= 0]
    return collections.Counter(d["op_name"] for d in ops
                               if d["op_name"] != "DELEGATE" and d["index"] not in covered)
