"""The deploy package never reaches training code (losses, sampler, pose training), evaluation or absl flags."""

from __future__ import annotations

import ast
import pathlib

import pytest

DEPLOY = pathlib.Path(__file__).resolve().parents[2] / "md2tf" / "deploy"
FORBIDDEN = ("md2tf.training", "md2tf.losses", "md2tf.evaluation", "md2tf.flags", "absl",
             "md2tf.geometry.sampling", "md2tf.geometry.projection")


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.py")), ids=lambda p: p.name)
def test_deploy_module_imports(path):
    bad = {n for n in _imports(path) if n.startswith(FORBIDDEN)}
    assert not bad, f"{path.name} imports {sorted(bad)}"
