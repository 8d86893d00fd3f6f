"""Test-time pose refinement: the pose network's relative poses polished by direct image alignment.

A pose network regresses motion from two images. On footage unlike its training drives it can be
off in step length and heading while the depth network still holds: on the synthetic world, a
speed-supervised model's depth was 2 % from metric on the test drive while its pose network's steps
were 10-13 % too long (docs/metric.md). With the target frame's depth fixed, the training objective's
reprojection error (the paper's Sec. 3.1, Eq. 1-2: the source warped into the target, scored by
``pe = a/2 (1 - SSIM) + (1 - a) L1``, ``a = 0.85``) depends on the six pose parameters alone.
Minimising it for each frame pair, from the network's pose, is direct image alignment, as in
direct visual odometry (Engel et al., "Direct Sparse Odometry", TPAMI 2018); it puts the
translation in the depth's units and its heading where the images agree. It is no cure-all: a
pose network that already agrees with its depth can lose a little to the depth's own errors.

Pixels whose projection leaves the later image carry no information about the pose (border padding
gives them a constant colour and no gradient); they are left out of each pair's mean, as the paper
keeps such pixels from deciding its training loss (Sec. 3.3: the minimum over sources).

The correction starts at zero: ``T = [R(w) R_net | t_net + v]``, Adam on ``(w, v)`` per pair. The
translation ``v`` is optimised in units of the target's median depth, so that one learning rate
serves metric and scale-free models alike (a sideways step of ``v`` moves the image about as a
rotation of ``v / depth`` does).

``length_only`` keeps the pose network's rotation and direction of travel and refines only the step
length: ``T = [R_net | t_net (1 + u / |t_net|)]``, one number ``u`` per pair in the same unit. For a
pose network whose heading already holds and whose step length does not carry over to new footage
(a speed-supervised one trained with the auto-mask warm-up, docs/metric.md), the full correction
trades its good heading for the depth's errors; this one cannot.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from md2tf import geometry
from md2tf.losses.photometric import photometric_error

#: ``length_only``: a pose network step shorter than this fraction of the target's median depth is
#: a standing camera and is left as it is. Its direction is noise, and its parallax (under a fifth of
#: a pixel at 224 px wide and KITTI's field of view) too small for the images to give a length, while
#: Adam, which normalises its steps, would random-walk along that direction.
STANDING = 1e-3


def _median(depth: tf.Tensor) -> tf.Tensor:
    """Median of each ``[B, H, W, 1]`` map (the lower middle value), ``[B]``."""
    flat = tf.reshape(depth, [tf.shape(depth)[0], -1])
    count = tf.shape(flat)[1]
    return tf.sort(flat, axis=1)[:, (count - 1) // 2]


def _rotation(w: tf.Tensor) -> tf.Tensor:
    """Rodrigues' rotation ``I + a [w]x + b [w]x^2`` of ``[B, 3]`` vectors, with the series of
    ``a = sin(t) / t`` and ``b = (1 - cos(t)) / t^2`` near ``t = |w| = 0``, so that its gradient at
    the identity is the exact one (`geometry.axis_angle_to_matrix` normalises the axis, whose
    gradient vanishes there), ``[B, 3, 3]``."""
    theta2 = tf.reduce_sum(tf.square(w), axis=-1)[:, None, None]
    small = theta2 < 1e-6
    theta = tf.sqrt(tf.where(small, tf.ones_like(theta2), theta2))
    a = tf.where(small, 1.0 - theta2 / 6.0, tf.sin(theta) / theta)
    b = tf.where(small, 0.5 - theta2 / 24.0, (1.0 - tf.cos(theta)) / tf.square(theta))
    x, y, z = w[:, 0], w[:, 1], w[:, 2]
    zero = tf.zeros_like(x)
    skew = tf.reshape(tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1), [-1, 3, 3])
    return tf.eye(3, dtype=w.dtype)[None] + a * skew + b * tf.matmul(skew, skew)


@tf.function(reduce_retracing=True)
def _align(target: tf.Tensor, source: tf.Tensor, depth: tf.Tensor, K: tf.Tensor,
           start: tf.Tensor, steps: tf.Tensor, learning_rate: tf.Tensor, length_only: bool = False) -> tf.Tensor:
    """Adam on the 6-vector correction of every pair (``length_only``: its 4th entry alone, the step
    length; the others get no gradient and stay 0); returns the refined ``[B, 4, 4]``."""
    inv_K = tf.linalg.inv(K)
    unit = tf.reshape(_median(depth), [-1, 1])  # [B, 1]: translation unit (target's median depth)
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def corrected(delta):
        if length_only:  # along the network's own direction, for a camera the network sees moving
            t = start[:, :3, 3:]  # [B, 3, 1]
            length = tf.norm(t, axis=1, keepdims=True)  # [B, 1, 1]
            moving = length > STANDING * unit[:, :, None]
            step = t / tf.maximum(length, 1e-12) * (delta[:, 3:4] * unit)[:, :, None]
            top = tf.concat([start[:, :3, :3], t + tf.where(moving, step, tf.zeros_like(step))], axis=-1)
            return tf.concat([top, start[:, 3:]], axis=1)
        rotation = _rotation(delta[:, :3])  # [B, 3, 3]
        top = tf.concat([tf.matmul(rotation, start[:, :3, :3]),
                         start[:, :3, 3:] + (delta[:, 3:] * unit)[:, :, None]], axis=-1)
        return tf.concat([top, start[:, 3:]], axis=1)

    points = geometry.backproject(depth, inv_K)
    height, width = tf.cast(tf.shape(source)[1], tf.float32), tf.cast(tf.shape(source)[2], tf.float32)

    def loss_of(delta):
        coords = geometry.project(points, K, corrected(delta))
        warped = geometry.bilinear_sample(source, coords)
        inside = tf.cast((coords[..., :1] >= 0) & (coords[..., :1] <= width - 1)
                         & (coords[..., 1:] >= 0) & (coords[..., 1:] <= height - 1), tf.float32)
        inside = tf.stop_gradient(inside)
        error = tf.reduce_sum(photometric_error(warped, target) * inside, axis=[1, 2, 3])
        # Per pair: the sum over pairs keeps each pair's gradient its own.
        return tf.reduce_sum(error / tf.maximum(tf.reduce_sum(inside, axis=[1, 2, 3]), 1.0))

    def body(i, delta, m, v):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            loss = loss_of(delta)
        g = tape.gradient(loss, delta)
        m = beta1 * m + (1.0 - beta1) * g
        v = beta2 * v + (1.0 - beta2) * tf.square(g)
        t = tf.cast(i + 1, tf.float32)
        step = learning_rate * (m / (1.0 - beta1**t)) / (tf.sqrt(v / (1.0 - beta2**t)) + eps)
        return i + 1, delta - step, m, v

    zeros = tf.zeros([tf.shape(start)[0], 6], tf.float32)
    _, delta, _, _ = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), zeros, zeros, zeros))
    return corrected(delta)


def align_pairs(target: np.ndarray, source: np.ndarray, target_depth, K_normalized: np.ndarray,
                start: np.ndarray, steps: int, learning_rate: float, length_only: bool = False) -> np.ndarray:
    """Refines a batch of relative poses by photometric alignment with the target frames' depth.

    Args:
      target: float32 ``[B, H, W, 3]`` earlier frames in [0, 1].
      source: float32 ``[B, H, W, 3]`` later frames in [0, 1].
      target_depth: ``[B, H, W, 1]`` depth of ``target`` in the poses' units.
      K_normalized: ``[3, 3]`` normalised intrinsics of the frames (fx, cx / width; fy, cy / height).
      start: ``[B, 4, 4]`` ``next_from_previous`` (the pose network's; they map points of the
        target's camera into the source's).
      steps: Adam steps per pair (``EvalConfig.pose_refine_steps``); 0 returns ``start``.
      learning_rate: Adam's step, in radians and fractions of the target's median depth
        (``EvalConfig.pose_refine_lr``).
      length_only: refine only the step length along ``start``'s direction, keeping its rotation
        (``EvalConfig.pose_refine_length_only``).

    Returns:
      ``[B, 4, 4]`` float64 refined ``next_from_previous``.

    Raises:
      ValueError: if ``start`` is not ``[B, 4, 4]`` for the B pairs, or ``steps`` < 0.
    """
    start = np.asarray(start, np.float64)
    if start.shape != (len(target), 4, 4):
        raise ValueError(f"poses must have shape [{len(target)}, 4, 4] for the pairs, got {list(start.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if steps == 0:
        return start
    height, width = np.shape(target)[1:3]
    K = geometry.scale_intrinsics(np.asarray(K_normalized, np.float32), height, width)
    K = tf.tile(tf.convert_to_tensor(K, tf.float32)[None], [len(target), 1, 1])
    refined = _align(tf.constant(target, tf.float32), tf.constant(source, tf.float32),
                     tf.cast(target_depth, tf.float32), K, tf.constant(start, tf.float32),
                     tf.constant(steps, tf.int32), tf.constant(learning_rate, tf.float32), bool(length_only))
    return np.asarray(refined, np.float64)
