"""Subprocess runner for the training tests that need a fresh TensorFlow (logical CPUs, env vars,
signals, TF_CONFIG). Usage: ``python -m tests.training.run_case <case> <run_dir>``; prints one JSON line
prefixed ``RESULT `` on success.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def _weights(trainer) -> list:
    nets = [trainer.depth_net] + ([trainer.pose_net] if trainer.pose_net is not None else [])
    return [v.numpy() for n in nets for v in n.weights]


def _compare_states(a, b) -> dict:
    """Network weights and optimizer slots of two trainers: bitwise equality and the max difference."""
    import numpy as np

    wa, wb = _weights(a), _weights(b)
    opt_a = [v.numpy() for v in a.optimizer.variables]
    opt_b = [v.numpy() for v in b.optimizer.variables]
    return {
        "bitwise_equal": all(np.array_equal(x, y) for x, y in zip(wa, wb)),
        "optimizer_equal": all(np.array_equal(x, y) for x, y in zip(opt_a, opt_b)),
        "max_diff": max(float(np.max(np.abs(x - y))) for x, y in zip(wa, wb)),
    }


def case_mirrored(run_dir: str) -> dict:
    """One SGD(lr=1) step, default strategy vs MirroredStrategy over 2 logical CPUs, same batch."""
    from md2tf.training import distribute

    distribute.split_cpu(2)
    import keras
    import numpy as np
    import tensorflow as tf

    from md2tf.training.trainer import Trainer
    from tests.training import fakes

    def make(strategy, sub, init=None):
        cfg = fakes.tiny_config(os.path.join(run_dir, sub), batch_size=4, steps_per_epoch=1,
                                max_steps=1, validate_every_epoch=False, image_log_every=0)
        cfg = cfg.__class__(data=cfg.data, model=cfg.model, train=cfg.train,
                            loss=cfg.loss.__class__(identity_noise_std=0.0))
        t = Trainer(cfg, strategy=strategy, dataset_fn=fakes.fake_dataset_fn(8),
                    optimizer_fn=lambda lr: keras.optimizers.SGD(learning_rate=1.0))
        if init is not None:
            nets = [t.depth_net, t.pose_net]
            flat = [v for n in nets for v in n.weights]
            for v, value in zip(flat, init):
                v.assign(value)
        return t

    single = make(tf.distribute.get_strategy(), "single")
    init = _weights(single)
    single.train()
    mirrored_strategy = tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")])
    mirrored = make(mirrored_strategy, "mirrored", init)
    mirrored.train()
    a, b = _weights(single), _weights(mirrored)
    delta = max(float(np.max(np.abs(x - i))) for x, i in zip(a, init))
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))
    return {"replicas": mirrored_strategy.num_replicas_in_sync, "max_update": delta,
            "max_diff": diff, "num_weights": len(a)}


def case_resume(run_dir: str) -> dict:
    """4 steps straight vs 2 steps + a new Trainer resuming for 2 more (deterministic ops)."""
    import numpy as np

    from md2tf.training.trainer import Trainer
    from tests.training import fakes

    def make(sub, max_steps):
        cfg = fakes.tiny_config(os.path.join(run_dir, sub), steps_per_epoch=2, num_epochs=2,
                                max_steps=max_steps, deterministic=True, lr_decay_epochs=(1,),
                                image_log_every=0, validate_every_epoch=False, save_every_steps=0)
        return Trainer(cfg, dataset_fn=fakes.fake_dataset_fn(8))

    straight = make("straight", 0)
    r_straight = straight.train()
    first = make("resumed", 2)
    r_first = first.train()
    second = make("resumed", 0)
    r_second = second.train()
    a = _weights(straight)
    return {
        "steps": [r_straight.step, r_first.step, r_second.step],
        **_compare_states(straight, second),
        "changed": max(float(np.max(np.abs(x - y))) for x, y in zip(a, _weights(make("fresh", 0)))),
        "lr": float(second.optimizer.learning_rate.numpy()),
    }


def case_sigterm(run_dir: str) -> dict:
    """Trains 'forever'; prints ``STEP n`` after each step. The parent sends SIGTERM."""
    from md2tf.training.trainer import Trainer
    from tests.training import fakes

    cfg = fakes.tiny_config(run_dir, steps_per_epoch=10_000, save_every_steps=0, image_log_every=0)
    trainer = Trainer(cfg, dataset_fn=fakes.fake_dataset_fn(8, repeat=True))
    result = trainer.train(step_callback=lambda s, _: print(f"STEP {s}", flush=True))
    return {"reason": result.reason, "step": result.step, "checkpoint": result.checkpoint}


def case_sigterm_resume(run_dir: str) -> dict:
    """Uneven split (7 samples, batch 2: 3 batches) with --steps_per_epoch=5 (clamped to 3), 3 epochs:
    straight vs SIGTERM after step ``MD2TF_STOP_AT`` + a new Trainer resuming (deterministic ops)."""
    import signal

    from md2tf.training.trainer import Trainer
    from tests.training import fakes

    stop_at = int(os.environ["MD2TF_STOP_AT"])

    def make(sub):
        cfg = fakes.tiny_config(os.path.join(run_dir, sub), steps_per_epoch=5, num_epochs=3,
                                deterministic=True, lr_decay_epochs=(2,), image_log_every=0,
                                validate_every_epoch=False, save_every_steps=0)
        return Trainer(cfg, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(7))

    def terminate(step, _):
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)

    straight = make("straight")
    r_straight = straight.train()
    first = make("resumed")
    r_first = first.train(step_callback=terminate)
    second = make("resumed")
    r_second = second.train()
    return {
        "straight": [r_straight.step, r_straight.epoch, r_straight.reason],
        "first": [r_first.step, r_first.reason],
        "resumed": [r_second.step, r_second.epoch, r_second.reason],
        **_compare_states(straight, second),
    }


def case_multiworker(run_dir: str) -> dict:
    """2 steps of MultiWorkerMirroredStrategy (TF_CONFIG from the parent), stand-in networks."""
    from md2tf.training.trainer import Trainer
    from tests.training import fakes

    cfg = fakes.tiny_config(run_dir, steps_per_epoch=2, max_steps=2, strategy="multi_worker",
                            image_log_every=0, validate_every_epoch=False)
    trainer = Trainer(cfg, networks=fakes.tiny_networks, dataset_fn=fakes.fake_dataset_fn(8))
    result = trainer.train()
    return {"reason": result.reason, "step": result.step, "checkpoint": result.checkpoint,
            "replicas": trainer.num_replicas, "chief": trainer.is_chief,
            "loss": result.last_scalars.get("loss/total")}


if __name__ == "__main__":
    case, out_dir = sys.argv[1], sys.argv[2]
    result = globals()[f"case_{case}"](out_dir)
    print("RESULT " + json.dumps(result), flush=True)
