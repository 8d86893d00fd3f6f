"""`init_disparity`: the depth decoder's initial sigmoid disparity (bias = logit(p))."""

import math

import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.config import ModelConfig


@pytest.mark.parametrize("p", [0.02, 0.3])
def test_biases_start_at_logit_and_outputs_near_p(p):
    tf.keras.utils.set_random_seed(0)
    net = models.DepthNet(18, init_disparity=p).build_for_shape(64, 64)
    for s in net.scales:
        bias = getattr(net.decoder, f"dispconv_{s}").conv.bias.numpy()
        np.testing.assert_allclose(bias, [math.log(p / (1 - p))], rtol=1e-6)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=[1, 2])
    for disp in net(images, training=False):
        median = float(np.median(disp.numpy()))
        # The random 3x3 kernels spread the logits a little around logit(p).
        assert abs(math.log(median / (1 - median)) - math.log(p / (1 - p))) < 0.5, (p, median)


def test_default_is_the_reference_init_near_one_half():
    tf.keras.utils.set_random_seed(0)
    net = models.DepthNet(18).build_for_shape(64, 64)
    assert net.init_disparity is None
    bias = net.decoder.dispconv_0.conv.bias.numpy()
    assert abs(float(bias[0])) <= 1 / math.sqrt(16 * 9)  # PyTorch default U(+-1/sqrt(fan_in))
    disp = net(tf.random.stateless_uniform([1, 64, 64, 3], seed=[3, 4]), training=False)[0]
    assert 0.3 < float(np.median(disp.numpy())) < 0.7


def test_config_round_trip_and_builder():
    net = models.DepthNet(18, scales=(0,), init_disparity=0.05)
    assert models.DepthNet.from_config(net.get_config()).init_disparity == 0.05
    depth_net, pose_net = models.build(ModelConfig(init_disparity=0.05), use_pose_net=False)
    assert pose_net is None and depth_net.init_disparity == 0.05


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 2.0])
def test_rejects_values_outside_the_open_unit_interval(bad):
    with pytest.raises(ValueError, match="init_disparity"):
        ModelConfig(init_disparity=bad)
    with pytest.raises(ValueError, match="init_disparity"):
        models.DepthNet(18, init_disparity=bad)
