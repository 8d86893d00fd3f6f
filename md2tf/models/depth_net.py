"""DepthNet: encoder (ResNet or MobileNetV3) + depth decoder (images -> multi-scale sigmoid disparities
-> depth)."""

from __future__ import annotations

from collections.abc import Sequence

from md2tf.config import DECODER_CHANNELS, DEPTH_RANGE, check_depth_range
from md2tf.geometry import disp_to_depth
from md2tf.models.depth_decoder import DepthDecoder, check_scales
from md2tf.models.encoder_decoder import EncoderDecoderNet
from md2tf.models.encoders import build_encoder
from md2tf.models.layers import check_layout


class DepthNet(EncoderDecoderNet):
    """Monodepth2's depth network and its output contract.

    The network predicts sigmoid disparities; `disp_to_depth` turns them into bounded inverse depth
    and depth, ``D = 1 / (a * sigma + b)`` with ``a, b`` chosen so that D lies in
    ``[min_depth, max_depth]`` (paper Sec. 3, implementation details: 0.1 and 100 units). The depth
    range belongs to the network: the loss, the trainer's validation, evaluation and every export
    call `disp_to_depth` (or read `min_depth` / `max_depth` from here).

    Args:
      num_layers: encoder ResNet depth (18, 34 or 50; ``encoder="resnet"`` only).
      scales: decoder output scales ``0..n-1``.
      init: ``"torch"`` (reference initialisers) or ``"keras"`` (the ResNet encoder's and the
        decoder's; MobileNetV3 keeps Keras' own).
      synchronized_bn: cross-replica BatchNormalization in the encoder.
      init_disparity: None (reference init) or the initial sigmoid disparity p in (0, 1) of every
        output (see `DepthDecoder`).
      min_depth, max_depth: depth at disparity 1 and 0, in training units (0 < min < max).
      layout: ``"train"`` (the network as trained) or ``"xnnpack"`` (the same weights and outputs
        with ops XNNPACK runs, for TFLite; see ``md2tf.models.layers.LAYOUTS``).
      encoder: an `md2tf.config.ENCODERS` name: ``"resnet"`` (the paper's) or a MobileNetV3
        (`md2tf.models.encoders.build_encoder`); the decoder adapts to its skip channels.
      decoder_channels: the depth decoder's channels at scales 0..4 (`DepthDecoder`'s ``num_ch_dec``;
        the paper's ``(16, 32, 64, 128, 256)``).

    Call args:
      images: ``[B, H, W, 3]`` float RGB in [0, 1] (H, W multiples of 32, at least 64).
      training: BN mode.

    Returns:
      Tuple of float32 sigmoid disparities ``[B, H/2^s, W/2^s, 1]``, scale 0 first.
    """

    def __init__(
        self,
        num_layers: int = 18,
        scales: Sequence[int] = (0, 1, 2, 3),
        init: str = "torch",
        synchronized_bn: bool = False,
        init_disparity: float | None = None,
        min_depth: float = DEPTH_RANGE[0],
        max_depth: float = DEPTH_RANGE[1],
        layout: str = "train",
        encoder: str = "resnet",
        decoder_channels: Sequence[int] = DECODER_CHANNELS,
        **kwargs,
    ):
        kwargs.setdefault("name", "depth_net")
        super().__init__(**kwargs)
        check_depth_range(min_depth, max_depth)
        self.num_layers = num_layers
        self.scales = check_scales(scales)
        self.init = init
        self.synchronized_bn = synchronized_bn
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.layout = check_layout(layout)
        self.encoder = build_encoder(encoder, num_layers, 1, init, synchronized_bn, name="encoder")
        self.encoder_name = encoder
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, self.scales, init,
                                    init_disparity=init_disparity, layout=self.layout,
                                    num_ch_dec=decoder_channels, name="decoder")
        self.init_disparity = self.decoder.init_disparity

    def call(self, images, training=None):
        if images.shape.rank != 4:
            raise ValueError(f"images must be [B, H, W, 3], got shape {images.shape}")
        for size in images.shape[1:3]:
            # Reflection padding of the 1/32 feature needs >= 2 pixels (as PyTorch's does).
            if size is not None and (size % 32 or size < 64):
                raise ValueError(
                    f"images must be [B, H, W, 3] with H, W multiples of 32 and >= 64, "
                    f"got shape {images.shape}"
                )
        return self.decoder(self.encoder(images, training=training), training=training)

    def disp_to_depth(self, disp):
        """Sigmoid disparity -> ``(scaled_disparity, depth)`` with this network's depth range.

        Args:
          disp: sigmoid disparity in [0, 1], any shape (usually ``[B, H, W, 1]``); a ``tf.Tensor``
            or a NumPy array (the result has the same kind).

        Returns:
          ``(scaled_disp, depth)`` shaped like ``disp``: inverse depth in 1/units and depth in units
          (see ``md2tf.geometry.disp_to_depth``).
        """
        return disp_to_depth(disp, self.min_depth, self.max_depth)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "num_layers": self.num_layers,
            "scales": list(self.scales),
            "init": self.init,
            "synchronized_bn": self.synchronized_bn,
            "init_disparity": self.init_disparity,
            "min_depth": self.min_depth,
            "max_depth": self.max_depth,
            "layout": self.layout,
            "encoder": self.encoder_name,
            "decoder_channels": list(self.decoder.num_ch_dec),
        }
