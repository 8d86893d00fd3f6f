"""No file a user passes to md2tf can run code: the sources never unpickle or evaluate input.

Scans every Python file of the package, ``scripts/`` and ``tflite/`` (AST, not text) for calls that
execute code from data: pickle and its relatives, ``np.load(allow_pickle=True)``, ``yaml.load``,
``eval``/``exec``, ``torch.load`` without ``weights_only=True`` and Keras ``safe_mode=False``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCANNED = sorted(p for d in ("md2tf", "scripts", "tflite") for p in (ROOT / d).rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "shelve", "dill", "cloudpickle", "marshal", "joblib"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def unsafe_calls(source: str) -> list[str]:
    """``"line: what"`` for every construct that can execute code from loaded data."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [f"{line}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{line}: from {node.module} import")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name) else ""
            if isinstance(func, ast.Name) and name in ("eval", "exec"):
                found.append(f"{line}: {name}()")
            if _keyword(node, "allow_pickle") not in (None, False):
                found.append(f"{line}: allow_pickle={_keyword(node, 'allow_pickle')}")
            if _keyword(node, "safe_mode") not in (None, True):
                found.append(f"{line}: safe_mode={_keyword(node, 'safe_mode')}")
            if owner == "yaml" and name in UNSAFE_YAML:
                found.append(f"{line}: yaml.{name}()")
            if owner == "torch" and name == "load" and _keyword(node, "weights_only") is not True:
                found.append(f"{line}: torch.load() without weights_only=True")
            if "pickle" in name.lower():
                found.append(f"{line}: {name}()")
    return found


def test_scanner_finds_every_forbidden_construct():
    planted = """
import pickle
from dill import loads
import numpy as np, yaml, torch, keras
np.load("x.npz", allow_pickle=True)
yaml.load(open("c.yaml"))
torch.load("w.pth")
torch.load("w.pth", weights_only=False)
eval("1")
exec("x = 1")
keras.saving.load_model("m.keras", safe_mode=False)
pd.read_pickle("f")
np.load("x.npz", allow_pickle=False)
torch.load("w.pth", weights_only=True)
yaml.safe_load(open("c.yaml"))
model.eval()
"""
    found = unsafe_calls(planted)
    assert [f.split(":")[0] for f in found] == [str(n) for n in (2, 3, 5, 6, 7, 8, 9, 10, 11, 12)], found


def test_scanned_tree_is_the_whole_package():
    names = {p.relative_to(ROOT).as_posix() for p in SCANNED}
    assert "md2tf/evaluation/gt_depth.py" in names and "md2tf/convert/torch_weights.py" in names
    assert len(names) > 50


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_source_never_executes_loaded_data(path):
    found = unsafe_calls(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)}: {found}"
