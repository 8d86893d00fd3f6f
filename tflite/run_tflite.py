#!/usr/bin/env python3
"""Run or benchmark an md2tf depth ``.tflite`` model with only NumPy, Pillow and ai-edge-litert.

This file is stand-alone: it never imports md2tf or TensorFlow, so it can be copied next to a model.

  python run_tflite.py depth_fp32.tflite --input photo.jpg --out out/         # depth for images
  python run_tflite.py depth_int8.tflite --benchmark --threads 2 --xnnpack both

Model contract (see README.md): input ``images`` uint8 RGB [1, H, W, 3] (normalisation inside);
outputs ``disparity`` (sigmoid, [1, H, W, 1]) and ``depth`` ([1, H, W, 1], metres when the embedded
metadata says ``depth_units: metres``).
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
# matplotlib "magma" anchor colours at 0, 1/8, ..., 1, interpolated to 256 entries.
_MAGMA = np.array([
    [0.001462, 0.000466, 0.013866], [0.078815, 0.054184, 0.211667], [0.232077, 0.059889, 0.437695],
    [0.390384, 0.100379, 0.501864], [0.550287, 0.161158, 0.505719], [0.716387, 0.214982, 0.475290],
    [0.868793, 0.287728, 0.409303], [0.967671, 0.439703, 0.359810], [0.987053, 0.991438, 0.749504]])


# --- minimal flatbuffer reader for the TFLite metadata table (no tflite-support, no TF) -----------
def _u32(b: bytes, pos: int) -> int:
    return struct.unpack_from("<I", b, pos)[0]


def _field(b: bytes, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
    vtable = table - struct.unpack_from("<i", b, table)[0]
    vsize = struct.unpack_from("<H", b, vtable)[0]
    if 4 + 2 * index >= vsize:
        return None
    off = struct.unpack_from("<H", b, vtable + 4 + 2 * index)[0]
    return table + off if off else None


def _vector(b: bytes, pos: int) -> tuple[int, int]:
    start = pos + _u32(b, pos)
    return start + 4, _u32(b, start)


def _tables(b: bytes, pos: int) -> list[int]:
    start, n = _vector(b, pos)
    return [start + 4 * i + _u32(b, start + 4 * i) for i in range(n)]


def read_metadata(content: bytes) -> dict[str, bytes]:
    """The model's metadata entries ``{name: bytes}`` (TFLite schema: Model.metadata = field 6)."""
    model = _u32(content, 0)
    meta_pos, buf_pos = _field(content, model, 6), _field(content, model, 4)
    if meta_pos is None or buf_pos is None:
        return {}
    buffers = _tables(content, buf_pos)
    out = {}
    for meta in _tables(content, meta_pos):
        name_pos, index_pos = _field(content, meta, 0), _field(content, meta, 1)
        if name_pos is None:
            continue
        s, n = _vector(content, name_pos)
        name = content[s:s + n].decode()
        buf = buffers[_u32(content, index_pos) if index_pos is not None else 0]
        data_pos = _field(content, buf, 0)
        if data_pos is not None:
            s, n = _vector(content, data_pos)
            out[name] = content[s:s + n]
        else:  # large models keep buffers after the flatbuffer (Buffer.offset / Buffer.size)
            off, size = _field(content, buf, 1), _field(content, buf, 2)
            if off is not None and size is not None:
                o, z = struct.unpack_from("<Q", content, off)[0], struct.unpack_from("<Q", content, size)[0]
                out[name] = content[o:o + z]
            else:
                out[name] = b""
    return out


def model_info(path: str) -> dict:
    """md2tf's embedded ModelInfo (height, width, depth range, metric_scale, units), or {}."""
    with open(path, "rb") as f:
        raw = read_metadata(f.read()).get("md2tf_model")
    return json.loads(raw) if raw else {}


