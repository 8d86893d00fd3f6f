"""Flip post-processing: blend weights by hand, blend formula, flip round trip."""

from __future__ import annotations

import numpy as np
import pytest

from md2tf.evaluation import postprocess


def test_ramp_weights_hand_values():
    # W = 21: x = k / 20. left = 1 - clip(20 (x - 0.05), 0, 1) = 1 - clip(k - 1, 0, 1)
    left, right = postprocess.edge_ramp_weights(21)
    np.testing.assert_allclose(left[:3], [1.0, 1.0, 0.0])
    assert np.all(left[2:] == 0)
    np.testing.assert_array_equal(right, left[::-1])


def test_ramp_weights_fine_grid():
    width = 201  # x = k / 200: ramp from k = 10 (x = 0.05) to k = 20 (x = 0.10)
    left, right = postprocess.edge_ramp_weights(width)
    assert np.all(left[:11] == 1.0)
    np.testing.assert_allclose(left[15], 0.5, atol=1e-6)
    assert np.all(left[20:] == 0.0)
    assert np.all(right[-11:] == 1.0) and np.all(right[:-20] == 0.0)
    assert np.all(left + right <= 1.0)


def test_blend_regions():
    b, h, w = 2, 3, 201
    disp = np.full((b, h, w), 2.0, np.float32)
    other = np.full((b, h, w), 4.0, np.float32)
    out = postprocess.blend_flipped(disp, other)
    assert out.shape == (b, h, w)
    np.testing.assert_allclose(out[:, :, :11], 4.0)  # left border: mirrored-image prediction
    np.testing.assert_allclose(out[:, :, -11:], 2.0)  # right border: original prediction
    np.testing.assert_allclose(out[:, :, 20:-20], 3.0)  # middle: mean
    np.testing.assert_allclose(out[:, :, 15], 4.0 * 0.5 + 3.0 * 0.5, atol=1e-5)


def test_blend_with_channel_axis_matches_without(rng):
    a = rng.uniform(size=(1, 4, 40, 1)).astype(np.float32)
    c = rng.uniform(size=(1, 4, 40, 1)).astype(np.float32)
    np.testing.assert_allclose(postprocess.blend_flipped(a, c)[..., 0], postprocess.blend_flipped(a[..., 0], c[..., 0]))


def test_post_process_batch_of_symmetric_predictor_is_identity(rng):
    """A predictor that is flip-equivariant gives the same map back."""
    images = rng.uniform(size=(2, 4, 30, 3)).astype(np.float32)

    def predict(x):
        return x.mean(axis=-1, keepdims=True)

    out = postprocess.post_process_batch(predict, images)
    np.testing.assert_allclose(out, predict(images), rtol=1e-6)


def test_post_process_batch_uses_flipped_prediction_on_the_left(rng):
    images = rng.uniform(size=(1, 2, 40, 3)).astype(np.float32)
    calls = []

    def predict(x):
        calls.append(x.shape)
        out = np.zeros(x.shape[:3] + (1,), np.float32)
        out[1:] = 1.0  # the mirrored image predicts 1 everywhere
        return out

    out = postprocess.post_process_batch(predict, images)
    assert calls == [(2, 2, 40, 3)]
    assert out[0, 0, 0, 0] == 1.0 and out[0, 0, -1, 0] == 0.0


def test_blend_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        postprocess.blend_flipped(np.ones((1, 2, 8)), np.ones((1, 2, 9)))
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        postprocess.blend_flipped(np.ones((2, 8)), np.ones((2, 8)))
