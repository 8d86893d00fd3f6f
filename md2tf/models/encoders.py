"""`build_encoder`: the one place where an `md2tf.config.ENCODERS` name becomes an encoder layer.

Every encoder maps float RGB ``[B, H, W, 3 * num_input_images]`` in [0, 1] (normalised inside) to five
features ``[B, H/2^(k+1), W/2^(k+1), num_ch_enc[k]]``, k = 0..4, and exposes ``num_ch_enc``,
``num_input_images`` and ``architecture``; the decoders only read ``num_ch_enc``.
"""

from __future__ import annotations

import keras

from md2tf.config import ENCODERS
from md2tf.models import mobilenet_encoder, resnet_encoder
from md2tf.models.mobilenet_encoder import MobileNetV3Encoder
from md2tf.models.resnet_encoder import ResnetEncoder


def check_encoder(encoder: str) -> str:
    """Returns ``encoder``; raises ``ValueError`` unless it is one of `ENCODERS`."""
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")
    return encoder


def build_encoder(
    encoder: str,
    num_layers: int = 18,
    num_input_images: int = 1,
    init: str = "torch",
    synchronized_bn: bool = False,
    name: str = "encoder",
) -> keras.layers.Layer:
    """An encoder layer.

    Args:
      encoder: an `ENCODERS` name: ``resnet`` or a MobileNetV3 (``mobilenet_v3_large``, ``..._small``,
        ``..._minimalistic``).
      num_layers: ResNet depth (18, 34 or 50); ignored by MobileNetV3.
      num_input_images: images stacked along channels (2 for the pose encoder).
      init: ResNet initialisers (``torch`` or ``keras``); MobileNetV3 keeps Keras' own.
      synchronized_bn: cross-replica BatchNormalization.
      name: layer name (checkpoint keys start with it).

    Returns:
      A `ResnetEncoder` or a `MobileNetV3Encoder`.
    """
    if check_encoder(encoder) == "resnet":
        return ResnetEncoder(num_layers, num_input_images, init, synchronized_bn, name=name)
    return MobileNetV3Encoder(encoder, num_input_images, synchronized_bn, name=name)


def input_normalisation(encoder: str) -> tuple[float, float]:
    """``(mean, std)`` the encoder applies to [0, 1] inputs: ``(x - mean) / std``.

    ResNet: the reference's ImageNet-free scalar statistics (0.45, 0.225); MobileNetV3: (0.5, 0.5),
    Keras' [-1, 1] range.
    """
    module = resnet_encoder if check_encoder(encoder) == "resnet" else mobilenet_encoder
    return module.INPUT_MEAN, module.INPUT_STD
