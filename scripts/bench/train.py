"""``--only train`` / ``--only train_profile``: one Monodepth2 training step at 192x640.

``train``: the project's own step (`md2tf.training.Trainer.train_step`: depth + pose nets, full-res
4-scale loss, finite check, Adam) on a fixed synthetic `Batch` (no input pipeline, so only compute is
timed), scratch init. Cases are ``MODE:BATCH:COMPILE[:PRECISION]`` with MODE in M (frames 0, -1, +1),
S (stereo only, no pose net), MS, and COMPILE ``graph`` (``tf.function``), ``xlaloss`` (graph step,
the loss compiled by XLA: ``--jit_compile_loss``) or ``xla`` (``--jit_compile``: the replica's forward +
backward compiled by XLA, Adam outside). Default cases: M at batch 4 in graph and xlaloss, plus
xlaloss with ``mixed_bfloat16`` when the CPU has native bf16/fp16 arithmetic
(``avx512_bf16``/``amx_bf16``/``avx512_fp16`` flags); override with
``MD2TF_BENCH_TRAIN="M:4:xla,S:4:graph,MS:4:graph:mixed_bfloat16"``.
The networks are ResNet18 (the paper's) unless ``--encoder`` / ``--pose_encoder`` name others.

All cases are built first and then timed **interleaved** (one step of each case per round, ``--warmup``
untimed rounds, ``--repeats`` timed rounds), together with the machine's measured matmul peak
(``tf.linalg.matmul`` of two 4096 x 4096 float32 matrices, 2 n^3 FLOP; bfloat16 too for bf16 cases),
so that ratios between the rows hold under the load of a shared machine. Each row reports s/step,
samples/s, the step's peak RSS (``VmHWM`` after resetting it before the step, ``/proc/self/clear_refs``)
and what the step allocates on top of the RSS before it, and the fraction of the measured peak:
``3 x`` the networks' forward FLOPs (TF profiler; backward = gradients w.r.t. inputs and weights, each
about one forward) per step time. The loss's FLOPs (a few GFLOP) are not counted.

``train_profile``: where the time of one M step goes: network forward, network forward + backward,
loss forward, loss forward + backward (w.r.t. the disparities and poses), and the full step, each
compiled and timed separately (one piece after the other, not interleaved), in graph, graph with the
XLA loss and XLA (``MD2TF_BENCH_PROFILE_MODES=graph,xlaloss`` picks some, ``graph:mixed_bfloat16``
with bf16 networks; batch ``MD2TF_BENCH_PROFILE_BATCH``, default 4).

``--compare-torch`` adds the PyTorch eager M step (`md2tf.convert.torch_reference.MonoTrainStep`, our
own reimplementation from the paper): to the interleaved rounds of ``train`` at the same batch sizes,
and to ``train_profile`` as two pieces, the networks' forward + backward and the full step.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from bench.harness import (
    PEAK_N,
    Timing,
    _own_cpu_seconds,
    _system_busy_seconds,
    matmul_fn,
    measure,
    section,
)

HEIGHT, WIDTH = 192, 640
DEFAULT_CASES = "M:4:graph,M:4:xlaloss"
COMPILE_MODES = ("graph", "xlaloss", "xla")
MODES = {"M": ((0, -1, 1), False), "S": ((0,), True), "MS": ((0, -1, 1), True)}


def synthetic_batch(batch: int, height: int, width: int, offsets: tuple[int, ...], stereo: bool,
                    seed: int = 0):
    """A fixed `Batch` of smooth random images (pyramids by 2x2 average pooling), paper intrinsics."""
    import tensorflow as tf

    from md2tf.data.batch import Batch

    rng = np.random.default_rng(seed)
    num_sources = len([o for o in offsets if o != 0]) + int(stereo)
    coarse = rng.uniform(0, 1, size=(batch * (1 + num_sources), height // 8, width // 8, 3))
    frames = tf.image.resize(coarse.astype(np.float32), (height, width), "bilinear")
    frames = tf.reshape(frames, [batch, 1 + num_sources, height, width, 3])
    target = [frames[:, 0]]
    sources = [frames[:, 1:]]
    for _ in range(3):
        target.append(tf.nn.avg_pool2d(target[-1], 2, 2, "VALID"))
        s = sources[-1]
        h, w = s.shape[2] // 2, s.shape[3] // 2
        sources.append(tf.reshape(tf.nn.avg_pool2d(tf.reshape(s, [-1, 2 * h, 2 * w, 3]), 2, 2, "VALID"),
                                  [batch, num_sources, h, w, 3]))
    k = np.array([[0.58 * width, 0, 0.5 * width], [0, 1.92 * height, 0.5 * height], [0, 0, 1]],
                 np.float32)
    stereo_t = np.eye(4, dtype=np.float32)
    stereo_t[0, 3] = 0.1
    return Batch(
        target=tuple(target), sources=tuple(sources), target_aug=target[0], sources_aug=sources[0],
        intrinsics=tf.constant(np.tile(k, (batch, 1, 1))),
        stereo_source_from_target=tf.constant(np.tile(stereo_t, (batch, 1, 1))),
        depth_gt=tf.zeros([batch, 8, 8, 1]))


def _experiment(mode: str, batch: int, compile_mode: str, run_dir: str, precision: str = "float32",
                encoders: tuple[str, str] = ("resnet", "resnet")):
    from md2tf.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig

    offsets, stereo = MODES[mode]
    return ExperimentConfig(
        data=DataConfig(height=HEIGHT, width=WIDTH, frame_offsets=offsets, use_stereo=stereo),
        model=ModelConfig(encoder=encoders[0], pose_encoder=encoders[1]),
        train=TrainConfig(run_dir=run_dir, batch_size=batch, jit_compile=compile_mode == "xla",
                          jit_compile_loss=compile_mode == "xlaloss", mixed_precision=precision,
                          strategy="default", progress_bar=False))


def _hardware_low_precision() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", "avx512_fp16"))


def make_trainer_step(mode: str, batch: int, compile_mode: str, workdir: str,
                      precision: str = "float32", encoders: tuple[str, str] = ("resnet", "resnet")):
    """Builds a `Trainer` and returns ``(run_one_step, trainer)`` on a fixed synthetic batch.

    ``encoders``: ``(--encoder, --pose_encoder)``.
    """
    import keras
    import tensorflow as tf

    from md2tf.training.trainer import Trainer

    config = _experiment(mode, batch, compile_mode, tempfile.mkdtemp(dir=workdir, prefix="run-"),
                         precision, encoders)
    trainer = Trainer(config)
    data = synthetic_batch(batch, HEIGHT, WIDTH, *MODES[mode])
    iterator = iter(tf.data.Dataset.from_tensors(data).repeat())
    stop = tf.constant(0.0)  # the trainer's per-worker stop flag (1.0 = stop requested)

    def run():
        scalars, applied, _ = trainer.train_step(iterator, stop)
        return float(scalars["loss/total"])  # blocks until the step is done

    keras.mixed_precision.set_global_policy("float32")  # Trainer sets it globally
    return run, trainer


def _cases() -> list[tuple[str, int, str, str]]:
    spec = os.environ.get("MD2TF_BENCH_TRAIN", DEFAULT_CASES)
    cases = []
    for item in spec.split(","):
        parts = item.strip().split(":")
        if len(parts) not in (3, 4) or parts[0] not in MODES or parts[2] not in COMPILE_MODES:
            raise ValueError(f"MD2TF_BENCH_TRAIN item {item!r}: expected MODE:BATCH:COMPILE[:precision] "
                             f"with MODE in {sorted(MODES)} and COMPILE in {COMPILE_MODES}")
        cases.append((parts[0], int(parts[1]), parts[2], parts[3] if len(parts) == 4 else "float32"))
    if "MD2TF_BENCH_TRAIN" not in os.environ and _hardware_low_precision():
        cases.append(("M", 4, "xlaloss", "mixed_bfloat16"))
    return cases


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def _reset_peak_rss() -> bool:
    """Resets this process's ``VmHWM`` to its current RSS (Linux); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def net_flops(mode: str, batch: int, encoders: tuple[str, str] = ("resnet", "resnet")) -> int:
    """Forward FLOPs of the networks in one step: depth net on the target, pose net on every pair."""
    import tensorflow as tf

    from bench.infer import count_flops
    from md2tf import models
    from md2tf.config import ModelConfig

    offsets, _ = MODES[mode]
    pairs = len([o for o in offsets if o != 0])
    depth_net, pose_net = models.build(ModelConfig(encoder=encoders[0], pose_encoder=encoders[1]),
                                       use_pose_net=pairs > 0)
    total = count_flops(tf.function(lambda x: depth_net(x, training=True)).get_concrete_function(
        tf.TensorSpec([batch, HEIGHT, WIDTH, 3], tf.float32)))
    if pairs:
        total += pairs * count_flops(tf.function(lambda x: pose_net(x, training=True)).get_concrete_function(
            tf.TensorSpec([batch, HEIGHT, WIDTH, 6], tf.float32)))
    return total


