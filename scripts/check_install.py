#!/usr/bin/env python3
"""Checks that an md2tf install holds exactly one TensorFlow distribution.

``tensorflow`` and ``tensorflow-cpu`` (and the other TensorFlow builds in `TF_DISTRIBUTIONS`) are
separate distributions that all own the same ``tensorflow/`` package: with two of them installed,
whichever was installed last has overwritten the other's files, and removing or upgrading one
breaks the other. md2tf therefore requires ``tensorflow`` everywhere and gets CUDA through the
``gpu`` extra (``tensorflow[and-cuda]``, the same distribution).

Three checks (standard library + ``packaging``, which pip vendors and setuptools installs):

  python scripts/check_install.py              # the environment running this script
  python scripts/check_install.py --declared   # setup.cfg, for every documented install and platform
  python scripts/check_install.py --dry_run    # pip's resolution of every documented install (network)

``--dry_run`` runs ``pip install --dry-run --ignore-installed --report FILE SPEC`` from the repository
root for each of `DOCUMENTED_INSTALLS` and counts the TensorFlow distributions in the report: the
transitive dependencies included. pip evaluates environment markers for the running machine only,
so the other platforms are covered by ``--declared`` (markers evaluated per `PLATFORMS`).
Exit status 1 when any check finds zero or several TensorFlow distributions.
"""

from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Distributions that install the ``tensorflow`` package (normalised names, PEP 503).
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel",
                    "tensorflow-macos", "tf-nightly", "tf-nightly-cpu", "tf-nightly-gpu")

#: The installs the README and CI document: extras of ``pip install -e '.[...]'``.
DOCUMENTED_INSTALLS = (("dev",), ("dev", "torch"), ("torch",), ("gpu", "dev"), ("gpu",))

#: Marker environments (PEP 508) of the platforms md2tf supports.
PLATFORMS = {
    "linux x86_64": {"platform_machine": "x86_64", "sys_platform": "linux",
                     "platform_system": "Linux"},
    "linux aarch64": {"platform_machine": "aarch64", "sys_platform": "linux",
                      "platform_system": "Linux"},
    "macOS arm64": {"platform_machine": "arm64", "sys_platform": "darwin",
                    "platform_system": "Darwin"},
}


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of ``-_.`` -> ``-``."""
    out = name.lower()
    for ch in "_.":
        out = out.replace(ch, "-")
    while "--" in out:
        out = out.replace("--", "-")
    return out


def tensorflow_distributions(names) -> list[str]:
    """The TensorFlow distributions (`TF_DISTRIBUTIONS`) among distribution ``names``, sorted."""
    return sorted({normalise(n) for n in names} & set(TF_DISTRIBUTIONS))


def installed() -> list[str]:
    """TensorFlow distributions installed in the running environment."""
    return tensorflow_distributions(d.metadata["Name"] for d in importlib.metadata.distributions())


def declared(setup_cfg: str, extras: tuple[str, ...], platform: dict[str, str]) -> list[str]:
    """TensorFlow distributions that ``setup.cfg`` requires directly for ``extras`` on ``platform``.

    Args:
      setup_cfg: path of the ``setup.cfg``.
      extras: requested extras (``("gpu", "dev")``).
      platform: PEP 508 marker values overriding the running machine's (a `PLATFORMS` entry).
    """
    from packaging.markers import default_environment  # noqa: PLC0415
    from packaging.requirements import Requirement  # noqa: PLC0415

    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg)
    lines = cfg.get("options", "install_requires").splitlines()
    for extra in extras:
        lines += cfg.get("options.extras_require", extra).splitlines()
    env = {**default_environment(), **platform, "extra": ""}
    names = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                names.append(req.name)
    return tensorflow_distributions(names)


def resolved(extras: tuple[str, ...], pip: tuple[str, ...] = (sys.executable, "-m", "pip")) -> list[str]:
    """TensorFlow distributions pip would install for ``.[extras]`` (dry run, fresh environment)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        spec = ".[" + ",".join(extras) + "]"
        proc = subprocess.run([*pip, "install", "--dry-run", "--quiet", "--ignore-installed",
                               "--report", report, spec], cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install --dry-run '{spec}' failed:\n{proc.stderr[-2000:]}")
        with open(report) as f:
            items = json.load(f)["install"]
    return tensorflow_distributions(item["metadata"]["name"] for item in items)


def _verdict(what: str, found: list[str]) -> bool:
    ok = len(found) == 1
    print(f"{'ok  ' if ok else 'FAIL'} {what}: {', '.join(found) or 'no TensorFlow distribution'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--declared", action="store_true",
                        help="check setup.cfg for every documented install and platform")
    parser.add_argument("--dry_run", action="store_true",
                        help="check pip's resolution of every documented install (needs the index)")
    args = parser.parse_args(argv)
    results = []
    if args.declared:
        setup_cfg = os.path.join(REPO, "setup.cfg")
        for name, platform in PLATFORMS.items():
            for extras in DOCUMENTED_INSTALLS:
                results.append(_verdict(f"setup.cfg .[{','.join(extras)}] on {name}",
                                        declared(setup_cfg, extras, platform)))
    if args.dry_run:
        for extras in DOCUMENTED_INSTALLS:
            results.append(_verdict(f"pip install --dry-run .[{','.join(extras)}]", resolved(extras)))
    if not (args.declared or args.dry_run):
        found = installed()
        results.append(_verdict(f"installed in {sys.prefix}", found))
        if "tensorflow-cpu" in found and "tensorflow" in found:
            print("  an environment from an older md2tf: pip uninstall -y tensorflow-cpu tensorflow, "
                  "then pip install -e '.[dev]' (or '.[gpu]') again")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
