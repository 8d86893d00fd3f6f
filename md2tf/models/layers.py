"""Building blocks shared by the md2tf networks: initialisers, padding helpers and the decoder conv.

Every layer here keeps its sub-layers as *named attributes* (never only in a Python list), so that
``tf.train.Checkpoint`` and SavedModel see all variables (Keras 3 silently drops list-held layers).

Decoder layouts (`LAYOUTS`): the same weights and outputs written with two sets of ops.

* ``"train"``: reflection padding as ``tf.pad(mode="REFLECT")`` (TFLite MIRROR_PAD) and nearest x2
  upsampling as a resize with a hand-written gradient (XLA-compilable); the network as trained.
* ``"xnnpack"``: reflection padding as strided slices + concatenation (`reflect_pad_slices`) and
  upsampling as channel copies + DEPTH_TO_SPACE (`upsample_nearest_2x_depth_to_space`). XNNPACK runs
  neither MIRROR_PAD nor (in int8) RESIZE_NEAREST_NEIGHBOR, so with this layout every TFLite variant
  runs whole inside the delegate. ``md2tf.deploy`` converts a clone in this layout.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

INITS = ("torch", "keras")
LAYOUTS = ("train", "xnnpack")


def check_init(init: str) -> None:
    """Raises ``ValueError`` unless ``init`` is ``"torch"`` or ``"keras"``."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")


