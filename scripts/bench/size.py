"""``--only size``: parameters and forward FLOPs of the depth and pose networks of every encoder.

Nothing is timed (the numbers do not depend on the machine's load). For each ``--sizes`` entry and
each `md2tf.config.ENCODERS` name, with ``--decoder_channels``, the networks `md2tf.models.build`
makes (scratch-initialised, 4 decoder scales): parameters (trainable weights + BatchNorm moving
statistics) and the TF profiler's float operations of one inference forward at batch 1 (``float_operation``, 2 per
multiply-add; `bench.infer.count_flops`). The depth network is counted inside the exported graph
(`md2tf.deploy.inference.DepthPredictor`: uint8 in, depth out), as ``--only infer`` reports its
``gflops`` (and its encoder alone); the pose network on one 6-channel pair.
"""

from __future__ import annotations

import argparse

from bench.harness import section


@section("size")
def size_section(args: argparse.Namespace) -> list[dict]:
    import tensorflow as tf

    from bench.infer import _sizes, count_flops
    from md2tf import models
    from md2tf.config import ENCODERS, ModelConfig
    from md2tf.deploy.inference import DepthPredictor, ModelInfo

    rows = []
    for h, w in _sizes(args):
        for encoder in ENCODERS:
            depth_net, pose_net = models.build(ModelConfig(encoder=encoder, pose_encoder=encoder,
                                                           decoder_channels=args.decoder_channels))
            predictor = DepthPredictor(depth_net, ModelInfo(h, w, encoder=encoder,
                                                            decoder_channels=args.decoder_channels))
            depth_fn = tf.function(lambda x, p=predictor: p(x)["depth"])
            encoder_fn = tf.function(lambda x, n=depth_net: n.encoder(x, training=False))
            pose_fn = tf.function(lambda x, n=pose_net: n(x, training=False))
            row = {
                "name": f"size {encoder} {h}x{w}", "encoder": encoder, "height": h, "width": w,
                "decoder_channels": list(args.decoder_channels),
                "depth_params": depth_net.count_params(),
                "depth_encoder_params": depth_net.encoder.count_params(),
                "depth_gflops": round(count_flops(depth_fn.get_concrete_function(
                    tf.TensorSpec([1, h, w, 3], tf.uint8))) / 1e9, 3),
                "depth_encoder_gflops": round(count_flops(encoder_fn.get_concrete_function(
                    tf.TensorSpec([1, h, w, 3], tf.float32))) / 1e9, 3),
                "pose_params": pose_net.count_params(),
                "pose_gflops": round(count_flops(pose_fn.get_concrete_function(
                    tf.TensorSpec([1, h, w, 6], tf.float32))) / 1e9, 3),
            }
            rows.append(row)
            print(f"  {row['name']}: depth {row['depth_params'] / 1e6:.2f} M params "
                  f"(encoder {row['depth_encoder_params'] / 1e6:.2f} M), {row['depth_gflops']:.2f} "
                  f"GFLOP (encoder {row['depth_encoder_gflops']:.2f}); pose {row['pose_params'] / 1e6:.2f} M, {row['pose_gflops']:.2f} GFLOP",
                  flush=True)
    return rows
