"""One TensorFlow distribution in every documented install (scripts/check_install.py), offline.

The network check (``python scripts/check_install.py --dry_run``: pip's full resolution) is not run
here; these tests evaluate setup.cfg's requirements and markers per platform, and read the running
environment.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import REPO, load_script


@pytest.fixture(scope="module")
def check():
    return load_script("check_install")


def test_every_documented_install_declares_one_tensorflow_on_every_platform(check):
    setup_cfg = os.path.join(REPO, "setup.cfg")
    for name, platform in check.PLATFORMS.items():
        for extras in check.DOCUMENTED_INSTALLS:
            assert check.declared(setup_cfg, extras, platform) == ["tensorflow"], (name, extras)
    assert check.main(["--declared"]) == 0


def test_the_check_catches_a_cpu_wheel_beside_the_gpu_extra(check, tmp_path):
    """The layout this replaced: tensorflow-cpu on x86_64 plus tensorflow[and-cuda] in ``gpu``."""
    old = tmp_path / "setup.cfg"
    old.write_text("[options]\ninstall_requires =\n"
                   '    tensorflow~=2.21.0; platform_machine != "x86_64"\n'
                   '    tensorflow-cpu~=2.21.0; platform_machine == "x86_64"\n'
                   "    numpy>=1.26\n"
                   "[options.extras_require]\ngpu =\n    tensorflow[and-cuda]~=2.21.0\ndev =\n"
                   "    pytest>=8\n")
    x86, arm = check.PLATFORMS["linux x86_64"], check.PLATFORMS["linux aarch64"]
    assert check.declared(str(old), ("gpu",), x86) == ["tensorflow", "tensorflow-cpu"]
    assert check.declared(str(old), ("dev",), x86) == ["tensorflow-cpu"]
    assert check.declared(str(old), ("gpu",), arm) == ["tensorflow"]


def test_distribution_names_are_normalised(check):
    assert check.tensorflow_distributions(["TensorFlow_CPU", "tensorflow-datasets", "keras",
                                           "tf_nightly", "tensorflow.macos"]) == [
        "tensorflow-cpu", "tensorflow-macos", "tf-nightly"]


def test_readme_and_ci_install_only_checked_extras(check):
    documented = {frozenset(e) for e in check.DOCUMENTED_INSTALLS}
    found = []
    for path in ("README.md", os.path.join(".ci", "run")):
        with open(os.path.join(REPO, path)) as f:
            found += re.findall(r"pip install (?:-q )?-e '\.\[([a-z,]+)\]'", f.read())
    assert found  # the pattern still matches the docs
    for extras in found:
        assert frozenset(extras.split(",")) in documented, extras


def test_this_environment_has_one_tensorflow(check):
    found = check.installed()
    assert len(found) == 1, f"{found}: run python scripts/check_install.py for the fix"