def check_layout(layout: str) -> str:
    """Returns ``layout``; raises ``ValueError`` unless it is one of `LAYOUTS`."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return layout


def default_conv_initializers(init: str, fan_in: int) -> tuple:
    """Kernel and bias initialisers of a plain (decoder) convolution.

    ``torch`` reproduces PyTorch's ``nn.Conv2d`` default: kernel ``kaiming_uniform(a=sqrt(5))``, i.e.
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    ``keras`` is Keras' default (Glorot uniform kernel, zero bias).

    Args:
      init: ``"torch"`` or ``"keras"``.
      fan_in: ``in_channels * kernel_h * kernel_w`` of the convolution.

    Returns:
      ``(kernel_initializer, bias_initializer)``.
    """
    check_init(init)
    if init == "keras":
        return "glorot_uniform", "zeros"
    bound = 1.0 / math.sqrt(fan_in)
    kernel = keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform")
    bias = keras.initializers.RandomUniform(minval=-bound, maxval=bound)
    return kernel, bias


def resnet_conv_initializer(init: str):
    """Kernel initialiser of the ResNet convolutions.

    ``torch`` is torchvision's ResNet init, ``kaiming_normal(mode="fan_out", nonlinearity="relu")``:
    ``N(0, 2 / (out_channels * kh * kw))`` (untruncated). ``keras`` is Glorot uniform.
    """
    check_init(init)
    if init == "keras":
        return "glorot_uniform"
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def batch_norm(synchronized: bool = False, name: str | None = None) -> keras.layers.BatchNormalization:
    """BatchNormalization with PyTorch's numerics: epsilon 1e-5, momentum 0.9 (= torch 0.1).

    Args:
      synchronized: passed to the constructor (cross-replica statistics under MirroredStrategy);
        setting it after construction misses lazily built layers.
      name: layer name.
    """
    return keras.layers.BatchNormalization(
        epsilon=1e-5, momentum=0.9, synchronized=synchronized, name=name
    )


def zero_pad(x: tf.Tensor, pad: int) -> tf.Tensor:
    """Symmetric zero padding of ``pad`` pixels on each side of H and W: ``[B,H,W,C] -> [B,H+2p,W+2p,C]``.

    Explicit padding + ``'valid'`` reproduces PyTorch's ``padding=p``; TF's ``'same'`` pads strided
    convolutions asymmetrically and would shift the features.
    """
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])


def reflect_pad(x: tf.Tensor, pad: int = 1) -> tf.Tensor:
    """Reflection padding (``ReflectionPad2d``) of H and W: ``[B,H,W,C] -> [B,H+2p,W+2p,C]``.

    Lowers to the builtin TFLite op MIRROR_PAD.
    """
    return tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")


def reflect_pad_slices(x: tf.Tensor, pad: int = 1) -> tf.Tensor:
    """`reflect_pad` written as strided slices and concatenations: same values, other TFLite ops.

    Rows first, then columns. Reflection leaves the edge out: the rows added above are
    ``x[:, pad], ..., x[:, 1]`` and those below ``x[:, H-2], ..., x[:, H-1-pad]`` (for ``pad = 1``:
    row 1 on top, row H-2 at the bottom); the columns likewise on the row-padded tensor. It lowers to
    STRIDED_SLICE and CONCATENATION, which a full-integer TFLite model keeps in int8 with one scale
    and XNNPACK delegates, whereas MIRROR_PAD runs outside the XNNPACK delegate and splits the graph.

    Args:
      x: ``[B, H, W, C]``, any dtype; H and W must exceed ``pad`` (as for ``tf.pad`` REFLECT).
      pad: pixels added on each side of H and W, >= 1.

    Returns:
      ``[B, H + 2 pad, W + 2 pad, C]``, equal to ``reflect_pad(x, pad)``.

    Raises:
      ValueError: ``x`` is not rank 4, ``pad < 1``, or a known H or W is not larger than ``pad``.
    """
    if x.shape.rank != 4:
        raise ValueError(f"reflect_pad_slices expects x of shape [B, H, W, C], got {x.shape}")
    if pad < 1:
        raise ValueError(f"pad must be >= 1, got {pad}")
    for size in x.shape[1:3]:
        if size is not None and size <= pad:
            raise ValueError(f"reflection padding by {pad} needs H, W > {pad}, got shape {x.shape}")

    def along(t: tf.Tensor, axis: int) -> tf.Tensor:
        def at(i: int) -> tf.Tensor:  # index i of `axis` (negative: from the end), kept as size 1
            index = [slice(None)] * 4
            index[axis] = slice(i, i + 1 if i != -1 else None)
            return t[tuple(index)]

        before = [at(i) for i in range(pad, 0, -1)]
        after = [at(-1 - i) for i in range(1, pad + 1)]
        return tf.concat([*before, t, *after], axis=axis)

    return along(along(x, 1), 2)


def upsample_nearest_2x(x: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour x2 upsampling: ``[B,H,W,C] -> [B,2H,2W,C]``, output ``(i, j)`` = input ``(i//2, j//2)``.

    ``tf.image.resize(..., "nearest")`` with half-pixel centres maps output ``i`` to
    ``floor((i + 0.5) / 2) = i // 2``, PyTorch's ``interpolate(scale_factor=2, mode="nearest")``. It
    keeps the input dtype and lowers to the builtin TFLite op RESIZE_NEAREST_NEIGHBOR.

    The gradient is written by hand: each input pixel feeds exactly the 2x2 output block
    ``[2i:2i+2, 2j:2j+2]``, so ``dx`` is the sum of ``dy`` over those blocks (a reshape to
    ``[B,H,2,W,2,C]`` and a ``reduce_sum``). It equals the autodiff gradient of the resize
    (``ResizeNearestNeighborGrad``), which has no XLA CPU kernel and so breaks ``jit_compile=True``
    training. H and W may be unknown (``tf.function`` with ``None`` dimensions); known dimensions stay
    static in the output shape.

    Args:
      x: ``[B, H, W, C]``, any float dtype (float32, float64, bfloat16, float16).

    Returns:
      ``[B, 2H, 2W, C]``, same dtype as ``x``.
    """
    if x.shape.rank is not None and x.shape.rank != 4:
        raise ValueError(f"upsample_nearest_2x expects x of shape [B, H, W, C], got {x.shape}")
    static = x.shape.with_rank(4)
    out = _resize_nearest_2x(x)
    return tf.ensure_shape(out, [static[0], None if static[1] is None else 2 * static[1],
                                 None if static[2] is None else 2 * static[2], static[3]])


