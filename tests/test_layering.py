"""The package's import direction: each layer imports only the layers below it.

    config <- rundir, progress, visualization        (plumbing; no TensorFlow in config/rundir)
    native_stderr                                    (plumbing: fd-2 filter, imports no md2tf layer)
    locks                                            (plumbing: one writer per target; no TF)
    config <- geometry <- losses <- training
    config <- models <- deploy, convert
    data (config, geometry), evaluation (losses for test-time alignment; never training), deploy (never training/losses/evaluation)
    tfds (the TFDS builders: data, and evaluation for the evaluator's test-split GT)

Only the command-line entry points (``md2tf/<command>.py`` and modules run with ``python -m``) touch
``md2tf.flags`` / absl; library code never reads flags.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "md2tf"
ALLOWED = {  # layer -> the md2tf layers it may import
    "__init__": set(),
    "config": set(),
    "rundir": {"config", "locks"},
    "progress": set(),
    "visualization": set(),
    "native_stderr": set(),
    "locks": set(),
    "geometry": {"config"},
    "losses": {"config", "geometry"},
    "models": {"config", "geometry", "rundir"},
    "data": {"config", "geometry", "progress", "locks"},
    "training": {"config", "geometry", "losses", "models", "convert", "data", "evaluation", "rundir", "progress",
                 "visualization"},
    "evaluation": {"config", "geometry", "losses", "models", "data", "deploy", "rundir", "progress", "visualization"},
    "deploy": {"config", "geometry", "models", "data", "rundir", "progress", "visualization", "native_stderr",
               "locks"},
    "convert": {"config", "models", "rundir"},
    "tfds": {"config", "geometry", "data", "evaluation", "progress"},
    "flags": {"config", "tf_start"},
    "tf_start": {"native_stderr"},
}
ENTRY_POINTS = {"train", "evaluate", "export", "export_gt", "predict"}
FORBIDDEN_ANYWHERE_BELOW = {  # finer rules than the layer table
    "deploy": ("md2tf.geometry.sampling", "md2tf.geometry.projection"),  # no warping on the device path
}
#: Host-side writers that may reuse a forbidden module: point clouds back-project with projection.
ALLOWED_EXCEPTIONS = {"deploy/pointcloud.py": ("md2tf.geometry.projection",)}


def _modules() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module == "md2tf":  # ``from md2tf import locks`` imports md2tf.locks
                names |= {f"md2tf.{a.name}" for a in node.names}
    return names


def _is_entry_point(path: pathlib.Path) -> bool:
    """A ``python -m`` target: a top-level command module or a module with a ``__main__`` guard."""
    top_level_command = path.parent == PACKAGE and path.stem in ENTRY_POINTS
    return top_level_command or 'if __name__ == "__main__"' in path.read_text()


def _layer(path: pathlib.Path) -> str:
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_lower_layers(path):
    layer = _layer(path)
    imports = _imports(path)
    if not _is_entry_point(path):
        assert not {n for n in imports if n == "absl.flags" or n.startswith("md2tf.flags")}, \
            "library code must not use flags"
        if layer in ALLOWED:
            used = {n.split(".")[1] for n in imports if n.startswith("md2tf.")} - {layer}
            assert used <= ALLOWED[layer], f"{layer} imports {sorted(used - ALLOWED[layer])}"
        else:
            pytest.fail(f"md2tf/{layer} is not in the layer table of this test")
    allowed = ALLOWED_EXCEPTIONS.get(str(path.relative_to(PACKAGE)), ())
    bad = {n for n in imports if n.startswith(FORBIDDEN_ANYWHERE_BELOW.get(layer, ("-",)))
           and n not in allowed}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_config_and_rundir_do_not_import_tensorflow():
    for name in ("config.py", "rundir.py", "flags.py", "progress.py", "locks.py", "tf_start.py"):
        imports = _imports(PACKAGE / name)
        assert not {n for n in imports if n.split(".")[0] in ("tensorflow", "keras")}, name


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")), ids=lambda p: p.name)
def test_models_hold_networks_only(path):
    """No PyTorch name map and no export-only layout switches inside the networks' modules."""
    text = path.read_text()
    assert "def torch_layers" not in text and "int8_friendly" not in text


def test_hooks_never_import_the_trainer():
    """A hook is built from values and callables (Keras callbacks' shape), so the loop's hooks do
    not depend on the trainer that runs them, not even for annotations."""
    source = (PACKAGE / "training" / "hooks.py").read_text()
    assert "md2tf.training.trainer" not in _imports(PACKAGE / "training" / "hooks.py")
    assert "TYPE_CHECKING" not in source and "trainer import" not in source
