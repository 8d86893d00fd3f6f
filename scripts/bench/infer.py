"""``--only infer``: depth-network inference latency per backend, sizes, FLOPs and fraction of peak.

For every ``--sizes`` entry (default 192x640 and 320x1024) a scratch-initialised `DepthNet` (ResNet18,
or ``--encoder``'s) is wrapped in the deployed graph (`md2tf.deploy.inference.DepthPredictor`: uint8 in, disparity
and depth out) and timed at batch 1 as:

* ``keras graph`` (``tf.function``) and ``keras xla`` (``jit_compile=True``),
* ``saved_model`` (`md2tf.deploy.saved_model.export_saved_model`, its ``serving_default`` signature),
* TFLite ``fp32`` / ``fp16`` / ``dynamic`` / ``int8`` (`md2tf.deploy.tflite.convert`, builtins only),
  each with 1 and 2 interpreter threads (XNNPACK), plus file size and the depth error vs Keras
  (``abs_rel_vs_keras`` = mean |d - d_keras| / d_keras on structured test frames; random weights, so
  it measures quantisation noise, not accuracy on a dataset). Every variant is converted the way
  ``md2tf.export`` does it: from `md2tf.deploy.formats.tflite_saved_model` (the depth network's
  XNNPACK-layout clone). ``tflite_fp32_as_trained`` and ``tflite_int8_as_trained`` (only when named
  in ``MD2TF_BENCH_INFER``) convert the network as trained instead (MIRROR_PAD and
  RESIZE_NEAREST_NEIGHBOR outside XNNPACK), for A/B.

Environment: ``MD2TF_BENCH_INFER`` = comma-separated backends to time (``keras``, ``saved_model``,
``tflite_fp32``, ..., ``tflite_*_as_trained``; default all but the ``_as_trained`` ones);
``MD2TF_BENCH_TFLITE_THREADS`` = interpreter thread counts (default ``1,2``).

FLOPs are counted from the Keras graph by the TF profiler (``float_operation``: 2 per multiply-add);
for float backends
``fraction_of_peak`` = FLOPs / median time / the fp32 matmul peak measured in the same run (a
``PEAK_N``-square matmul at ``--threads`` threads: the ``peak matmul float32`` row), times
``threads / --threads`` for rows with fewer threads. ``--compare-torch`` adds the PyTorch eager depth net
(`md2tf.convert.torch_reference.DepthNet`, eval, ``no_grad``; ResNet18 only) at the same size, and
every row of that size gets ``speedup_vs_torch`` = torch time / its time: ratios are only ever taken
within one run, because the CPU changes from machine to machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile

import numpy as np

from bench.harness import PEAK_N, matmul_fn, measure, section
from md2tf.config import DECODER_CHANNELS

TFLITE_THREADS = (1, 2)
AS_TRAINED_SUFFIX = "_as_trained"  # opt-in A/B rows: the network as trained, without the layout clone
AS_TRAINED = ("tflite_fp32" + AS_TRAINED_SUFFIX, "tflite_int8" + AS_TRAINED_SUFFIX)


def count_flops(concrete_fn) -> int:
    """Floating-point operations of one call of a concrete function (TF profiler, static shapes)."""
    import tensorflow as tf

    graph = concrete_fn.graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph, options=opts)
    return int(info.total_float_ops)


def _sizes(args: argparse.Namespace) -> list[tuple[int, int]]:
    out = []
    for item in args.sizes.split(","):
        try:
            h, w = (int(v) for v in item.lower().split("x"))
        except ValueError as e:
            raise ValueError(f"--sizes item {item!r}: expected HxW, e.g. 192x640") from e
        out.append((h, w))
    return out


def _row(timing, args, h, w, flops, peak_flops: float, threads: int | None = None, **extra) -> dict:
    """One result row; ``peak_flops``: the fp32 matmul peak measured at ``args.threads`` threads."""
    threads = threads or args.threads
    row = timing.to_dict(args.contaminated)
    row.update(height=h, width=w, threads=threads, encoder=args.encoder,
               decoder_channels=list(args.decoder_channels), **extra)
    if flops and extra.get("backend") not in ("tflite_dynamic", "tflite_int8",
                                                AS_TRAINED[1]):  # fp32 peak only
        # Fewer threads than the peak's can reach at most that share of it.
        peak = peak_flops * min(threads, args.threads) / args.threads
        row["gflops"] = round(flops / 1e9, 2)
        row["fraction_of_peak"] = round(flops / row["median_s"] / peak, 3)
    return row


def _add_torch_ratios(rows: list[dict]) -> None:
    """``speedup_vs_torch`` on every row of a size that has a ``torch-eager`` row (same run)."""
    key = lambda r: (r.get("height"), r.get("width"), r.get("encoder"), tuple(r.get("decoder_channels", ())))  # noqa: E731
    torch_s = {key(r): r["median_s"] for r in rows if r.get("backend") == "torch-eager"}
    for row in rows:
        ref = torch_s.get(key(row))  # the same network's PyTorch row
        if ref and row.get("backend") != "torch-eager":
            row["speedup_vs_torch"] = round(ref / row["median_s"], 3)


def _add_network_ratios(rows: list[dict], networks: list) -> None:
    """With ``--also``: ``speedup_vs_first_network`` on every row of another network, against the first
    network's row of the same backend, threads and size (same run)."""
    if len(networks) < 2:
        return
    first_encoder, first_channels = networks[0][0], list(networks[0][1])
    key = lambda r: (r.get("backend"), r.get("threads"), r.get("height"), r.get("width"))  # noqa: E731
    first = {key(r): r["median_s"] for r in rows
             if r.get("encoder") == first_encoder and r.get("decoder_channels") == first_channels}
    for row in rows:
        ref = first.get(key(row))
        if ref and "encoder" in row and (row["encoder"], row["decoder_channels"]) != (first_encoder, first_channels):
            row["speedup_vs_first_network"] = round(ref / row["median_s"], 3)


