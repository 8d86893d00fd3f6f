"""Distillation: a student depth network follows a trained teacher's depth (``--distill_from``).

A small network (the phone-class MobileNetV3 + light decoder) trained alone by the self-supervised
loss learns less than ResNet18 in the same steps; trained beside a frozen ResNet18 teacher, it also
gets a dense target at every pixel, including those where the photometric loss says little
(textureless road, occlusions, the near range). This is knowledge distillation (Hinton et al.,
"Distilling the Knowledge in a Neural Network", 2015), which Pilzer et al. ("Refine and Distill",
CVPR 2019) apply to self-supervised depth. The student keeps its own photometric loss and adds

    L_distill = 1/|S| * sum_{s in S} mean_pixels | log D_s - log D_teacher |

where ``D_s`` is the student's depth from its scale-``s`` disparity upsampled to the input resolution
(bilinear, as the paper's full-resolution multi-scale estimation does for the photometric loss) and
``D_teacher`` the teacher's scale-0 depth on the same (augmented) image. The log makes it a relative
error, the same at 2 m as at 50 m (as abs_rel weighs it), and the teacher's depth units carry over to
the student.

Pure TF, float32; no config, no networks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf


def distillation_loss(disparities: Sequence[tf.Tensor], teacher_depth: tf.Tensor,
                      disp_to_depth: Callable) -> tf.Tensor:
    """Mean over scales of the mean absolute log-depth difference to the teacher (module docstring).

    Args:
      disparities: the student's sigmoid disparities, scale 0 first, ``[B, H/2^s, W/2^s, 1]``.
      teacher_depth: ``[B, H, W, 1]`` the teacher's depth (in its own units; no gradient flows into it).
      disp_to_depth: the student's ``sigmoid disparity -> (scaled_disp, depth)``.

    Returns:
      float32 scalar.

    Raises:
      ValueError: if the teacher's depth is not ``[B, H, W, 1]`` at the student's scale-0 size.
    """
    teacher_depth = tf.stop_gradient(tf.cast(teacher_depth, tf.float32))
    size = disparities[0].shape[1:3]
    if teacher_depth.shape.rank != 4 or teacher_depth.shape[1:] != (*size, 1):
        raise ValueError(f"teacher depth must be [B, {size[0]}, {size[1]}, 1] (the student's scale 0), "
                         f"got {teacher_depth.shape}")
    log_teacher = tf.math.log(teacher_depth)
    terms = []
    for disp in disparities:
        disp = tf.cast(disp, tf.float32)
        if disp.shape[1:3] != size:
            disp = tf.image.resize(disp, size, method="bilinear")
        _, depth = disp_to_depth(disp)
        terms.append(tf.reduce_mean(tf.abs(tf.math.log(depth) - log_teacher)))
    return tf.add_n(terms) / len(terms)
