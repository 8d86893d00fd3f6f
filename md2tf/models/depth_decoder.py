"""Depth decoder (paper Table 5): encoder features -> sigmoid disparities at several scales."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from md2tf.config import DECODER_CHANNELS
from md2tf.models import layers as L

#: The paper's decoder channels at scales 0..4 (Table 5).
NUM_CH_DEC = DECODER_CHANNELS


def check_decoder_channels(channels: Sequence[int]) -> tuple[int, ...]:
    """Returns ``channels`` as a tuple; raises ``ValueError`` unless it is 5 positive integers."""
    channels = tuple(int(c) for c in channels)
    if len(channels) != 5 or min(channels) < 1:
        raise ValueError(f"decoder channels must be 5 positive integers (scales 0..4), got {channels}")
    return channels


def check_init_disparity(value: float | None) -> float | None:
    """Validates an initial disparity: None or a float strictly inside (0, 1)."""
    if value is None:
        return None
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"init_disparity must lie in (0, 1) (a sigmoid output), got {value}")
    return value


def check_scales(scales: Sequence[int]) -> tuple[int, ...]:
    """Returns ``scales`` as a tuple; raises ``ValueError`` unless it is ``0..n-1`` with 1 <= n <= 4."""
    scales = tuple(int(s) for s in scales)
    if scales != tuple(range(len(scales))) or not 1 <= len(scales) <= 4:
        raise ValueError(f"scales must be 0..n-1 with n in 1..4, got {scales}")
    return scales


class DepthDecoder(keras.layers.Layer):
    """U-Net style decoder with reflection-padded 3x3 convs, ELU, nearest x2 upsampling and skips.

    For i = 4..0: ``upconv_i_0`` (ConvBlock), nearest x2, concat the skip ``features[i-1]`` (i > 0),
    ``upconv_i_1`` (ConvBlock); at scales i in ``scales``: ``disp_i = sigmoid(dispconv_i(x))``.
    Decoder channels ``[16, 32, 64, 128, 256]`` (the paper's, `NUM_CH_DEC`) unless ``num_ch_dec``
    says otherwise; no BatchNorm.

    Args:
      num_ch_enc: channels of the 5 encoder features.
      scales: output scales ``0..n-1``.
      init: ``"torch"`` (PyTorch default init) or ``"keras"``.
      init_disparity: None (reference init: bias ``U(+-1/sqrt(fan_in))``, so every output starts near
        sigmoid(0) = 0.5) or p in (0, 1): the disparity convs' biases start at ``logit(p)``, so the
        outputs start near p. Only the initial values change (same variables, same checkpoints).
      layout: ``"train"`` or ``"xnnpack"`` (`layers.LAYOUTS`): which ops write the reflection
        padding and the nearest x2 upsampling. Same weights, same outputs.
      num_ch_dec: the decoder's channels at scales 0..4. Halving them, ``(8, 16, 32, 64, 128)``,
        takes the decoder's 3x3 convolutions to about a third of their FLOPs (a quarter where both
        sides are decoder channels, a half where a skip comes in): the phone-class setting.

    Call args:
      features: 5 tensors ``[B, H/2^(k+1), W/2^(k+1), num_ch_enc[k]]``.

    Returns:
      Tuple of float32 disparities in (0, 1), scale 0 first: ``[B, H/2^s, W/2^s, 1]``.
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int] = (64, 64, 128, 256, 512),
        scales: Sequence[int] = (0, 1, 2, 3),
        init: str = "torch",
        init_disparity: float | None = None,
        layout: str = "train",
        num_ch_dec: Sequence[int] = NUM_CH_DEC,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(num_ch_enc) != 5:
            raise ValueError(f"num_ch_enc must have 5 entries, got {num_ch_enc}")
        L.check_init(init)
        self.num_ch_enc = tuple(int(c) for c in num_ch_enc)
        self.scales = check_scales(scales)
        self.init = init
        self.layout = layout = L.check_layout(layout)
        self.num_ch_dec = dec = check_decoder_channels(num_ch_dec)
        for i in range(4, -1, -1):
            in_ch = self.num_ch_enc[-1] if i == 4 else dec[i + 1]
            setattr(self, f"upconv_{i}_0",
                    L.ConvBlock(in_ch, dec[i], init, layout, name=f"upconv_{i}_0"))
            in_ch = dec[i] + (self.num_ch_enc[i - 1] if i > 0 else 0)
            setattr(self, f"upconv_{i}_1",
                    L.ConvBlock(in_ch, dec[i], init, layout, name=f"upconv_{i}_1"))
        self.init_disparity = check_init_disparity(init_disparity)
        for s in self.scales:
            dispconv = L.ReflectConv3x3(dec[s], 1, init, layout, name=f"dispconv_{s}")
            if self.init_disparity is not None:  # read by Conv2D.build(), which has not run yet
                logit = math.log(self.init_disparity / (1.0 - self.init_disparity))
                dispconv.conv.bias_initializer = keras.initializers.Constant(logit)
            setattr(self, f"dispconv_{s}", dispconv)

    def call(self, features):
        if len(features) != 5:
            raise ValueError(f"features must be the 5 encoder outputs, got {len(features)}")
        disps = {}
        upsample = (L.upsample_nearest_2x_depth_to_space if self.layout == "xnnpack"
                    else L.upsample_nearest_2x)
        x = features[-1]
        for i in range(4, -1, -1):
            x = upsample(getattr(self, f"upconv_{i}_0")(x))
            if i > 0:
                x = tf.concat([x, tf.cast(features[i - 1], x.dtype)], axis=-1)
            x = getattr(self, f"upconv_{i}_1")(x)
            if i in self.scales:
                logits = tf.cast(getattr(self, f"dispconv_{i}")(x), tf.float32)
                disps[i] = tf.sigmoid(logits)
        return tuple(disps[s] for s in self.scales)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(num_ch_enc=list(self.num_ch_enc), scales=list(self.scales), init=self.init,
                      init_disparity=self.init_disparity, layout=self.layout,
                      num_ch_dec=list(self.num_ch_dec))
        return config
