"""Learned camera intrinsics: one pinhole K per camera, trained by the photometric loss.

Gordon et al., "Depth from Videos in the Wild" (ICCV 2019), Sec. 3: the view-synthesis loss is
differentiable in K, so an uncalibrated camera's focal lengths and principal point can be learned
with the networks. Here K is not predicted per image pair (their Sec. 3.2 head) but held as four
numbers per camera (a video file, a frame folder, a KITTI date/camera): a camera's K does not change
from frame to frame, and four shared numbers are far better conditioned than a per-frame guess.

Parameterisation (per camera, all in units of the image size, so one K serves every resolution):

* ``fx / W = softplus(a)``, ``fy / H = softplus(b)``: positive by construction.
* ``cx = (0.5 + ox) * W``, ``cy = (0.5 + oy) * H``: offsets from the image centre. The normalised
  values ``cx / W = 0.5 + ox`` follow the one convention of every K in md2tf
  (`md2tf.geometry.scale_intrinsics`: pixels = normalised x size, the paper's centred K has 0.5), so
  a calibration starts the layer exactly and ``intrinsics_learned.json`` reads back exactly.

A horizontal flip mirrors the principal point about the pixel grid, ``cx -> W - 1 - cx`` (pixel
centres at integer coordinates, `md2tf.geometry`); focal lengths are unchanged. The layer's output is
K in pixels of the scale-0 image; the loss scales it per pyramid level
(`md2tf.geometry.scale_intrinsics_to_level`) exactly as a fixed K.

Its own learning rate: the layer holds its four numbers divided by ``learning_rate_scale`` and
multiplies them back, so under Adam (whose step is about the learning rate whatever the gradient's
size) K moves ``learning_rate_scale`` times as fast as the networks' weights with one optimizer and
one schedule. The networks' 1e-4 would need thousands of steps to move a focal length by 25 %.

The start K is the dataset's (`md2tf.data.datasets.base.Dataset.start_intrinsics`: a calibration,
``intrinsics.json``, else `md2tf.data.datasets.folder.default_normalized_intrinsics`, a 60 degree
horizontal field of view).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from md2tf.geometry.camera import mirror_principal_point


def _softplus_inverse(y: np.ndarray) -> np.ndarray:
    return np.log(np.expm1(y))


class LearnedIntrinsics(keras.layers.Layer):
    """Trainable pinhole intrinsics of ``num_cameras`` cameras (module docstring).

    Args:
      num_cameras: C >= 1.
      init_normalized_K: ``[C, 3, 3]`` (or ``[3, 3]`` for all cameras) start K, normalised
        (fx, cx divided by the width; fy, cy by the height).
      learning_rate_scale: > 0, how much faster than the networks K learns (module docstring).

    Weights (divided by ``learning_rate_scale``):
      ``focal``: ``[C, 2]`` softplus-inverse of ``(fx / W, fy / H)``.
      ``principal_offset``: ``[C, 2]`` ``(ox, oy)``, the principal point's offset from the image
        centre (normalised 0.5) in units of (W, H).
    """

    def __init__(self, num_cameras: int, init_normalized_K, learning_rate_scale: float = 1.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_cameras < 1:
            raise ValueError(f"num_cameras must be >= 1, got {num_cameras}")
        if not learning_rate_scale > 0:
            raise ValueError(f"learning_rate_scale must be > 0, got {learning_rate_scale}")
        self.num_cameras = int(num_cameras)
        self.learning_rate_scale = float(learning_rate_scale)
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
            initializer=keras.initializers.Constant(_softplus_inverse(focal) / self.learning_rate_scale))
        self.principal_offset = self.add_weight(
            shape=(self.num_cameras, 2), name="principal_offset",
            initializer=keras.initializers.Constant((init[:, [0, 1], [2, 2]] - 0.5) / self.learning_rate_scale))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_cameras": self.num_cameras,
                "init_normalized_K": self._init_K.tolist(), "learning_rate_scale": self.learning_rate_scale}

    def start_normalized(self) -> np.ndarray:
        """``[C, 4]`` float32 normalised ``(fx / W, fy / H, cx / W, cy / H)`` of the start K."""
        return self._init_K[:, [0, 1, 0, 1], [0, 1, 2, 2]]

    def _focal_and_offset(self) -> tuple[tf.Tensor, tf.Tensor]:
        """``[C, 2]`` float32 ``(fx / W, fy / H)`` and ``(ox, oy)``."""
        scale = self.learning_rate_scale
        return (tf.math.softplus(tf.cast(self.focal, tf.float32) * scale),
                tf.cast(self.principal_offset, tf.float32) * scale)

    def normalized(self) -> tf.Tensor:
        """``[C, 4]`` float32 normalised ``(fx / W, fy / H, cx / W, cy / H)`` (module docstring): the
        values `intrinsics_learned.json` records."""
        focal, offset = self._focal_and_offset()
        return tf.concat([focal, 0.5 + offset], axis=1)

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
        focal, offset = (tf.matmul(select, x) for x in self._focal_and_offset())
        w, h = float(width), float(height)
        fx, fy = focal[:, 0] * w, focal[:, 1] * h
        cx, cy = (0.5 + offset[:, 0]) * w, (0.5 + offset[:, 1]) * h
        zero, one = tf.zeros_like(fx), tf.ones_like(fx)
        k = tf.reshape(tf.stack([fx, zero, cx, zero, fy, cy, zero, zero, one], axis=-1), [-1, 3, 3])
        if flipped is not None:
            k = tf.where(tf.cast(flipped, tf.bool)[:, None, None], mirror_principal_point(k, w), k)
        return k
