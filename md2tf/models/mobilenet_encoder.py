"""MobileNetV3 encoders (Howard et al., "Searching for MobileNetV3", ICCV 2019) returning five feature maps.

The trunk is Keras' own architecture, ``keras.applications.MobileNetV3Large`` / ``MobileNetV3Small``
with ``weights=None``, ``include_top=False`` and ``include_preprocessing=False``, built for
``[B, H, W, 3 * num_input_images]`` inputs of any size. Its hard-swish, squeeze-excite blocks, BN
epsilon (1e-3) and layer names are Keras', so Keras' published ImageNet weights load by layer name
(``md2tf.convert.pretrained.load_keras_encoder_weights``).

BN momentum: 0.9 (`BN_MOMENTUM`, the same as the ResNet encoder's, PyTorch's default), not Keras'
0.999. The moving statistics are what validation and every export use; at 0.999 they keep
0.999^1176 = 31 % of their initial (0, 1) after the 1176 steps of the synthetic S recipe, and a
scratch-trained network scored abs_rel 0.59 in validation while its training loss fell (measured:
``docs/benchmarks.md``). Momentum is not a weight: ImageNet weights load the same.

Skip features, chosen by stride (feature ``k`` has stride ``2^(k+1)``, as `ResnetEncoder`'s):

* k = 0..3: the input of each inverted-residual block that halves the resolution (Keras marks those
  blocks by their ``<prefix>depthwise_pad`` layer), i.e. the last block output at that stride. For
  MobileNetV3Small, whose first block is strided, feature 0 is the stem (3x3 conv, BN, hard-swish).
* k = 4: the trunk's output at stride 32, the 1x1 conv to 6x channels + BN + activation (Keras'
  ``conv_1``, the last layer without the classifier).

Channels (`num_ch_enc`): large ``(16, 24, 40, 112, 960)``, small ``(16, 16, 24, 48, 576)``, the same
for the minimalistic forms.

Minimalistic forms (``*_minimalistic``; Keras' ``minimalistic=True``, the "MobileNetV3-Minimalistic"
models of the Keras/TF-Slim releases): ReLU instead of hard-swish, no squeeze-excite, 3x3 depthwise
kernels only. Same skips and strides, fewer parameters (small: 0.44 M vs 0.94 M in the trunk).

Input normalisation: the same contract as `ResnetEncoder` (float RGB in [0, 1], normalised inside
the encoder), with MobileNetV3's own statistics: Keras trained it on ``x / 127.5 - 1`` of [0, 255]
images (its ``Rescaling`` preprocessing layer), i.e. ``(x - 0.5) / 0.5`` in [-1, 1] for x in [0, 1].
So ImageNet weights see the range they were trained on, and everything around the encoder
(`DepthNet`, the exported ``DepthPredictor``) is unchanged.

TFLite (measured with TF 2.21 / LiteRT 2.3): every variant converts with builtin ops only. Keras'
hard-swish lowers to HARD_SWISH and squeeze-excite to MEAN, CONV_2D (ReLU and the hard-sigmoid's
ReLU6 fused) and MUL; all stay int8 in a full-integer model. XNNPACK does not run int8 HARD_SWISH,
so those ops (18 in small, 20 in large) run in LiteRT's own int8 kernels between XNNPACK partitions,
which made the int8 small network as slow as ResNet18's (11.8 vs 12.3 ms at 192x640, 2 threads, AMD
EPYC with AVX-512): the minimalistic form has no such op and runs in 4.9 ms there. Writing hard-swish
as ``(x / 6) * relu6(x + 3)`` (MUL, ADD + RELU6, MUL) keeps the int8 graph whole
in XNNPACK but, measured on random weights with realistic BN statistics, doubled the int8 disparity
error (mean 0.020 -> 0.038 small, 0.040 -> 0.054 large), so the export keeps Keras' op.
"""

from __future__ import annotations

import functools

import keras

from md2tf.config import ENCODERS

# x in [0, 1] -> (x - 0.5) / 0.5 in [-1, 1]: Keras' Rescaling(1 / 127.5, offset=-1) on [0, 255].
INPUT_MEAN = 0.5
INPUT_STD = 0.5

#: `ENCODERS` name -> Keras application.
VARIANTS = {
    "mobilenet_v3_large": keras.applications.MobileNetV3Large,
    "mobilenet_v3_small": keras.applications.MobileNetV3Small,
    "mobilenet_v3_large_minimalistic": functools.partial(keras.applications.MobileNetV3Large,
                                                         minimalistic=True),
    "mobilenet_v3_small_minimalistic": functools.partial(keras.applications.MobileNetV3Small,
                                                         minimalistic=True),
}
NUM_CH_ENC = {
    "mobilenet_v3_large": (16, 24, 40, 112, 960),
    "mobilenet_v3_small": (16, 16, 24, 48, 576),
    "mobilenet_v3_large_minimalistic": (16, 24, 40, 112, 960),
    "mobilenet_v3_small_minimalistic": (16, 16, 24, 48, 576),
}
#: Keras' name of the first convolution (3 -> 16 channels, stride 2): the one that sees the images.
FIRST_CONV = "conv"
_STRIDED_BLOCK_MARK = "depthwise_pad"  # Keras pads only the stride-2 depthwise convs explicitly
#: Keras BatchNormalization momentum of every trunk BN (moving = m * moving + (1 - m) * batch).
BN_MOMENTUM = 0.9


