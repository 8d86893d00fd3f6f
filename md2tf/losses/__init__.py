"""The Monodepth2 self-supervised objective: photometric error, smoothness, auto-masking, multi-scale."""

from md2tf.losses.automask import min_reprojection
from md2tf.losses.compiled import xla_loss
from md2tf.losses.distillation import distillation_loss
from md2tf.losses.multiscale import LossOutputs, monodepth2_loss, scale_reprojection
from md2tf.losses.photometric import photometric_error, ssim
from md2tf.losses.smoothness import edge_aware_smoothness
from md2tf.losses.velocity import velocity_loss

__all__ = [
    "LossOutputs",
    "distillation_loss",
    "edge_aware_smoothness",
    "min_reprojection",
    "monodepth2_loss",
    "photometric_error",
    "scale_reprojection",
    "ssim",
    "velocity_loss",
    "xla_loss",
]