# --- running ------------------------------------------------------------------------------------
def make_interpreter(path: str, threads: int | None, xnnpack: bool = True) -> Interpreter:
    resolver = (OpResolverType.AUTO if xnnpack
                else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    return interp


def input_size(interp: Interpreter) -> tuple[int, int]:
    shape = interp.get_signature_runner("serving_default").get_input_details()["images"]["shape"]
    return int(shape[1]), int(shape[2])


def load_image(path: str, height: int, width: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 RGB ``[1, height, width, 3]`` (EXIF-rotated, grey/RGBA converted) and the original (h, w)."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("RGBA", "LA", "P"):
            img = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", img.size, (0, 0, 0, 255)), img)
        img = img.convert("RGB")
        size = (img.height, img.width)
        img = img.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(img, np.uint8)[None], size


def colorize(disp: np.ndarray, percentile: float = 95.0) -> np.ndarray:
    """Magma colours of a ``[H, W]`` map: min -> dark, ``percentile``-th percentile -> bright."""
    lo, hi = float(disp.min()), float(np.percentile(disp, percentile))
    t = np.clip((disp - lo) / max(hi - lo, 1e-12), 0, 1)
    x = np.linspace(0, 1, 256)
    pos = np.linspace(0, 1, len(_MAGMA))
    table = np.stack([np.interp(x, pos, _MAGMA[:, c]) for c in range(3)], -1)
    return np.round(table[np.minimum(np.floor(t * 256), 255).astype(int)] * 255).astype(np.uint8)


def collect_files(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The image files of ``inputs`` (files, and folders' images sorted by name), each file once.

    Returns:
      ``(files, duplicates)``: ``duplicates`` lists ``(path, first path)`` for every input that names
      a file already listed (the same path twice, or a file and its folder), which is skipped.
    """
    listed = []
    for p in inputs:
        if os.path.isdir(p):
            listed += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(IMAGE_EXTENSIONS))
        else:
            listed.append(p)
    first: dict[str, str] = {}
    files, duplicates = [], []
    for path in listed:
        key = os.path.realpath(path)
        if key in first:
            duplicates.append((path, first[key]))
        else:
            first[key] = path
            files.append(path)
    return files, duplicates


def run_images(model: str, inputs: list[str], out_dir: str, threads: int | None) -> int:
    interp = make_interpreter(model, threads)
    runner = interp.get_signature_runner("serving_default")
    h, w = input_size(interp)
    os.makedirs(out_dir, exist_ok=True)
    files, duplicates = collect_files(inputs)
    for path, earlier in duplicates:
        print(f"skipping {path}: same file as {earlier}, processed once")
    failures = 0
    for path in files:
        try:
            image, (oh, ow) = load_image(path, h, w)
        except (OSError, SyntaxError, ValueError) as e:
            print(f"FAILED {path}: {e}", file=sys.stderr)
            failures += 1
            continue
        out = runner(images=image)
        name = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
        np.save(name + "_disparity.npy", out["disparity"][0, ..., 0])
        np.save(name + "_depth.npy", out["depth"][0, ..., 0])
        disp = Image.fromarray(out["disparity"][0, ..., 0].astype(np.float32), mode="F")
        disp = np.asarray(disp.resize((ow, oh), Image.Resampling.BILINEAR))
        Image.fromarray(colorize(disp)).save(name + "_disp.png")
        print(f"{path} -> {name}_disp.png")
    skipped = f", {len(duplicates)} duplicate(s) skipped" if duplicates else ""
    print(f"{len(files) - failures} image(s) done, {failures} failed{skipped}; outputs in {out_dir}")
    return 1 if failures else 0


def benchmark(model: str, threads: int, warmup: int, runs: int, xnnpack: bool) -> dict:
    """Latency of ``invoke`` on a fixed random image: median / p10 / p90 / mean in milliseconds."""
    interp = make_interpreter(model, threads, xnnpack)
    runner = interp.get_signature_runner("serving_default")
    h, w = input_size(interp)
    image = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    for _ in range(warmup):
        runner(images=image)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        runner(images=image)
        times.append((time.perf_counter() - t) * 1e3)
    times = np.asarray(times)
    return {"model": os.path.basename(model), "size_mb": os.path.getsize(model) / 1e6,
            "input": [1, h, w, 3], "threads": threads, "xnnpack": xnnpack, "warmup": warmup,
            "runs": runs, "median_ms": float(np.median(times)),
            "p10_ms": float(np.percentile(times, 10)), "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": float(times.mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help=".tflite depth model exported by md2tf")
    parser.add_argument("--input", nargs="*", default=[], help="image files or folders")
    parser.add_argument("--out", default="tflite_out", help="output directory for images")
    parser.add_argument("--benchmark", action="store_true", help="measure latency instead")
    parser.add_argument("--threads", type=int, default=2, help="interpreter threads")
    parser.add_argument("--warmup", type=int, default=5, help="benchmark warm-up invocations")
    parser.add_argument("--runs", type=int, default=30, help="benchmark timed invocations")
    parser.add_argument("--xnnpack", choices=("on", "off", "both"), default="on",
                        help="XNNPACK delegate (default on) for --benchmark")
    parser.add_argument("--json", default="", help="write benchmark results to this JSON file")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"model {args.model!r} does not exist")
    info = model_info(args.model)
    if info:
        print(f"model: {info.get('height')}x{info.get('width')} uint8 RGB in; depth units "
              f"{info.get('depth_units')} (metric_scale {info.get('metric_scale')})")
    if args.benchmark:
        modes = {"on": [True], "off": [False], "both": [True, False]}[args.xnnpack]
        results = [benchmark(args.model, args.threads, args.warmup, args.runs, x) for x in modes]
        for r in results:
            print(f"{r['model']}: xnnpack={'on' if r['xnnpack'] else 'off'} threads={r['threads']} "
                  f"median {r['median_ms']:.2f} ms (p10 {r['p10_ms']:.2f}, p90 {r['p90_ms']:.2f})")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        return 0
    if not args.input:
        parser.error("give --input images/folders, or --benchmark")
    return run_images(args.model, args.input, args.out, args.threads)


if __name__ == "__main__":
    sys.exit(main())