def check_variant(variant: str) -> str:
    """Returns ``variant``; raises ``ValueError`` unless it is a MobileNetV3 name of `ENCODERS`."""
    if variant not in VARIANTS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {variant!r} "
                         f"(MobileNetV3 encoders: {tuple(VARIANTS)})")
    return variant


def keras_trunk(variant: str, input_channels: int = 3, weights: str | None = None) -> keras.Model:
    """Keras' MobileNetV3 without classifier and preprocessing, for ``[B, H, W, input_channels]``.

    Args:
      variant: a `VARIANTS` name (``mobilenet_v3_large``, ``mobilenet_v3_small``, ``*_minimalistic``).
      input_channels: image channels (3, or 6 for an image pair).
      weights: None (fresh), ``"imagenet"`` (Keras fetches its published file; 3 channels only) or a
        weights file Keras' ``load_weights`` reads.

    Returns:
      The functional model; its output is the stride-32 feature ``[B, H/32, W/32, num_ch_enc[4]]``.
    """
    return VARIANTS[check_variant(variant)](
        input_shape=(None, None, input_channels), include_top=False, weights=weights,
        include_preprocessing=False)


def skip_tensors(trunk: keras.Model) -> list:
    """The five symbolic skip features of a `keras_trunk` (see the module docstring), stride 2 first.

    Raises:
      ValueError: the trunk does not have four strided blocks (another Keras architecture).
    """
    names = {layer.name for layer in trunk.layers}
    tensors = []
    for layer in trunk.layers:
        if layer.name.endswith(_STRIDED_BLOCK_MARK):
            prefix = layer.name[: -len(_STRIDED_BLOCK_MARK)]
            first = trunk.get_layer(prefix + "expand") if prefix + "expand" in names else layer
            tensors.append(first.input)
    if len(tensors) != 4:
        raise ValueError(f"expected 4 strided blocks in {trunk.name}, found {len(tensors)}")
    return tensors + [trunk.output]


class MobileNetV3Encoder(keras.layers.Layer):
    """MobileNetV3 trunk without the classifier: images -> five feature maps.

    Every layer with weights is a named attribute (its Keras name: ``conv``, ``conv_bn``,
    ``expanded_conv_3_depthwise``, ...), so checkpoint keys read
    ``depth_net/encoder/<keras layer name>/...``. The functional graph wiring them is a
    ``keras.Function``, which is neither a layer nor trackable: it holds no state of its own, and
    checkpoints do not depend on Keras' internal operation indices.

    Args:
      variant: a `VARIANTS` name.
      num_input_images: images stacked along channels (1 = depth encoder, 2 = pose encoder with a
        6-channel first conv).
      synchronized_bn: cross-replica BatchNormalization (MirroredStrategy training). Set on each of
        Keras' BN layers, all built here, before any call (Keras reads it at call time).

    Call args:
      images: ``[B, H, W, 3 * num_input_images]`` float RGB in [0, 1]; H and W multiples of 32.
      training: BN mode.

    Returns:
      Tuple of 5 tensors ``[B, H/2^(k+1), W/2^(k+1), num_ch_enc[k]]``, k = 0..4.
    """

    def __init__(
        self,
        variant: str = "mobilenet_v3_large",
        num_input_images: int = 1,
        synchronized_bn: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.variant = check_variant(variant)
        if num_input_images < 1:
            raise ValueError(f"num_input_images must be >= 1, got {num_input_images}")
        self.num_input_images = num_input_images
        self.synchronized_bn = synchronized_bn
        self.num_ch_enc = NUM_CH_ENC[variant]
        trunk = keras_trunk(variant, 3 * num_input_images)
        self.layer_names = tuple(layer.name for layer in trunk.layers if layer.weights)
        for name in self.layer_names:
            layer = trunk.get_layer(name)
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = synchronized_bn
                layer.momentum = BN_MOMENTUM
            setattr(self, name, layer)  # named attribute: tracked by tf.train.Checkpoint
        self._skip_graph = keras.Function(trunk.input, skip_tensors(trunk), name=f"{self.name}_graph")

    @property
    def architecture(self) -> str:
        """The `md2tf.config.encoder_architecture` name (the variant)."""
        return self.variant

    def call(self, images, training=None):
        channels = images.shape[-1]
        if channels is not None and channels != 3 * self.num_input_images:
            raise ValueError(
                f"images must be [B, H, W, {3 * self.num_input_images}] "
                f"(num_input_images={self.num_input_images}), got shape {images.shape}"
            )
        # Keras' layers take BN's training mode from this call's context.
        return tuple(self._skip_graph((images - INPUT_MEAN) / INPUT_STD))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            variant=self.variant,
            num_input_images=self.num_input_images,
            synchronized_bn=self.synchronized_bn,
        )
        return config