@section("train")
def train_section(args: argparse.Namespace) -> list[dict]:
    import time

    cases = _cases()
    encoders = (args.encoder, args.pose_encoder)
    warmup = max(1, args.warmup)
    repeats = max(3, args.repeats)
    runners: dict[str, tuple] = {}  # name -> (fn, items per run, row extras)
    for mode, batch, compile_mode, precision in cases:
        name = f"train {mode} b{batch} {compile_mode}" + ("" if precision == "float32" else f" {precision}")
        print(f"  building {name} ...", flush=True)
        t0 = time.perf_counter()
        run, _ = make_trainer_step(mode, batch, compile_mode, args.workdir, precision, encoders)
        run()  # trace + compile
        runners[name] = (run, batch, dict(mode=mode, batch=batch, compile=compile_mode, precision=precision,
                                          encoder=encoders[0], pose_encoder=encoders[1],
                                          first_step_s=round(time.perf_counter() - t0, 1)))
    flops = {(m, b): net_flops(m, b, encoders) for m, b, _, _ in cases}
    peaks = ["float32"] + (["bfloat16"] if any(c[3] == "mixed_bfloat16" for c in cases) else [])
    for dtype in peaks:
        runners[f"peak matmul {dtype} {PEAK_N}"] = (matmul_fn(dtype), 2 * PEAK_N**3 / 1e9,
                                                     dict(compile="matmul", precision=dtype))
    if args.compare_torch and encoders == ("resnet", "resnet"):  # the reference is ResNet18 only
        runners.update(_torch_runners(args, sorted({b for m, b, _, _ in cases if m == "M"})))

    times = {name: [] for name in runners}
    step_peak = {name: [] for name in runners}
    step_extra = {name: [] for name in runners}
    can_reset = _reset_peak_rss()
    busy0 = _system_busy_seconds()
    own0, wall0 = _own_cpu_seconds(), time.perf_counter()
    for r in range(warmup + repeats):
        for name, (fn, _, _) in runners.items():
            before = _status_mib("VmRSS")
            _reset_peak_rss()
            t0 = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(elapsed)
                step_peak[name].append(_status_mib("VmHWM"))
                step_extra[name].append(_status_mib("VmHWM") - before)
        print(f"    round {r + 1}/{warmup + repeats} done", flush=True)
    wall = time.perf_counter() - wall0
    others = max(0.0, (_system_busy_seconds() - busy0) - (_own_cpu_seconds() - own0)) / max(wall, 1e-9)

    rows = []
    for name, (_, items, extra) in runners.items():
        row = Timing(name, times[name], others, items, dict(extra)).to_dict(args.contaminated)
        if can_reset:
            row["step_peak_rss_mib"] = round(max(step_peak[name]), 0)
            row["step_extra_mib"] = round(max(step_extra[name]), 0)
        rows.append(row)
    peak = {dtype: next(r["items_per_s"] for r in rows if r["name"] == f"peak matmul {dtype} {PEAK_N}")
            for dtype in peaks}  # GFLOP/s
    for row in rows:
        if row.get("compile") in COMPILE_MODES + ("torch-eager",):
            gflop = 3 * flops.get((row["mode"], row["batch"]), 0) / 1e9
            if gflop:
                row["train_gflop"] = round(gflop, 1)
                row["gflops_per_s"] = round(gflop / row["median_s"], 1)
                row["fraction_of_fp32_peak"] = round(row["gflops_per_s"] / peak["float32"], 3)
                if row.get("precision") == "mixed_bfloat16":
                    row["fraction_of_bf16_peak"] = round(row["gflops_per_s"] / peak["bfloat16"], 3)
    torch_rows = {r["batch"]: r for r in rows if r.get("compile") == "torch-eager"}
    for row in rows:
        ref = torch_rows.get(row.get("batch")) if row.get("compile") in COMPILE_MODES else None
        if ref and row["mode"] == "M":
            row["speedup_vs_torch_reference"] = round(ref["median_s"] / row["median_s"], 3)
    return rows


