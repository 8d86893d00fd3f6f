"""models/ holds the networks only: no export layouts by flag, no PyTorch naming, no upward imports."""

from __future__ import annotations

import ast
import pathlib

import pytest

MODELS = pathlib.Path(__file__).resolve().parents[2] / "md2tf" / "models"
ALLOWED = ("md2tf.config", "md2tf.geometry", "md2tf.models")


def _md2tf_imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.startswith("md2tf")}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_models_import_only_config_geometry_and_models(path):
    bad = {n for n in _md2tf_imports(path) if not n.startswith(ALLOWED)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_no_pytorch_name_map_or_int8_options_in_models(path):
    text = path.read_text()
    assert "def torch_layers" not in text and "int8_friendly" not in text
