"""A tiny stand-in with the DepthNet contract (float [B,H,W,3] in [0,1] -> tuple of sigmoid disparities)."""

from __future__ import annotations

import keras
import tensorflow as tf


class TinyDepthNet(keras.Model):
    """Two scales: ``[B, H, W, 1]`` then ``[B, H/2, W/2, 1]``; reflect pads, nearest upsampling."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = keras.layers.Conv2D(8, 3, strides=2, padding="valid", activation="elu")
        self.conv2 = keras.layers.Conv2D(8, 3, padding="valid", activation="elu")
        self.up = keras.layers.UpSampling2D(2)
        self.head0 = keras.layers.Conv2D(1, 3, padding="valid", activation="sigmoid")
        self.head1 = keras.layers.Conv2D(1, 3, padding="valid", activation="sigmoid")

    def call(self, x, training=None):
        def pad(t):
            return tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")

        x = (x - 0.45) / 0.225
        f = self.conv1(tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]]))
        f = self.conv2(pad(f))
        return self.head0(pad(self.up(f))), self.head1(pad(f))


def tiny_depth_net(height: int, width: int) -> TinyDepthNet:
    keras.utils.set_random_seed(3)
    net = TinyDepthNet()
    net(tf.zeros([1, height, width, 3]))
    return net
