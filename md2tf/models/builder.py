"""`build`: the depth and pose networks of a run from its `ModelConfig`."""

from __future__ import annotations

from md2tf.config import ModelConfig
from md2tf.models.depth_net import DepthNet
from md2tf.models.pose_net import PoseNet


def build(
    model_config: ModelConfig,
    use_pose_net: bool = True,
    synchronized_bn: bool = False,
) -> tuple[DepthNet, PoseNet | None]:
    """Builds the depth (and pose) networks of a run, with all variables created.

    Call it inside ``strategy.scope()`` when distributing. The weights are freshly initialised;
    ``model_config.encoder_weights`` (ImageNet) is loaded by ``md2tf.convert.init_encoders``
    (torchvision files for ResNets, Keras weights for MobileNetV3).

    Args:
      model_config: `md2tf.config.ModelConfig`.
      use_pose_net: build a `PoseNet` too (False for stereo-only runs; see
        ``ExperimentConfig.use_pose_net``).
      synchronized_bn: cross-replica BatchNormalization (multi-replica training).

    Returns:
      ``(depth_net, pose_net or None)``.
    """
    depth_net = DepthNet(
        model_config.num_layers, model_config.scales, model_config.init, synchronized_bn,
        init_disparity=model_config.init_disparity, min_depth=model_config.min_depth,
        max_depth=model_config.max_depth, encoder=model_config.encoder,
        decoder_channels=model_config.decoder_channels,
    ).build_for_shape()
    pose_net = None
    if use_pose_net:
        pose_net = PoseNet(
            model_config.pose_num_layers, model_config.init, synchronized_bn,
            encoder=model_config.pose_encoder,
        ).build_for_shape()
    return depth_net, pose_net
