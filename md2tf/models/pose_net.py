"""PoseNet: separate encoder (ResNet or MobileNetV3) on an image pair + pose decoder (pair -> relative
pose)."""

from __future__ import annotations

from md2tf.models.encoder_decoder import EncoderDecoderNet
from md2tf.models.encoders import build_encoder
from md2tf.models.pose_decoder import PoseDecoder


class PoseNet(EncoderDecoderNet):
    """Monodepth2's ``separate_resnet`` pose network, or the same with a MobileNetV3 encoder.

    Args:
      num_layers: pose encoder ResNet depth (18 or 50 in the reference; 34 also works;
        ``encoder="resnet"`` only).
      init: ``"torch"`` (reference initialisers) or ``"keras"`` (the ResNet encoder's and the
        decoder's; MobileNetV3 keeps Keras' own).
      synchronized_bn: cross-replica BatchNormalization in the encoder.
      num_frames_to_predict_for: poses the decoder predicts (2, as the reference; only the first is
        returned, the others exist so reference checkpoints load).
      encoder: ``"resnet"`` (the paper's), ``"mobilenet_v3_large"`` or ``"mobilenet_v3_small"``,
        built for 6 input channels (`md2tf.models.encoders.build_encoder`).

    Call args:
      pair: ``[B, H, W, 6]`` float RGB in [0, 1], the temporally earlier frame in channels 0..2.
      training: BN mode.

    Returns:
      ``(axis_angle, translation)``, float32 ``[B, 3]`` each: the motion between the two frames
      (axis-angle in radians, translation in training units). Turn into a matrix with
      ``md2tf.geometry.pose_to_matrix`` (see its docs for which direction and when to invert).
    """

    input_channels = 6

    def __init__(
        self,
        num_layers: int = 18,
        init: str = "torch",
        synchronized_bn: bool = False,
        num_frames_to_predict_for: int = 2,
        encoder: str = "resnet",
        **kwargs,
    ):
        kwargs.setdefault("name", "pose_net")
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.init = init
        self.synchronized_bn = synchronized_bn
        self.num_frames_to_predict_for = num_frames_to_predict_for
        self.encoder = build_encoder(encoder, num_layers, 2, init, synchronized_bn, name="encoder")
        self.encoder_name = encoder
        self.decoder = PoseDecoder(
            self.encoder.num_ch_enc, num_frames_to_predict_for, init, name="decoder"
        )

    def call(self, pair, training=None):
        if pair.shape.rank != 4 or (pair.shape[-1] is not None and pair.shape[-1] != 6):
            raise ValueError(f"pair must be [B, H, W, 6] (two RGB images), got shape {pair.shape}")
        axis_angle, translation = self.decoder(self.encoder(pair, training=training))
        return axis_angle[:, 0], translation[:, 0]

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "num_layers": self.num_layers,
            "init": self.init,
            "synchronized_bn": self.synchronized_bn,
            "num_frames_to_predict_for": self.num_frames_to_predict_for,
            "encoder": self.encoder_name,
        }
