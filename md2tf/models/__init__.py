"""Monodepth2 networks as Keras 3 subclassed models (NHWC).

- `DepthNet`: images ``[B, H, W, 3]`` in [0, 1] -> tuple of sigmoid disparities ``[B, H/2^s, W/2^s, 1]``.
- Encoders (`build_encoder`): `ResnetEncoder` (the paper's) or `MobileNetV3Encoder` (Keras' MobileNetV3
  large/small, ``--encoder``); both give five features at strides 2..32.
- `PoseNet`: pair ``[B, H, W, 6]`` (earlier frame first) -> ``(axis_angle [B, 3], translation [B, 3])``.
- `build(model_config, use_pose_net)` builds both (variables created; ImageNet weights and the
  PyTorch name map live in `md2tf.convert`).
- `LearnedIntrinsics`: trainable pinhole K per camera (``--intrinsics=learned``).
- `save_models` / `load_models`: the checkpoint format every tool reads (`md2tf.models.checkpoint`).
"""

from __future__ import annotations

from md2tf.models.builder import build
from md2tf.models.checkpoint import load_models, save_models
from md2tf.models.depth_decoder import DepthDecoder
from md2tf.models.depth_net import DepthNet
from md2tf.models.encoders import build_encoder
from md2tf.models.intrinsics import LearnedIntrinsics
from md2tf.models.mobilenet_encoder import MobileNetV3Encoder
from md2tf.models.pose_decoder import PoseDecoder
from md2tf.models.pose_net import PoseNet
from md2tf.models.resnet_encoder import ResnetEncoder, num_ch_enc

__all__ = [
    "DepthDecoder",
    "DepthNet",
    "LearnedIntrinsics",
    "MobileNetV3Encoder",
    "PoseDecoder",
    "PoseNet",
    "ResnetEncoder",
    "build",
    "build_encoder",
    "load_models",
    "num_ch_enc",
    "save_models",
]

