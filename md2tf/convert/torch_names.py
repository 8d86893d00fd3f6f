"""The PyTorch name of every md2tf layer that holds weights (reference module layout).

`torch_layers` returns ``(torch_name_prefix, keras_layer)`` pairs named the way the reference
PyTorch modules name their parameters: torchvision's ResNet (``conv1``, ``bn1``,
``layer2.0.downsample.0``), the depth decoder (``decoder.{2(4-i)+j}.conv.conv``,
``decoder.{10+s}.conv``) and the pose decoder (``net.0`` .. ``net.3``). `md2tf.convert.torch_weights`
uses it to load ``.pth`` / ``.npz`` state dicts; the networks in ``md2tf.models`` know nothing of it.
"""

from __future__ import annotations

import keras

from md2tf.models.depth_decoder import DepthDecoder
from md2tf.models.encoder_decoder import EncoderDecoderNet
from md2tf.models.pose_decoder import PoseDecoder
from md2tf.models.resnet_encoder import ResnetEncoder

Named = list[tuple[str, keras.layers.Layer]]


def _block_layers(block) -> Named:
    """A residual block: ``conv{i}``, ``bn{i}`` and the projection ``downsample.{0,1}``."""
    out = []
    for i in range(1, len(block.conv_names) + 1):
        out += [(f"conv{i}", getattr(block, f"conv{i}")), (f"bn{i}", getattr(block, f"bn{i}"))]
    if block.downsample_conv is not None:
        out += [("downsample.0", block.downsample_conv), ("downsample.1", block.downsample_bn)]
    return out


def _encoder_layers(encoder: ResnetEncoder) -> Named:
    """torchvision names: ``conv1``, ``bn1``, ``layer{stage}.{j}.<block name>``."""
    out = [("conv1", encoder.conv1), ("bn1", encoder.bn1)]
    for names in encoder.block_names:
        for name in names:  # attribute layer{stage}_{j}
            stage, j = name[len("layer"):].split("_")
            out += [(f"layer{stage}.{j}.{sub}", layer)
                    for sub, layer in _block_layers(getattr(encoder, name))]
    return out


def _depth_decoder_layers(decoder: DepthDecoder) -> Named:
    """``decoder.{2(4-i)+j}.conv.conv`` (``upconv_i_j``) and ``decoder.{10+s}.conv`` (``dispconv_s``)."""
    out = []
    for i in range(4, -1, -1):
        for j in range(2):
            out.append((f"decoder.{2 * (4 - i) + j}.conv.conv",
                        getattr(decoder, f"upconv_{i}_{j}").conv.conv))
    for s in decoder.scales:
        out.append((f"decoder.{10 + s}.conv", getattr(decoder, f"dispconv_{s}").conv))
    return out


def _pose_decoder_layers(decoder: PoseDecoder) -> Named:
    """``net.0`` (squeeze) .. ``net.3``."""
    return [("net.0", decoder.squeeze), ("net.1", decoder.pose_0), ("net.2", decoder.pose_1),
            ("net.3", decoder.pose_2)]


def torch_layers(model) -> Named:
    """``(torch_name_prefix, keras_layer)`` for every weight-holding layer of an md2tf network.

    Args:
      model: ``DepthNet`` / ``PoseNet`` (encoder under ``encoder.*`` as in ``encoder.pth`` and
        ``pose_encoder.pth``, then the decoder as in ``depth.pth`` / ``pose.pth``), a
        ``ResnetEncoder``, a ``DepthDecoder`` or a ``PoseDecoder``.

    Raises:
      ValueError: for any other object.
    """
    if isinstance(model, EncoderDecoderNet):
        return ([("encoder." + n, layer) for n, layer in _encoder_layers(model.encoder)]
                + torch_layers(model.decoder))
    if isinstance(model, ResnetEncoder):
        return _encoder_layers(model)
    if isinstance(model, DepthDecoder):
        return _depth_decoder_layers(model)
    if isinstance(model, PoseDecoder):
        return _pose_decoder_layers(model)
    raise ValueError(f"{type(model).__name__} is not an md2tf network (no PyTorch name map)")
