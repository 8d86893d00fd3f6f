"""The decoder's ``xnnpack`` layout: reflection padding as slices, upsampling as DEPTH_TO_SPACE."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.models import layers as L

LAYOUT = {"layout": "xnnpack"}


@pytest.mark.parametrize("pad", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 4, 5, 3), (1, 7, 4, 2)])
def test_reflect_pad_slices_matches_numpy_reflect(pad, shape):
    x = np.random.default_rng(pad).normal(size=shape).astype(np.float32)
    ref = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)], mode="reflect")  # edge not repeated
    np.testing.assert_array_equal(L.reflect_pad_slices(tf.constant(x), pad).numpy(), ref)
    np.testing.assert_array_equal(L.reflect_pad(tf.constant(x), pad).numpy(), ref)


def test_reflect_pad_slices_pad_1_uses_rows_1_and_h_minus_2():
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)  # value = 4 * row + column
    out = L.reflect_pad_slices(tf.constant(x), 1).numpy()[0, ..., 0]
    np.testing.assert_array_equal(out[0, 1:-1], x[0, 1, :, 0])  # top = row 1
    np.testing.assert_array_equal(out[-1, 1:-1], x[0, 1, :, 0])  # bottom = row H-2 (= 1 for H=3)
    np.testing.assert_array_equal(out[1:-1, 0], x[0, :, 1, 0])  # left = column 1
    np.testing.assert_array_equal(out[1:-1, -1], x[0, :, 2, 0])  # right = column W-2
    assert out[0, 0] == x[0, 1, 1, 0]  # corner: row 1, column 1


def test_reflect_pad_slices_with_unknown_height_and_width():
    fn = tf.function(lambda t: L.reflect_pad_slices(t, 1),
                     input_signature=[tf.TensorSpec([1, None, None, 2], tf.float32)])
    x = np.random.default_rng(0).normal(size=(1, 5, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(fn(tf.constant(x)).numpy(),
                                  np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect"))


def test_reflect_pad_slices_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        L.reflect_pad_slices(tf.zeros([4, 4, 3]), 1)
    with pytest.raises(ValueError, match="H, W > 2"):
        L.reflect_pad_slices(tf.zeros([1, 2, 8, 3]), 2)
    with pytest.raises(ValueError, match="pad must be >= 1"):
        L.reflect_pad_slices(tf.zeros([1, 4, 4, 3]), 0)


def test_upsample_depth_to_space_matches_numpy_repeat():
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 4)).astype(np.float32)
    ref = x.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(L.upsample_nearest_2x_depth_to_space(tf.constant(x)).numpy(), ref)


def test_upsample_depth_to_space_gradient_is_the_2x2_block_sum():
    x = tf.constant(np.random.default_rng(2).normal(size=(1, 2, 3, 2)).astype(np.float32))
    dy = np.random.default_rng(3).normal(size=(1, 4, 6, 2)).astype(np.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = L.upsample_nearest_2x_depth_to_space(x)
    grad = tape.gradient(y, x, output_gradients=tf.constant(dy)).numpy()
    np.testing.assert_allclose(grad, dy.reshape(1, 2, 2, 3, 2, 2).sum(axis=(2, 4)), rtol=1e-6)


@pytest.fixture(scope="module")
def net_and_layout_clone():
    net = models.DepthNet(18, init="keras").build_for_shape(64, 96)
    clone = models.DepthNet.from_config({**net.get_config(), **LAYOUT})
    clone.build_for_shape(64, 96)
    clone.set_weights(net.get_weights())
    return net, clone


def test_layout_reaches_every_decoder_layer(net_and_layout_clone):
    net, clone = net_and_layout_clone
    dec = clone.decoder
    assert dec.layout == "xnnpack" and net.decoder.layout == "train"
    blocks = [getattr(dec, f"upconv_{i}_{j}") for i in range(5) for j in range(2)]
    assert all(b.conv.layout == "xnnpack" for b in blocks)
    assert all(getattr(dec, f"dispconv_{s}").layout == "xnnpack" for s in dec.scales)


def test_layout_clone_gives_the_same_float_outputs(net_and_layout_clone):
    net, clone = net_and_layout_clone
    x = tf.random.stateless_uniform([2, 64, 96, 3], seed=(7, 8))
    for a, b in zip(net(x), clone(x), strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-5)


def test_layout_is_in_the_config_and_validated(net_and_layout_clone):
    net, clone = net_and_layout_clone
    assert net.get_config()["layout"] == "train" and net.decoder.get_config()["layout"] == "train"
    assert clone.get_config() == {**net.get_config(), **LAYOUT}
    assert models.DepthNet.from_config(clone.get_config()).get_config() == clone.get_config()
    dec = models.DepthDecoder(scales=(0,), layout="xnnpack")
    assert type(dec).from_config(dec.get_config()).get_config() == dec.get_config()
    with pytest.raises(ValueError, match="layout must be one of"):
        models.DepthNet(layout="int8")
