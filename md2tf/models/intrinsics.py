"""Learned camera intrinsics: one pinhole K per camera, trained by the photometric loss.

Gordon et al., "Depth from Videos in the Wild" (ICCV 2019), Sec. 3: the view-synthesis loss is
differentiable in K, so an uncalibrated camera's focal lengths and principal point can be learned
with the networks. Here K is not predicted per image pair (their Sec. 3.2 head) but held as four
numbers per camera (a video file, a frame folder, a KITTI date/camera): a camera's K does not change
from frame to frame, and four shared numbers are far better conditioned than a per-frame guess.

Parameterisation (per camera, all in units of the image size, so one K serves every resolution):

* ``fx / W = softplus(a)``, ``fy / H = softplus(b)``: positive by construction.
* ``cx = (W - 1) / 2 + ox * W``, ``cy = (H - 1) / 2 + oy * H``: offsets from the exact image centre
  under the pixel-centre convention of `md2tf.geometry` (``ox = oy = 0`` is the centre). Written as
  normalised values, ``cx / W = 0.5 + ox`` is the resolution-independent principal point
  ``(cx + 0.5) / W`` (a half-pixel-centre resize keeps it), so the paper's 0.5 is the exact centre.

A horizontal flip mirrors the principal point, ``cx -> W - 1 - cx`` (``ox -> -ox``); focal lengths
are unchanged. The layer's output is K in pixels of the scale-0 image; the loss scales it per
pyramid level (`md2tf.geometry.scale_intrinsics_to_level`) exactly as a fixed K.

The start K is the dataset's (`md2tf.data.datasets.base.Dataset.start_intrinsics`: a calibration,
``intrinsics.json``, else `md2tf.data.datasets.folder.default_normalized_intrinsics`, a 60 degree
horizontal field of view).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _softplus_inverse(y: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(y))


class LearnedIntrinsics(keras.layers.Layer):
    """Trainable pinhole intrinsics of ``num_cameras`` cameras (module docstring).

    Args:
      num_cameras: C >= 1.
      init_normalized_K: ``[C, 3, 3]`` (or ``[3, 3]`` for all cameras) start K, normalised
        (fx, cx divided by the width; fy, cy by the height).

    Weights:
      ``focal``: ``[C, 2]`` softplus-inverse of ``(fx / W, fy / H)``.
      ``principal_offset``: ``[C, 2]`` ``(ox, oy)``, the principal point's offset from the image
        centre in units of (W, H).
    """

    def __init__(self, num_cameras: int, init_normalized_K, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_cameras < 1:
            raise ValueError(f"num_cameras must be >= 1, got {num_cameras}")
        self.num_cameras = int(num_cameras)
        init = np.asarray(init_normalized_K, np.float64)
        if init.shape == (3, 3):
            init = np.broadcast_to(init, (self.num_cameras, 3, 3))
        if init.shape != (self.num_cameras, 3, 3):
            raise ValueError(f"init_normalized_K must be [C, 3, 3] with C = {num_cameras} (or [3, 3]), "
                             f"got {list(init.shape)}")
        focal = init[:, [0, 1], [0, 1]]
        if not np.all(np.isfinite(init)) or np.any(focal <= 0):
            raise ValueError(f"init_normalized_K needs finite, positive focal lengths, got {focal.tolist()}")
        self._init_K = init.astype(np.float32)
        self.focal = self.add_weight(
            shape=(self.num_cameras, 2), name="focal",
            initializer=keras.initializers.Constant(_softplus_inverse(focal)))
        self.principal_offset = self.add_weight(
            shape=(self.num_cameras, 2), name="principal_offset",
            initializer=keras.initializers.Constant(init[:, [0, 1], [2, 2]] - 0.5))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_cameras": self.num_cameras,
                "init_normalized_K": self._init_K.tolist()}

    def normalized(self) -> tf.Tensor:
        """``[C, 4]`` float32 ``(fx / W, fy / H, cx_n, cy_n)`` with ``cx_n = 0.5 + ox`` (module
        docstring): the values `intrinsics_learned.json` records."""
        focal = tf.math.softplus(tf.cast(self.focal, tf.float32))
        return tf.concat([focal, 0.5 + tf.cast(self.principal_offset, tf.float32)], axis=1)

    def call(self, camera_index, *, height: int, width: int, flipped=None) -> tf.Tensor:
        """K in pixels of an ``height x width`` image for each sample's camera.

        ``layer(camera_index, height=H, width=W, flipped=flipped)`` (Keras passes only tensors
        positionally).

        Args:
          camera_index: int ``[B]`` index into the C cameras.
          height, width: the scale-0 image size in pixels.
          flipped: optional bool ``[B]``: the sample was mirrored horizontally, so its principal
            point is ``W - 1 - cx``.

        Returns:
          float32 ``[B, 3, 3]`` intrinsics in pixels (integer pixel coordinates at pixel centres).
        """
        camera_index = tf.convert_to_tensor(camera_index)
        tf.debugging.assert_non_negative(
            camera_index, message="LearnedIntrinsics: a sample's camera is not among the learned ones")
        # A one-hot product rather than a gather: dense gradients (IndexedSlices would not pass the
        # trainer's finiteness check or a plain all-reduce).
        select = tf.one_hot(tf.cast(camera_index, tf.int32), self.num_cameras, dtype=tf.float32)
        focal = tf.matmul(select, tf.math.softplus(tf.cast(self.focal, tf.float32)))
        offset = tf.matmul(select, tf.cast(self.principal_offset, tf.float32))
        ox, oy = offset[:, 0], offset[:, 1]
        if flipped is not None:
            ox = tf.where(tf.cast(flipped, tf.bool), -ox, ox)  # cx -> W - 1 - cx
        w, h = float(width), float(height)
        fx, fy = focal[:, 0] * w, focal[:, 1] * h
        cx, cy = (w - 1.0) / 2.0 + ox * w, (h - 1.0) / 2.0 + oy * h
        zero, one = tf.zeros_like(fx), tf.ones_like(fx)
        k = tf.stack([fx, zero, cx, zero, fy, cy, zero, zero, one], axis=-1)
        return tf.reshape(k, [-1, 3, 3])
