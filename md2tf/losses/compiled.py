"""The self-supervised loss compiled by XLA inside an otherwise uncompiled (graph-mode) training step.

The loss (paper Sec. 3: warps, SSIM + L1, per-pixel minimum, smoothness over 4 scales) is a long chain
of memory-bound element-wise ops, pools and gathers at full resolution. XLA fuses that chain into a few
loops (SSIM's five 3x3 means, the products around them, the L1 term and the minimum read each image
once), while the convolutions of the networks stay on TF's own kernels (oneDNN on CPU, which XLA's CPU
backend does not use). The gradient of the compiled function is compiled as well.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from md2tf.losses.multiscale import monodepth2_loss


def xla_loss(loss_fn: Callable = monodepth2_loss) -> Callable:
    """Wraps a ``monodepth2_loss``-compatible function so that each call runs as one XLA cluster.

    The Python-level arguments (``config``, ``disp_to_depth``) select a compiled function (one per
    distinct pair, cached); the tensors are its inputs. Results equal ``loss_fn``'s within float32
    rounding; where two sources' errors at a pixel differ by about that rounding, the per-pixel minimum
    may pick the other one, which moves that pixel's gradient between the two warps.

    Args:
      loss_fn: the loss, same signature as `monodepth2_loss`.

    Returns:
      A callable with ``loss_fn``'s signature and return value; its ``compiled`` attribute is the
      dict of compiled ``tf.function`` objects by ``(config, disp_to_depth)``.
    """
    compiled: dict[tuple, Callable] = {}

    def call(disparities, target, sources, source_from_target, intrinsics, config, noise_seed=None,
             *, disp_to_depth):
        key = (config, disp_to_depth)
        fn = compiled.get(key)
        if fn is None:
            def body(disparities, target, sources, source_from_target, intrinsics, noise_seed):
                return loss_fn(disparities, target, sources, source_from_target, intrinsics, config,
                               noise_seed=noise_seed, disp_to_depth=disp_to_depth)

            fn = compiled[key] = tf.function(body, jit_compile=True)
        return fn(tuple(disparities), tuple(target), tuple(sources), source_from_target, intrinsics,
                  noise_seed)

    call.__name__ = f"xla_{getattr(loss_fn, '__name__', 'loss')}"
    call.compiled = compiled  # the compiled functions by (config, disp_to_depth)
    call.__doc__ = loss_fn.__doc__
    return call
