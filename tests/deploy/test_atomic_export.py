"""Exports are atomic and never mix models: refusal, --overwrite, failures and a killed export."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest
from absl import flags

from md2tf import flags as md2tf_flags
from md2tf.config import ExportConfig
from md2tf.deploy import exporter, formats, staging, tflite

H, W = 32, 64
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _checksums(root) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    out = {}
    for base, _, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _other_models_export(path):
    """A folder holding "another run's" export: a SavedModel folder, a .tflite and a card."""
    (path / "saved_model").mkdir(parents=True)
    (path / "saved_model" / "saved_model.pb").write_bytes(b"old graph")
    (path / "depth_fp32.tflite").write_bytes(os.urandom(64))
    (path / "model_card.json").write_text('{"source": "another run"}')
    return _checksums(path)


@pytest.fixture(scope="module")
def predictor():
    from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
    from tests.deploy.standin import tiny_depth_net

    info = ModelInfo(H, W)
    return KerasPredictor(DepthPredictor(tiny_depth_net(H, W), info), info)


def _failing_format(monkeypatch):
    """Registers ``boom``: writes half a file into the export, then raises."""
    def write(job, path, fmt):
        with open(path, "wb") as f:
            f.write(b"half a model")
        raise RuntimeError("converter crashed")

    boom = formats.ExportFormat("boom", "boom.tflite", "always fails", 1.0, write, in_all=False)
    monkeypatch.setitem(formats.FORMATS, "boom", boom)


def _parse_export(*args: str) -> ExportConfig:
    values = flags.FlagValues()
    md2tf_flags.define_flags(ExportConfig, values)
    values(["export", *args])
    return md2tf_flags.config_from_flags(ExportConfig, values)


def test_formats_all_works_from_the_command_line():
    config = _parse_export("--checkpoint=run", "--out=o", "--formats=all")
    default = _parse_export("--checkpoint=run", "--out=o")
    assert config.formats == default.formats == ("all",)
    assert [f.name for f in formats.resolve(config.formats)] == list(formats.default_formats())


def test_non_empty_out_is_refused_and_nothing_changes(predictor, tmp_path):
    out = tmp_path / "export"
    before = _other_models_export(out)
    with pytest.raises(ValueError, match=r"--out: .*export.* is not empty .*--overwrite"):
        exporter.export_all(predictor, str(out), ["tflite_fp32"])
    assert _checksums(out) == before
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no staging folder either


def test_run_export_refuses_before_loading_anything(tmp_path):
    from md2tf.config import ExportConfig

    out = tmp_path / "export"
    before = _other_models_export(out)
    config = ExportConfig(checkpoint=str(tmp_path / "no_such_run"), out_dir=str(out))
    with pytest.raises(ValueError, match="not empty"):  # not "no checkpoint": checked first
        exporter.run_export(config)
    with pytest.raises(ValueError, match="unknown \\['onnx'\\]"):
        exporter.run_export(dataclasses.replace(config, formats=("onnx",), overwrite=True))
    assert _checksums(out) == before


def test_overwrite_replaces_the_whole_folder(predictor, tmp_path):
    out = tmp_path / "export"
    _other_models_export(out)
    card = exporter.export_all(predictor, str(out), ["saved_model"], overwrite=True)
    # The old .tflite and card are gone: the folder holds one model only.
    assert sorted(os.listdir(out)) == ["model_card.json", "saved_model"]
    assert card["variants"]["saved_model"]["parity"]["within_tolerance"] is True
    assert "md2tf_model.json" in os.listdir(out / "saved_model")
    assert sorted(os.listdir(tmp_path)) == ["export"]


@pytest.mark.parametrize("existing", [False, True], ids=["absent", "overwrite"])
def test_a_failure_mid_export_leaves_out_untouched_and_no_temp(predictor, tmp_path, monkeypatch,
                                                                existing):
    _failing_format(monkeypatch)
    out = tmp_path / "export"
    before = _other_models_export(out) if existing else None
    with pytest.raises(RuntimeError, match="converter crashed"):
        exporter.export_all(predictor, str(out), ["saved_model", "boom"], overwrite=True)
    if existing:
        assert _checksums(out) == before
    else:
        assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == (["export"] if existing else [])


def test_write_atomic_never_leaves_a_partial_file(tmp_path):
    path = tmp_path / "depth_fp32.tflite"
    path.write_bytes(b"the complete old model")
    with pytest.raises(TypeError):
        tflite.write_atomic(str(path), "not bytes")  # fails inside the write
    assert path.read_bytes() == b"the complete old model"
    assert os.listdir(tmp_path) == ["depth_fp32.tflite"]
    tflite.write_atomic(str(path), b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["depth_fp32.tflite"]


_KILLED_EXPORT = """
import os, sys, time
sys.path.insert(0, {repo!r})
from md2tf.deploy import exporter, formats
from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
from tests.deploy.standin import tiny_depth_net

def hang(job, path, fmt):  # half a file in the staging folder, then wait to be killed
    with open(path, "wb") as f:
        f.write(b"half")
    open({ready!r}, "w").close()
    time.sleep(600)

