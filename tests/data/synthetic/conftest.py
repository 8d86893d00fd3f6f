"""A tiny synthetic world written once per test session through the CLI (3 drives x 3 frames, 48x160)."""

from __future__ import annotations

import pytest

from md2tf.data.synthetic import WorldConfig
from md2tf.data.synthetic.__main__ import GenerateConfig, main
from md2tf.flags import call_command

TINY = dict(drives=3, frames=3, height=48, width=160, seed=3, ext="png")


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> tuple[str, WorldConfig]:
    out = str(tmp_path_factory.mktemp("synthetic_world"))
    args = [f"--{k}={v}" for k, v in TINY.items()]
    assert call_command(main, GenerateConfig, ["--out", out, *args]) == 0
    return out, WorldConfig(**TINY)
