"""DepthNet: ResNet encoder + depth decoder (images -> multi-scale sigmoid disparities)."""

from __future__ import annotations

from collections.abc import Sequence

from md2tf.models.depth_decoder import DepthDecoder, check_scales, export_layout_config
from md2tf.models.encoder_decoder import EncoderDecoderNet
from md2tf.models.resnet_encoder import ResnetEncoder


class DepthNet(EncoderDecoderNet):
    """Monodepth2's depth network.

    Args:
      num_layers: encoder ResNet depth (18, 34 or 50).
      scales: decoder output scales ``0..n-1``.
      init: ``"torch"`` (reference initialisers) or ``"keras"``.
      synchronized_bn: cross-replica BatchNormalization in the encoder.
      int8_friendly_elu: decoder ELUs as ``r + (exp(x - r) - 1)``, ``r = relu(x)`` (see `DepthDecoder`;
        all-int8 ops, but not XNNPACK-delegable; the int8 export leaves it off).
      init_disparity: None (reference init) or the initial sigmoid disparity p in (0, 1) of every
        output (see `DepthDecoder`).
      int8_friendly_pad, int8_friendly_upsample: decoder reflection padding as slices + concat and
        nearest upsampling as DEPTH_TO_SPACE (see `DepthDecoder`), so XNNPACK runs the whole TFLite
        graph (fp32 1.6x, int8 4x faster); same weights and outputs. For the TFLite exports only
        (``md2tf.deploy.exporter.int8_friendly_clone``); in `get_config` only when set.

    Call args:
      images: ``[B, H, W, 3]`` float RGB in [0, 1] (H, W multiples of 32, at least 64).
      training: BN mode.

    Returns:
      Tuple of float32 sigmoid disparities ``[B, H/2^s, W/2^s, 1]``, scale 0 first. Convert with
      ``md2tf.geometry.disp_to_depth``.
    """

    def __init__(
        self,
        num_layers: int = 18,
        scales: Sequence[int] = (0, 1, 2, 3),
        init: str = "torch",
        synchronized_bn: bool = False,
        int8_friendly_elu: bool = False,
        init_disparity: float | None = None,
        int8_friendly_pad: bool = False,
        int8_friendly_upsample: bool = False,
        **kwargs,
    ):
        kwargs.setdefault("name", "depth_net")
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.scales = check_scales(scales)
        self.init = init
        self.synchronized_bn = synchronized_bn
        self.int8_friendly_elu = bool(int8_friendly_elu)
        self.encoder = ResnetEncoder(num_layers, 1, init, synchronized_bn, name="encoder")
        self.int8_friendly_pad = bool(int8_friendly_pad)
        self.int8_friendly_upsample = bool(int8_friendly_upsample)
        self.decoder = DepthDecoder(self.encoder.num_ch_enc, self.scales, init,
                                    self.int8_friendly_elu, init_disparity,
                                    int8_friendly_pad=self.int8_friendly_pad,
                                    int8_friendly_upsample=self.int8_friendly_upsample,
                                    name="decoder")
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

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "num_layers": self.num_layers,
            "scales": list(self.scales),
            "init": self.init,
            "synchronized_bn": self.synchronized_bn,
            "int8_friendly_elu": self.int8_friendly_elu,
            "init_disparity": self.init_disparity,
            **export_layout_config(self),
        }
