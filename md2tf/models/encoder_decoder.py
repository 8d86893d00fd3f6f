"""The shared base of `DepthNet` and `PoseNet`: an encoder followed by a decoder."""

from __future__ import annotations

from typing import TypeVar

import keras
import tensorflow as tf

_Net = TypeVar("_Net", bound="EncoderDecoderNet")


class EncoderDecoderNet(keras.Model):
    """A network made of ``self.encoder`` (`md2tf.models.encoders.build_encoder`) and then ``self.decoder``.

    Subclasses build both in ``__init__``, set `input_channels` and define ``call`` and
    ``get_config`` (whose keys are the ``__init__`` arguments, so `from_config` is ``cls(**config)``).
    """

    #: Channels of the network input: 3 for an RGB image, 6 for an image pair.
    input_channels: int = 3

    def build_for_shape(self: _Net, height: int = 64, width: int = 64) -> _Net:
        """Creates all variables by running one zero input ``[1, height, width, input_channels]``.

        Returns:
          ``self``.
        """
        self(tf.zeros([1, height, width, self.input_channels]), training=False)
        return self

    @classmethod
    def from_config(cls, config: dict) -> EncoderDecoderNet:
        return cls(**config)
