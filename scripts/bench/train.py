"""``--only train`` / ``--only train_profile``: one Monodepth2 training step at 192x640.

``train``: the project's own step (`md2tf.training.Trainer.train_step`: depth + pose nets, full-res
4-scale loss, finite check, Adam) on a fixed synthetic `Batch` (no input pipeline, so only compute is
timed), scratch init. Cases are ``MODE:BATCH:COMPILE`` with MODE in M (frames 0, -1, +1), S (stereo
only, no pose net), MS, and COMPILE ``graph`` (``tf.function``) or ``xla`` (``--jit_compile``: the
replica's forward + backward compiled by XLA, Adam outside). Default cases: M at batch 2 and 4, graph
and XLA; override with ``MD2TF_BENCH_TRAIN="M:4:xla,S:4:graph,MS:4:graph:mixed_bfloat16"``. By default
``M:4:graph:mixed_bfloat16`` is added when the CPU has native bf16/fp16 arithmetic
(``avx512_bf16``/``amx_bf16``/``avx512_fp16`` flags).

``train_profile``: where the time of one M batch-4 step goes (graph and XLA): network forward,
network forward + backward, loss forward, loss forward + backward (w.r.t. the disparities and poses),
and the full step, each timed separately.

``--compare-torch`` adds the PyTorch eager M step (`md2tf.convert.torch_reference.MonoTrainStep`)
at the same batch sizes in the same run. Reference figures (official PyTorch code, this 2-core
machine): batch 4 5.3 s/step, batch 2 3.4 s/step.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile

import numpy as np

from bench.harness import measure, section

HEIGHT, WIDTH = 192, 640
REFERENCE_S_PER_STEP = {2: 3.4, 4: 5.3}  # official PyTorch, idle machine: batch -> s/step
DEFAULT_CASES = "M:2:graph,M:2:xla,M:4:graph,M:4:xla"
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


def _experiment(mode: str, batch: int, compile_mode: str, run_dir: str, precision: str = "float32"):
    from md2tf.config import DataConfig, ExperimentConfig, TrainConfig

    offsets, stereo = MODES[mode]
    return ExperimentConfig(
        data=DataConfig(height=HEIGHT, width=WIDTH, frame_offsets=offsets, use_stereo=stereo),
        train=TrainConfig(run_dir=run_dir, batch_size=batch, jit_compile=compile_mode == "xla",
                          mixed_precision=precision, strategy="default", progress_bar=False))


def _hardware_low_precision() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16", "avx512_fp16"))


def make_trainer_step(mode: str, batch: int, compile_mode: str, workdir: str,
                      precision: str = "float32"):
    """Builds a `Trainer` and returns ``(run_one_step, trainer)`` on a fixed synthetic batch."""
    import keras
    import tensorflow as tf

    from md2tf.training.trainer import Trainer

    config = _experiment(mode, batch, compile_mode, tempfile.mkdtemp(dir=workdir, prefix="run-"),
                         precision)
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
        if len(parts) not in (3, 4) or parts[0] not in MODES or parts[2] not in ("graph", "xla"):
            raise ValueError(f"MD2TF_BENCH_TRAIN item {item!r}: expected MODE:BATCH:graph|xla[:precision] "
                             f"with MODE in {sorted(MODES)}")
        cases.append((parts[0], int(parts[1]), parts[2], parts[3] if len(parts) == 4 else "float32"))
    if "MD2TF_BENCH_TRAIN" not in os.environ and _hardware_low_precision():
        cases.append(("M", 4, "graph", "mixed_bfloat16"))
    return cases


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


@section("train")
def train_section(args: argparse.Namespace) -> list[dict]:
    import gc
    import time

    rows = []
    warmup = max(1, min(args.warmup, 2))
    repeats = max(3, min(args.repeats, 5))
    for mode, batch, compile_mode, precision in _cases():
        name = f"train {mode} b{batch} {compile_mode}" + ("" if precision == "float32" else f" {precision}")
        print(f"  building {name} ...", flush=True)
        t0 = time.perf_counter()
        run, trainer = make_trainer_step(mode, batch, compile_mode, args.workdir, precision)
        run()  # trace + compile
        first = time.perf_counter() - t0
        timing = measure(name, run, warmup=warmup - 1, repeats=repeats, items_per_run=batch,
                         mode=mode, batch=batch, compile=compile_mode, precision=precision,
                         first_step_s=round(first, 1), rss_mib=round(_rss_mib(), 0),
                         peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0))
        row = timing.to_dict(args.contaminated)
        ref = REFERENCE_S_PER_STEP.get(batch) if mode == "M" else None
        if ref:
            row["speedup_vs_reference"] = round(ref / row["median_s"], 3)
        rows.append(row)
        print(f"    {row['median_s']:.2f} s/step (first step {first:.0f} s, others "
              f"{row['other_cpu_cores']:.2f} cores)", flush=True)
        del run, trainer
        gc.collect()
    if args.compare_torch:
        rows += _torch_rows(args, sorted({b for m, b, _, _ in _cases() if m == "M"}), warmup, repeats)
    return rows


def _torch_rows(args, batches, warmup, repeats) -> list[dict]:
    try:
        import torch

        from md2tf.convert.torch_reference import MonoTrainStep
    except ImportError as e:  # torch is optional
        print(f"  --compare-torch: PyTorch unavailable ({e})", flush=True)
        return []
    torch.set_num_threads(args.threads)
    rows = []
    for batch in batches:
        step = MonoTrainStep(batch, HEIGHT, WIDTH)
        row = measure(f"torch eager train M b{batch}", step, warmup=warmup, repeats=repeats,
                      items_per_run=batch, mode="M", batch=batch, compile="torch-eager",
                      torch=torch.__version__).to_dict(args.contaminated)
        rows.append(row)
        print(f"    torch b{batch}: {row['median_s']:.2f} s/step", flush=True)
    return rows


# --- where the time goes ---------------------------------------------------------------------------


def profile_fns(batch: int = 4, jit: bool = False, mode: str = "M"):
    """Separately compiled pieces of one training step: ``{name: fn}`` (each returns a scalar)."""
    import keras
    import tensorflow as tf

    from md2tf import models
    from md2tf.config import LossConfig, ModelConfig
    from md2tf.losses import monodepth2_loss
    from md2tf.training import step

    config = _experiment(mode, batch, "xla" if jit else "graph", "unused")
    depth_net, pose_net = models.build(ModelConfig(), use_pose_net=config.use_pose_net)
    variables = depth_net.trainable_variables + (pose_net.trainable_variables if pose_net else [])
    data = synthetic_batch(batch, HEIGHT, WIDTH, *MODES[mode])
    loss_config = LossConfig()
    seed = tf.constant([1, 2], tf.int32)
    optimizer = keras.optimizers.Adam(1e-4, epsilon=1e-8)
    optimizer.build(variables)

    def nets():
        disps = depth_net(data.target_aug, training=True)
        poses = step.source_from_target_poses(pose_net, data, config.data, True)
        return disps, poses

    def nets_fwd():
        disps, poses = nets()
        return tf.add_n([tf.reduce_sum(d) for d in disps]) + tf.reduce_sum(poses)

    def nets_fwd_bwd():
        with tf.GradientTape() as tape:
            loss = nets_fwd()
        grads = tape.gradient(loss, variables)
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads])

    fixed_disps, fixed_poses = nets()
    fixed_disps = [tf.constant(d.numpy()) for d in fixed_disps]
    fixed_poses = tf.constant(fixed_poses.numpy())

    def loss_fwd():
        return monodepth2_loss(fixed_disps, data.target, data.sources, fixed_poses, data.intrinsics,
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
            out = step.forward(depth_net, pose_net, data, config.data, loss_config, monodepth2_loss,
                               seed, True)
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
    rows = []
    for jit in (False, True):
        label = "xla" if jit else "graph"
        for name, fn in profile_fns(batch, jit).items():
            fn()  # trace / compile
            rows.append(measure(f"profile b{batch} {label}: {name}", fn, warmup=1,
                                repeats=max(3, min(args.repeats, 5)), items_per_run=batch,
                                compile=label, batch=batch).to_dict(args.contaminated))
            print(f"    {rows[-1]['name']}: {rows[-1]['median_s'] * 1e3:.0f} ms", flush=True)
    return rows
