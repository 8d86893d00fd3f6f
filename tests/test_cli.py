"""The shared entry-point wrapper: config and data errors end in one stderr line and exit status 2."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from md2tf import flags as md2tf_flags
from md2tf import tf_start
from md2tf.config import ConfigBase, ConfigError, setting

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class _Demo(ConfigBase):
    value: int = setting(1, "A demo setting.")


def test_value_errors_become_one_line_and_exit_2(capsys):
    def main(config, flag_values):
        raise ValueError("--height must be a positive multiple of 32,\n  got 100")

    assert md2tf_flags.call_command(main, _Demo, []) == md2tf_flags.USAGE_EXIT_STATUS
    assert capsys.readouterr().err == "error: --height must be a positive multiple of 32, got 100\n"


@pytest.mark.parametrize("error", [ConfigError("bad --x"), FileNotFoundError("no such file: a.jpg")])
def test_config_and_missing_file_errors(capsys, error):
    def main(config, flag_values):
        raise error

    assert md2tf_flags.call_command(main, _Demo, []) == md2tf_flags.USAGE_EXIT_STATUS
    assert capsys.readouterr().err.count("\n") == 1


def test_bugs_keep_their_traceback_and_results_pass_through(capsys):
    def buggy(config, flag_values):
        raise KeyError("not a config error")

    with pytest.raises(KeyError):
        md2tf_flags.call_command(buggy, _Demo, [])
    assert md2tf_flags.call_command(lambda config, fv: config.value + 2, _Demo, ["--value=1"]) == 3
    assert md2tf_flags.call_command(lambda config, fv: 0, _Demo, ["--nosuch=1"]) == 2  # unknown flag
    assert "nosuch" in capsys.readouterr().err


def test_unknown_flag_in_a_flagfile_names_the_file(tmp_path, capsys):
    inner = tmp_path / "inner.flags"
    inner.write_text("# a comment\n--value=3\n--nosuch=1\n")
    outer = tmp_path / "outer.flags"
    outer.write_text(f"--value=2\n--flagfile={inner}\n")
    assert md2tf_flags.call_command(lambda c, fv: 0, _Demo, [f"--flagfile={outer}"]) == 2
    assert capsys.readouterr().err == f"error: {inner}: unknown flag --nosuch\n"
    assert md2tf_flags.call_command(lambda c, fv: 0, _Demo, ["--valeu=1"]) == 2
    assert capsys.readouterr().err == "error: unknown flag --valeu (did you mean --value?)\n"
    bad_value = tmp_path / "bad_value.flags"
    bad_value.write_text("--value=x\n")
    assert md2tf_flags.call_command(lambda c, fv: 0, _Demo, ["--value=1", f"--flagfile={bad_value}"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad_value}: flag --value=x: ")
    assert md2tf_flags.call_command(lambda c, fv: 0, _Demo, ["stray"]) == 2
    assert capsys.readouterr().err.startswith("error: unexpected arguments: stray")


def test_flag_parsing_errors_of_an_entry_point_exit_2(tmp_path):
    """absl's own parser would print "FATAL Flags parsing error" and exit 1."""
    flagfile = tmp_path / "eval.flags"
    flagfile.write_text("--eval_split=eigen\n--nosuch=1\n")
    for args, message in [([f"--flagfile={flagfile}"], f"error: {flagfile}: unknown flag --nosuch"),
                          (["--nosuch=1"], "error: unknown flag --nosuch"),
                          ([f"--flagfile={tmp_path / 'none.flags'}"], "error: --flagfile: cannot open")]:
        proc = subprocess.run([sys.executable, "-m", "md2tf.evaluate", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == md2tf_flags.USAGE_EXIT_STATUS, proc.stderr[-2000:]
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(message), proc.stderr


@pytest.mark.parametrize("module, args, message", [
    ("md2tf.evaluate", ["--eval_split=eigen"], "error: --models is required"),
    ("md2tf.train", ["--learning_rate=inf"], "error: --learning_rate must be a finite"),
    pytest.param("md2tf.train", ["--disparity_smoothness=nan"], "error: --smoothness_weight / --disparity_smoothness",
                 marks=pytest.mark.slow),
])
def test_entry_points_print_one_line(tmp_path, module, args, message):
    args = [*args, f"--run_dir={tmp_path / 'run'}", f"--synthetic_cache_dir={tmp_path / 'world'}"] if (
        module == "md2tf.train") else args
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == md2tf_flags.USAGE_EXIT_STATUS, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow  # a subprocess importing TensorFlow
def test_evaluate_exits_1_on_nonfinite_predictions(tmp_path):
    import numpy as np

    from md2tf.evaluation import gt_depth

    rng = np.random.default_rng(0)
    gts = [rng.uniform(1, 50, size=(20, 40)).astype(np.float32) for _ in range(4)]
    os.makedirs(tmp_path / "splits" / "synthetic")
    gt_depth.save_gt_depths(str(tmp_path / "splits" / "synthetic" / "gt_depths.npz"), gts)
    disps = np.stack([1.0 / g for g in gts])
    disps[1, :5, :5] = np.nan
    np.save(tmp_path / "pred.npy", disps)
    cmd = [sys.executable, "-m", "md2tf.evaluate", f"--splits_dir={tmp_path / 'splits'}",
           "--eval_split=synthetic", f"--models={tmp_path / 'pred.npy'}", "--noprogress"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAILED pred.npy: 1 of 4" in proc.stdout and "abs_rel" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("error: non-finite predictions (pred.npy: 1 of 4")
    proc = subprocess.run(cmd + ["--allow_nonfinite"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


# --- quiet by default ------------------------------------------------------------------------------


@pytest.fixture
def restore_logging():
    """quiet_tensorflow changes process-wide logging and warning filters: put them back."""
    import logging
    import warnings

    tf_logger, absl_logger = logging.getLogger("tensorflow"), logging.getLogger("absl")
    level, filters = tf_logger.level, list(absl_logger.filters)
    with warnings.catch_warnings():
        yield
    tf_logger.setLevel(level)
    absl_logger.filters[:] = filters


def _record(pathname: str, level: int):
    import logging

    return logging.LogRecord("absl", level, pathname, 1, "Sharding callback duration: 3", None, None)


def test_quiet_sets_tf_log_level_and_filters_tf_records(restore_logging):
    import logging
    import warnings

    env = {}
    assert tf_start.quiet_tensorflow(0, env)
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert logging.getLogger("tensorflow").level == logging.ERROR
    absl_logger = logging.getLogger("absl")
    tf_file = "/venv/lib/python3.11/site-packages/tensorflow/python/checkpoint/functional_saver.py"
    assert not absl_logger.filter(_record(tf_file, logging.INFO))
    assert absl_logger.filter(_record(tf_file, logging.ERROR))  # TF's errors still show
    assert absl_logger.filter(_record("/work/md2tf/training/hooks.py", logging.INFO))  # md2tf's own
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # then the quiet filters again, in front of it
        tf_start.quiet_tensorflow(0, {})
        warnings.warn("    Warning: tf.lite.Interpreter is deprecated and is scheduled", UserWarning, stacklevel=1)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real warning"]


@pytest.mark.parametrize("env, verbosity", [({"MD2TF_TF_LOGS": "1"}, 0), ({}, 1)])
def test_tf_logs_come_back_on_request(restore_logging, env, verbosity):
    import logging

    before = logging.getLogger("tensorflow").level
    assert not tf_start.quiet_tensorflow(verbosity, env)
    assert "TF_CPP_MIN_LOG_LEVEL" not in env and logging.getLogger("tensorflow").level == before


def test_an_explicit_tf_log_level_is_kept(restore_logging):
    env = {"TF_CPP_MIN_LOG_LEVEL": "0"}
    assert tf_start.quiet_tensorflow(0, env) and env["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_onednn_is_asked_for_on_x86_unless_the_environment_or_determinism_says_otherwise():
    env = {}
    assert tf_start.use_onednn(env, machine="x86_64") and env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    env = {"TF_ENABLE_ONEDNN_OPTS": "0"}  # an A/B against Eigen's kernels
    assert not tf_start.use_onednn(env, machine="x86_64") and env == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    env = {"TF_ENABLE_ONEDNN_OPTS": "False"}
    assert not tf_start.use_onednn(env, machine="x86_64")
    env = {}  # --deterministic: TF's op determinism does not cover oneDNN
    assert not tf_start.use_onednn(env, deterministic=True, machine="x86_64")
    assert env == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    env = {}  # other architectures keep TF's default
    assert not tf_start.use_onednn(env, machine="aarch64") and env == {}


@pytest.mark.slow  # subprocesses importing TensorFlow
@pytest.mark.parametrize("setting, enabled", [(None, True), ("0", False)])
def test_tensorflow_started_by_md2tf_runs_onednn_kernels(setting, enabled):
    """What TF itself reports after `start_tensorflow`: oneDNN on unless the environment says 0.
    Only an AVX2 CPU without VNNI/AMX tells this apart from TF's own default, which is off there
    and on with those features."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("from md2tf import tf_start; tf_start.start_tensorflow()\n"
            "from tensorflow.python.util import _pywrap_util_port\n"
            "print('onednn', _pywrap_util_port.IsMklEnabled())")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["onednn", str(enabled)]


@pytest.mark.slow  # a subprocess importing TensorFlow
def test_a_command_prints_only_its_own_lines(tmp_path):
    """`md2tf.evaluate` (TF imported after the flags): no TF banner or log line, only md2tf's."""
    import re

    import numpy as np

    folder = "2011_09_26/2011_09_26_drive_0001_sync"
    os.makedirs(tmp_path / folder / "depth_gt" / "image_02")
    os.makedirs(tmp_path / "splits" / "synthetic")
    gt = np.linspace(1.0, 9.0, 32, dtype=np.float32).reshape(4, 8)
    np.save(tmp_path / folder / "depth_gt" / "image_02" / "0000000000.npy", gt)
    (tmp_path / "splits" / "synthetic" / "test_files.txt").write_text(f"{folder} 0 l\n")
    np.save(tmp_path / "pred.npy", (1.0 / gt)[None])
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MD2TF_TF_LOGS")}
    proc = subprocess.run([sys.executable, "-m", "md2tf.evaluate", f"--models={tmp_path / 'pred.npy'}",
                           "--eval_split=synthetic", f"--data_dir={tmp_path}", "--noprogress"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "abs_rel" in proc.stdout
    tf_lines = [line for line in proc.stderr.splitlines()
                if re.match(r"[IWE]\d{4} |WARNING: All log messages|To enable the following", line)]
    assert not tf_lines, proc.stderr[-2000:]
    assert [line for line in proc.stderr.splitlines() if line] == [
        line for line in proc.stderr.splitlines() if line.startswith("note: ")]
