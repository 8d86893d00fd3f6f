"""Pose decoder (paper Table 5): last encoder feature -> axis-angle and translation."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from md2tf.models import layers as L

# The reference scales the mean-pooled output by 0.01 so that initial poses are near identity.
POSE_SCALE = 0.01


class PoseDecoder(keras.layers.Layer):
    """1x1 squeeze (ReLU), two 3x3 convs (zero pad 1, ReLU), 1x1 to ``6 * N``, spatial mean, x0.01.

    Args:
      num_ch_enc: channels of the 5 encoder features (only the last is used).
      num_frames_to_predict_for: N poses predicted per input. The reference predicts 2 for pairs (its
        checkpoints have a 12-channel last conv) and uses only the first.
      init: ``"torch"`` (PyTorch default init) or ``"keras"``.

    Call args:
      features: the 5 pose-encoder features; ``features[-1]`` is ``[B, h, w, num_ch_enc[-1]]``.

    Returns:
      ``(axis_angle, translation)``, float32 ``[B, N, 3]`` each (radians; training units).
    """

    def __init__(
        self,
        num_ch_enc: Sequence[int] = (64, 64, 128, 256, 512),
        num_frames_to_predict_for: int = 2,
        init: str = "torch",
        **kwargs,
    ):
        super().__init__(**kwargs)
        L.check_init(init)
        if num_frames_to_predict_for < 1:
            raise ValueError(f"num_frames_to_predict_for must be >= 1, got {num_frames_to_predict_for}")
        self.num_ch_enc = tuple(int(c) for c in num_ch_enc)
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.init = init

        def conv(filters, kernel, fan_in, name):
            k_init, b_init = L.default_conv_initializers(init, fan_in)
            return keras.layers.Conv2D(
                filters, kernel, padding="same", kernel_initializer=k_init, bias_initializer=b_init,
                name=name,
            )

        c = self.num_ch_enc[-1]
        self.squeeze = conv(256, 1, c, "squeeze")
        self.pose_0 = conv(256, 3, 256 * 9, "pose_0")
        self.pose_1 = conv(256, 3, 256 * 9, "pose_1")
        self.pose_2 = conv(6 * num_frames_to_predict_for, 1, 256, "pose_2")

    def call(self, features):
        x = tf.nn.relu(self.squeeze(features[-1]))
        x = tf.nn.relu(self.pose_0(x))
        x = tf.nn.relu(self.pose_1(x))
        x = tf.cast(self.pose_2(x), tf.float32)
        x = POSE_SCALE * tf.reduce_mean(x, axis=[1, 2])
        x = tf.reshape(x, [-1, self.num_frames_to_predict_for, 6])
        return x[..., :3], x[..., 3:]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_ch_enc=list(self.num_ch_enc),
            num_frames_to_predict_for=self.num_frames_to_predict_for,
            init=self.init,
        )
        return config