@tf.custom_gradient
def _resize_nearest_2x(x: tf.Tensor):
    """`upsample_nearest_2x`'s forward (the plain resize) with the 2x2 block-sum gradient."""
    shape = tf.shape(x)
    static = x.shape.with_rank(4)
    # Python ints where known, so the exported graph keeps a constant resize size.
    height = static[1] * 2 if static[1] is not None else shape[1] * 2
    width = static[2] * 2 if static[2] is not None else shape[2] * 2

    def grad(dy: tf.Tensor) -> tf.Tensor:
        blocks = tf.reshape(dy, tf.stack([shape[0], shape[1], 2, shape[2], 2, shape[3]]))
        return tf.ensure_shape(tf.reduce_sum(blocks, axis=[2, 4]), static)

    return tf.image.resize(x, [height, width], method="nearest"), grad


def upsample_nearest_2x_depth_to_space(x: tf.Tensor) -> tf.Tensor:
    """`upsample_nearest_2x` as four channel copies and DEPTH_TO_SPACE: same values, other TFLite ops.

    ``depth_to_space`` with block 2 sends channel ``(2 a + b) C + c`` of input pixel ``(i, j)`` to
    output pixel ``(2i + a, 2j + b)``, channel ``c``; with ``concat([x, x, x, x])`` on channels that
    channel is ``x[..., c]`` for every ``(a, b)``, so output ``(i, j)`` = input ``(i//2, j//2)``.
    Lowers to CONCATENATION and DEPTH_TO_SPACE, which stay int8 in a full-integer TFLite model and run
    in the XNNPACK delegate (its int8 RESIZE_NEAREST_NEIGHBOR does not). Gradients come from autodiff.

    Args:
      x: ``[B, H, W, C]``, any float dtype.

    Returns:
      ``[B, 2H, 2W, C]``, same dtype, equal to ``upsample_nearest_2x(x)``.
    """
    if x.shape.rank is not None and x.shape.rank != 4:
        raise ValueError(f"upsample_nearest_2x_depth_to_space expects x of shape [B, H, W, C], "
                         f"got {x.shape}")
    return tf.nn.depth_to_space(tf.concat([x, x, x, x], axis=-1), 2)


class ReflectConv3x3(keras.layers.Layer):
    """Reflection pad 1 + 3x3 conv with bias (the reference's ``Conv3x3``): ``[B,H,W,Cin] -> [B,H,W,Cout]``.

    Args:
      in_channels: Cin (used for the PyTorch-default initialiser).
      out_channels: Cout.
      init: ``"torch"`` or ``"keras"`` initialisers.
      layout: ``"train"`` pads with `reflect_pad` (MIRROR_PAD), ``"xnnpack"`` with
        `reflect_pad_slices` (see `LAYOUTS`); same weights, same outputs.
    """

    def __init__(self, in_channels: int, out_channels: int, init: str = "torch",
                 layout: str = "train", **kwargs):
        super().__init__(**kwargs)
        self.layout = check_layout(layout)
        kernel_init, bias_init = default_conv_initializers(init, in_channels * 9)
        self.conv = keras.layers.Conv2D(
            out_channels,
            3,
            padding="valid",
            kernel_initializer=kernel_init,
            bias_initializer=bias_init,
            name="conv",
        )

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return self.conv(reflect_pad_slices(x, 1) if self.layout == "xnnpack" else reflect_pad(x, 1))


class ConvBlock(keras.layers.Layer):
    """`ReflectConv3x3` followed by ELU (alpha 1): the decoder's ``ConvBlock``.

    Args:
      in_channels: Cin.
      out_channels: Cout.
      init: ``"torch"`` or ``"keras"`` initialisers.
      layout: see `ReflectConv3x3`.
    """

    def __init__(self, in_channels: int, out_channels: int, init: str = "torch",
                 layout: str = "train", **kwargs):
        super().__init__(**kwargs)
        self.conv = ReflectConv3x3(in_channels, out_channels, init, layout, name="conv")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.elu(self.conv(x))
