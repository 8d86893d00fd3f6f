#!/usr/bin/env python
"""md2tf benchmark harness: training step, input pipeline, inference/export latency.

Usage:
  python scripts/benchmark.py [--only train,data,infer] [--json out.json] [--repeats 5]
  python scripts/benchmark.py --only infer --compare-torch      # PyTorch eager side by side
  python scripts/benchmark.py --only infer,train --encoder mobilenet_v3_small   # another encoder
  python scripts/benchmark.py --only infer --also mobilenet_v3_small_minimalistic:8,16,32,64,128  # two, one run
  python scripts/benchmark.py --only size --sizes 192x640       # parameters and FLOPs, every encoder

Every measurement is warmed up, repeated, and reported as median / min / max. The machine is shared,
so each measurement also records how much CPU *other* processes used meanwhile (from /proc/stat minus
this process's own time); runs where others used more than ``--contaminated`` cores are flagged.
Never used by tests: times are reported, not asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo (md2tf)
sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ (bench)

from md2tf import tf_start  # noqa: E402
from md2tf.config import DECODER_CHANNELS, ENCODERS  # noqa: E402  (no TensorFlow import)

# TF as md2tf's commands start it: quiet, oneDNN kernels (TF_ENABLE_ONEDNN_OPTS=0 for an A/B).
tf_start.start_tensorflow()

from bench.harness import SECTIONS, machine_info, peak_rss_mib  # noqa: E402


def _load_sections() -> None:
    """Imports scripts/bench/*.py; each registers its sections with ``@bench.harness.section``."""
    for path in sorted((Path(__file__).resolve().parent / "bench").glob("*.py")):
        if path.stem not in ("__init__", "harness"):
            importlib.import_module(f"bench.{path.stem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated sections (default: all)")
    parser.add_argument("--json", default="", help="write results to this JSON file")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="intra-op / interpreter threads")
    parser.add_argument("--contaminated", type=float, default=0.2,
                        help="flag runs where other processes used more than this many cores")
    parser.add_argument("--compare-torch", action="store_true", help="time the same nets in PyTorch eager")
    parser.add_argument("--sizes", default="192x640,320x1024", help="inference sizes HxW")
    parser.add_argument("--workdir", default="", help="scratch directory (default: a temp dir)")
    parser.add_argument("--encoder", default="resnet", choices=ENCODERS,
                        help="depth encoder of the infer and train sections (ResNet depth 18)")
    parser.add_argument("--pose_encoder", default="resnet", choices=ENCODERS,
                        help="pose encoder of the train sections")
    parser.add_argument("--decoder_channels", default=",".join(map(str, DECODER_CHANNELS)),
                        help="depth decoder channels at scales 0..4 of the infer and size sections "
                             "(8,16,32,64,128: the phone-class decoder)")
    parser.add_argument("--also", action="append", default=[], metavar="ENCODER[:C0,C1,C2,C3,C4]",
                        help="infer: time this depth network too, in the same run, and give every row "
                             "its speedup over the first network's (repeatable; decoder channels "
                             "default to the paper's)")
    args = parser.parse_args(argv)

    def channels(text: str, flag: str) -> tuple[int, ...]:
        try:
            values = tuple(int(c) for c in text.split(","))
        except ValueError:
            values = ()
        if len(values) != 5:
            parser.error(f"{flag} must be 5 comma-separated integers, got {text!r}")
        return values

    args.decoder_channels = channels(args.decoder_channels, "--decoder_channels")
    also = []
    for item in args.also:
        encoder, _, text = item.partition(":")
        if encoder not in ENCODERS:
            parser.error(f"--also {item!r}: encoder must be one of {list(ENCODERS)}")
        also.append((encoder, channels(text, f"--also {item!r}") if text else DECODER_CHANNELS))
    args.also = also
    _load_sections()
    wanted = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="md2tf-bench-")
    results = {"machine": machine_info(), "command": " ".join(sys.argv), "sections": {}}
    for name in wanted:
        print(f"== {name}", flush=True)
        rows = SECTIONS[name](args)
        results["sections"][name] = rows
        for row in (r for r in rows if "median_s" in r):  # timed rows (size rows print themselves)
            flag = "  [CONTAMINATED]" if row.get("contaminated") else ""
            print(f"  {row['name']:<48} median {row['median_s'] * 1e3:9.1f} ms  "
                  f"(min {row['min_s'] * 1e3:.1f}, max {row['max_s'] * 1e3:.1f})  "
                  f"{row['items_per_s']:8.2f}/s{flag}"
                  + (f"  {row['speedup_vs_first_network']:.2f}x the first network"
                     if "speedup_vs_first_network" in row else ""), flush=True)
    results["peak_rss_mib"] = peak_rss_mib()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