def _depth_error(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean(np.abs(out - ref) / np.maximum(ref, 1e-6)))


@section("infer")
def infer_section(args: argparse.Namespace) -> list[dict]:
    import tensorflow as tf

    from md2tf import models
    from md2tf.config import ModelConfig
    from md2tf.deploy import formats, tflite
    from md2tf.deploy.images import structured_images
    from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
    from md2tf.deploy.saved_model import export_saved_model

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    rows: list[dict] = []
    only = os.environ.get("MD2TF_BENCH_INFER", "")  # e.g. "keras,tflite_fp32" to time a subset
    wanted = set(only.split(",")) if only else None
    threads_env = os.environ.get("MD2TF_BENCH_TFLITE_THREADS", "")
    tflite_threads = tuple(int(t) for t in threads_env.split(",")) if threads_env else TFLITE_THREADS
    kw = dict(warmup=args.warmup, repeats=args.repeats)
    rows.append(measure(f"peak matmul float32 {PEAK_N}", matmul_fn("float32"),
                        items_per_run=2 * PEAK_N**3 / 1e9, **kw).to_dict(args.contaminated))
    peak_flops = rows[0]["items_per_s"] * 1e9
    networks = [(args.encoder, args.decoder_channels), *getattr(args, "also", [])]
    per_network = [argparse.Namespace(**{**vars(args), "encoder": e, "decoder_channels": c}) for e, c in networks]
    for (h, w), net in itertools.product(_sizes(args), per_network):  # net: args for this network
        channels_text = ",".join(map(str, net.decoder_channels))
        label = f"{net.encoder}:{channels_text} " if len(networks) > 1 else ""
        print(f"  {h}x{w}: building the depth net {label}...", flush=True)
        depth_net, _ = models.build(ModelConfig(encoder=net.encoder,
                                                decoder_channels=net.decoder_channels),
                                    use_pose_net=False)
        info = ModelInfo(height=h, width=w, encoder=net.encoder,
                         decoder_channels=net.decoder_channels)
        predictor = DepthPredictor(depth_net, info)
        images = np.stack(structured_images(3, h, w, seed=7))
        one = images[:1]
        graph_fn = tf.function(lambda x, p=predictor: p(x)["depth"])
        flops = count_flops(graph_fn.get_concrete_function(tf.TensorSpec([1, h, w, 3], tf.uint8)))
        ref = np.concatenate([graph_fn(images[i:i + 1]).numpy() for i in range(len(images))])

        def keep(name: str) -> bool:
            return wanted is None or name in wanted

        if keep("keras"):
            rows.append(_row(measure(f"{label}keras graph {h}x{w}", lambda f=graph_fn, x=one: f(x).numpy(), **kw),
                             net, h, w, flops, peak_flops, backend="keras-graph"))
            xla_fn = tf.function(lambda x, p=predictor: p(x)["depth"], jit_compile=True)
            rows.append(_row(measure(f"{label}keras xla {h}x{w}", lambda f=xla_fn, x=one: f(x).numpy(), **kw),
                             net, h, w, flops, peak_flops, backend="keras-xla"))
        sm_dir = os.path.join(net.workdir, f"saved_model_{h}x{w}_{net.encoder}_{channels_text.replace(',', '_')}")
        if not os.path.exists(os.path.join(sm_dir, "saved_model.pb")):
            export_saved_model(predictor, info, sm_dir)
        if keep("saved_model"):
            serve = tf.saved_model.load(sm_dir).signatures["serving_default"]
            one_t = tf.constant(one)
            rows.append(_row(measure(f"{label}saved_model {h}x{w}",
                                     lambda f=serve, x=one_t: f(images=x)["depth"].numpy(), **kw),
                             net, h, w, flops, peak_flops, backend="saved_model"))
        variants = [name for name, f in formats.FORMATS.items() if f.tflite is not None]
        variants += [v for v in AS_TRAINED if wanted is not None and v in wanted]
        clone_dir = None
        for variant in variants:
            if not keep(variant):
                continue
            base = variant.removesuffix(AS_TRAINED_SUFFIX)
            reps = None
            if base == "tflite_int8":
                calib = structured_images(8, h, w, seed=1)
                reps = lambda calib=calib: iter(calib)  # noqa: E731
            if variant in AS_TRAINED:
                source_dir = sm_dir
            else:  # what md2tf.export writes: one layout clone for every variant
                if clone_dir is None:
                    work = tempfile.mkdtemp(prefix=f"tflite_{h}x{w}_", dir=net.workdir)
                    clone_dir, _ = formats.tflite_saved_model(KerasPredictor(predictor, info), sm_dir,
                                                               work)
                source_dir = clone_dir
            print(f"  {h}x{w}: converting {variant} ...", flush=True)
            content = tflite.convert(source_dir, formats.FORMATS[base].tflite, reps)
            out = tflite.run(tflite.make_interpreter(content, num_threads=net.threads), images)["depth"]
            err = _depth_error(out, ref)
            for threads in tflite_threads:
                runner = tflite.make_interpreter(content, num_threads=threads).get_signature_runner(
                    "serving_default")
                timing = measure(f"{label}{variant} {threads}t {h}x{w}", lambda r=runner, x=one: r(images=x), **kw)
                rows.append(_row(timing, net, h, w, flops, peak_flops, backend=variant, threads=threads,
                                 size_mb=round(len(content) / 2**20, 2), abs_rel_vs_keras=round(err, 5)))
        if net.compare_torch and net.encoder == "resnet" and net.decoder_channels == DECODER_CHANNELS:
            rows += _torch_rows(net, h, w, flops, peak_flops, kw)
    _add_torch_ratios(rows)
    _add_network_ratios(rows, networks)
    return rows


def _torch_rows(args, h, w, flops, peak_flops, kw) -> list[dict]:
    try:
        import torch

        from md2tf.convert.torch_reference import DepthNet
    except ImportError as e:  # torch is optional
        print(f"  --compare-torch: PyTorch unavailable ({e})", flush=True)
        return []
    torch.set_num_threads(args.threads)
    net = DepthNet().eval()
    x = torch.rand(1, 3, h, w)

    def run():
        with torch.no_grad():
            return net(x)

    timing = measure(f"torch eager {h}x{w}", run, **kw)
    return [_row(timing, args, h, w, flops, peak_flops, backend="torch-eager", torch=torch.__version__)]
