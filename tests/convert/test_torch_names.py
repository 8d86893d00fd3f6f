"""The PyTorch name map (md2tf.convert.torch_names): every weight named once, reference names."""

from __future__ import annotations

import pytest

from md2tf import models
from md2tf.convert.torch_names import torch_layers
from md2tf.convert.torch_weights import torch_variable_map


@pytest.mark.parametrize("make", [
    lambda: models.DepthNet(18, init="keras").build_for_shape(),
    lambda: models.DepthNet(50, scales=(0, 1), init="keras").build_for_shape(),
    lambda: models.PoseNet(18, init="keras").build_for_shape(),
], ids=["depth18", "depth50_two_scales", "pose18"])
def test_every_variable_has_exactly_one_torch_name(make):
    net = make()
    mapping = torch_variable_map(net)
    named = [id(var) for var, _ in mapping.values()]
    assert len(named) == len(set(named))  # no variable under two names
    assert set(named) == {id(v) for v in net.weights}  # and none left out (BN statistics included)


def test_reference_names():
    depth = dict(torch_layers(models.DepthNet(18, scales=(0, 1, 2, 3), init="keras")))
    assert {"encoder.conv1", "encoder.bn1", "encoder.layer2.0.downsample.0",
            "encoder.layer4.1.bn2", "decoder.0.conv.conv", "decoder.9.conv.conv",
            "decoder.10.conv", "decoder.13.conv"} <= set(depth)
    assert depth["decoder.0.conv.conv"].name == "conv"  # upconv_4_0's convolution
    pose = dict(torch_layers(models.PoseNet(18, init="keras")))
    assert [n for n in pose if n.startswith("net.")] == ["net.0", "net.1", "net.2", "net.3"]


def test_unknown_objects_are_refused():
    with pytest.raises(ValueError, match="not an md2tf network"):
        torch_layers(object())