def _torch_runners(args, batches) -> dict:
    try:
        import torch

        from md2tf.convert.torch_reference import MonoTrainStep
    except ImportError as e:  # torch is optional
        print(f"  --compare-torch: PyTorch unavailable ({e})", flush=True)
        return {}
    torch.set_num_threads(args.threads)
    return {f"torch eager train M b{batch}": (MonoTrainStep(batch, HEIGHT, WIDTH), batch,
                                               dict(mode="M", batch=batch, compile="torch-eager",
                                                    precision="float32", torch=torch.__version__))
            for batch in batches}


# --- where the time goes ---------------------------------------------------------------------------


def profile_fns(batch: int = 4, jit: bool = False, mode: str = "M", loss_jit: bool = False,
                encoders: tuple[str, str] = ("resnet", "resnet"), precision: str = "float32"):
    """Separately compiled pieces of one training step: ``{name: fn}`` (each returns a scalar).

    ``jit`` compiles every piece with XLA; ``loss_jit`` only the loss (`md2tf.losses.xla_loss`);
    ``encoders`` = ``(--encoder, --pose_encoder)``; ``precision``: the networks' Keras dtype policy
    (``mixed_bfloat16``: bf16 compute, float32 variables; the loss sees float32 outputs, as in
    `md2tf.training.step.forward`).
    """
    import keras
    import tensorflow as tf

    from md2tf import models
    from md2tf.config import LossConfig
    from md2tf.losses import monodepth2_loss, xla_loss
    from md2tf.training import step

    config = _experiment(mode, batch, "xla" if jit else "graph", "unused", encoders=encoders)
    keras.mixed_precision.set_global_policy(precision)
    try:
        depth_net, pose_net = models.build(config.model, use_pose_net=config.use_pose_net)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    variables = depth_net.trainable_variables + (pose_net.trainable_variables if pose_net else [])
    data = synthetic_batch(batch, HEIGHT, WIDTH, *MODES[mode])
    loss_config = LossConfig()
    seed = tf.constant([1, 2], tf.int32)
    optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-8)
    optimizer.build(variables)
    loss_fn = xla_loss() if loss_jit else monodepth2_loss

    def nets():
        disps = depth_net(data.target_aug, training=True)
        poses = step.source_from_target_poses(pose_net, data, config.data, True)
        return disps, poses

    def nets_fwd():
        disps, poses = nets()
        return tf.add_n([tf.reduce_sum(tf.cast(d, tf.float32)) for d in disps]) + tf.reduce_sum(poses)

    def nets_fwd_bwd():
        with tf.GradientTape() as tape:
            loss = nets_fwd()
        grads = tape.gradient(loss, variables)
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads])

    fixed_disps, fixed_poses = nets()
    fixed_disps = [tf.constant(tf.cast(d, tf.float32).numpy()) for d in fixed_disps]
    fixed_poses = tf.constant(fixed_poses.numpy())

    def loss_fwd():
        return loss_fn(fixed_disps, data.target, data.sources, fixed_poses, data.intrinsics,
                               loss_config, noise_seed=seed,
                               disp_to_depth=depth_net.disp_to_depth).total

    def loss_fwd_bwd():
        with tf.GradientTape() as tape:
            tape.watch(fixed_disps)
            tape.watch(fixed_poses)
            loss = loss_fwd()
        grads = tape.gradient(loss, fixed_disps + [fixed_poses])
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads])

    def full_fwd_bwd():
        with tf.GradientTape() as tape:
            out = step.forward(depth_net, pose_net, data, config.data, loss_config, loss_fn, seed, True)
        grads = tape.gradient(out.losses.total, variables)
        return out.losses.total, grads

    compiled_full = tf.function(full_fwd_bwd, jit_compile=jit)

    @tf.function
    def full_step():
        loss, grads = compiled_full()
        optimizer.apply(grads, variables)
        return loss

    fns = {name: tf.function(fn, jit_compile=jit) for name, fn in
           [("nets fwd", nets_fwd), ("nets fwd+bwd", nets_fwd_bwd), ("loss fwd", loss_fwd),
            ("loss fwd+bwd", loss_fwd_bwd)]}
    fns["full step (fwd+bwd+adam)"] = full_step
    return {k: (lambda f=f: float(f())) for k, f in fns.items()}