formats.FORMATS["hang"] = formats.ExportFormat("hang", "hang.tflite", "hangs", 1.0, hang, in_all=False)
info = ModelInfo({h}, {w})
predictor = KerasPredictor(DepthPredictor(tiny_depth_net({h}, {w}), info), info)
exporter.export_all(predictor, {out!r}, ["saved_model", "hang"], overwrite=True)
"""


@pytest.mark.slow  # a subprocess that imports TensorFlow
def test_a_killed_export_leaves_out_untouched_and_the_next_export_cleans_up(predictor, tmp_path):
    out, ready = tmp_path / "export", tmp_path / "ready"
    before = _other_models_export(out)
    script = _KILLED_EXPORT.format(repo=REPO, ready=str(ready), h=H, w=W, out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), proc.stdout.read().decode()[-3000:] if proc.poll() is not None else ""
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-export, the SavedModel already written
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _checksums(out) == before  # the other model's export is untouched
    stale = [e for e in os.listdir(tmp_path) if e.startswith(".export.export-")]
    assert len(stale) == 1  # the killed process could not clean up its staging folder ...
    exporter.export_all(predictor, str(out), ["saved_model"], overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["export", "ready"]  # ... the next export beside it did
    assert sorted(os.listdir(out)) == ["model_card.json", "saved_model"]


# --- one export per --out ----------------------------------------------------------------------------


def test_a_second_export_to_one_out_fails_at_once_naming_the_pid(predictor, tmp_path):
    from md2tf import locks

    out = tmp_path / "export"
    config = ExportConfig(checkpoint=str(tmp_path / "no_such_run"), out_dir=str(out))
    with locks.hold(staging.out_dir_lock(str(out)), "the first export"):  # a live export's lock
        with pytest.raises(ValueError, match=rf"^--out={out} is in use by process {os.getpid()} "
                                             r"\(lock file .*/\.export\.lock\); another export"):
            exporter.export_all(predictor, str(out), ["tflite_fp32"])
        with pytest.raises(ValueError, match="is in use by process"):  # before loading anything
            exporter.run_export(config)
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, the lock file removed


def _stub_format(monkeypatch, during_write=lambda: None):
    """Registers ``stub``: writes a small file, calls ``during_write()`` and reports parity 0."""
    def write(job, path, fmt):
        with open(path, "wb") as f:
            f.write(b"this export's model")
        during_write()
        return {"parity": {"max_abs_diff_disparity": 0.0}}, None

    stub = formats.ExportFormat("stub", "stub.tflite", "a stand-in", 1.0, write, in_all=False)
    monkeypatch.setitem(formats.FORMATS, "stub", stub)


def test_an_out_filled_during_the_export_is_kept_not_replaced(predictor, tmp_path, monkeypatch):
    out, others = tmp_path / "export", {}
    # "Another export" finishes between this one's start check (out absent) and its final move.
    _stub_format(monkeypatch, during_write=lambda: others.update(_other_models_export(out)))
    with pytest.raises(ValueError, match=r"--out: .*export' was filled by another writer during this "
                                         r"export and is kept as it is; pass --overwrite"):
        exporter.export_all(predictor, str(out), ["stub"])
    assert others and _checksums(out) == others  # the other model only, whole
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no staging folder, no lock file
    # An empty --out is still fine without --overwrite (replaced by the one rename).
    empty = tmp_path / "empty"
    empty.mkdir()
    _stub_format(monkeypatch)
    exporter.export_all(predictor, str(empty), ["stub"])
    assert sorted(os.listdir(empty)) == ["model_card.json", "stub.tflite"]


def _read_only_below(monkeypatch, folder, *names: str) -> None:
    """Makes the ``os`` functions ``names`` fail with EROFS for paths below ``folder``."""
    def refuse(real):
        def call(path, *args, **kwargs):
            if str(path).startswith(str(folder)):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real(path, *args, **kwargs)
        return call

    for name in names:
        monkeypatch.setattr(os, name, refuse(getattr(os, name)))


def test_a_read_only_out_ends_in_one_line(predictor, tmp_path, monkeypatch):
    _stub_format(monkeypatch)
    read_only = tmp_path / "ro"
    read_only.mkdir()
    _read_only_below(monkeypatch, read_only, "open", "mkdir")
    with pytest.raises(ValueError, match=r"^--out=.*ro/export: cannot create the lock file "
                                         r"'.*ro/\.export\.lock' \(Read-only file system\)$"):
        exporter.export_all(predictor, str(read_only / "export"), ["stub"])
    # An --out that --overwrite cannot move away (its own file system is read-only).
    out = tmp_path / "export"
    before = _other_models_export(out)
    _read_only_below(monkeypatch, out, "rename")
    with pytest.raises(ValueError, match=r"^--out: cannot write '.*export' \(Read-only file system\)$"):
        exporter.export_all(predictor, str(out), ["stub"], overwrite=True)
    assert _checksums(out) == before
    assert sorted(os.listdir(tmp_path)) == ["export", "ro"]


def test_the_export_holding_out_removes_its_stale_staging_folders_only(predictor, tmp_path,
                                                                       monkeypatch):
    _stub_format(monkeypatch)
    reused = tmp_path / f".export.export-{os.getpid()}-k1ll3d"  # a killed export's; its PID reused
    other = tmp_path / ".export.export-b.export-1-abc"  # the staging folder of --out=export.export-b
    for folder in (reused, other):
        (folder / "out").mkdir(parents=True)
    exporter.export_all(predictor, str(tmp_path / "export"), ["stub"])
    assert sorted(os.listdir(tmp_path)) == [other.name, "export"]