@section("train_profile")
def train_profile_section(args: argparse.Namespace) -> list[dict]:
    batch = int(os.environ.get("MD2TF_BENCH_PROFILE_BATCH", "4"))
    labels = [m.strip() for m in os.environ.get("MD2TF_BENCH_PROFILE_MODES", "graph,xlaloss,xla").split(",")]
    unknown = sorted({m.split(":")[0] for m in labels} - {"graph", "xlaloss", "xla"}
                     | {m.split(":")[1] for m in labels if ":" in m} - {"float32", "mixed_bfloat16"})
    if unknown:
        raise ValueError(f"MD2TF_BENCH_PROFILE_MODES: unknown {unknown}; use graph, xlaloss, xla, each with "
                         "an optional :mixed_bfloat16")
    rows = []

    def time_piece(label: str, name: str, fn) -> None:
        fn()  # trace / compile / first allocation
        rows.append(measure(f"profile b{batch} {label}: {name}", fn, warmup=1,
                            repeats=max(3, min(args.repeats, 5)), items_per_run=batch,
                            compile=label, batch=batch).to_dict(args.contaminated))
        print(f"    {rows[-1]['name']}: {rows[-1]['median_s'] * 1e3:.0f} ms", flush=True)

    for label in labels:
        compile_mode, _, precision = label.partition(":")
        for name, fn in profile_fns(batch, compile_mode == "xla", loss_jit=compile_mode == "xlaloss",
                                    encoders=(args.encoder, args.pose_encoder),
                                    precision=precision or "float32").items():
            time_piece(label, name, fn)
    if args.compare_torch and args.encoder == "resnet":  # the same split for PyTorch, in the same run
        for train_step, _, _ in _torch_runners(args, [batch]).values():
            time_piece("torch-eager", "nets fwd+bwd", train_step.nets_fwd_bwd)
            time_piece("torch-eager", "full step (fwd+bwd+adam)", train_step)
    return rows
