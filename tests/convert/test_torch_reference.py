"""The PyTorch reference networks: one layout for the parity tests and the benchmark."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from md2tf import models  # noqa: E402
from md2tf.convert import load_torch_state_dict  # noqa: E402
from md2tf.convert import torch_reference as tr  # noqa: E402


def test_import_md2tf_convert_works_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import md2tf.convert\n"
        "assert 'md2tf.convert.torch_reference' not in sys.modules\n"
        "try:\n"
        "    import md2tf.convert.torch_reference\n"
        "except ImportError as e:\n"
        "    assert 'optional' in str(e) and 'torch' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('imported without torch')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_benchmark_nets_have_the_converter_layout(num_layers=18):
    """The nets the benchmark times load into md2tf with no unknown, missing or misshaped key."""
    depth, pose = tr.DepthNet(num_layers), tr.PoseNet(num_layers)
    depth_tf = models.DepthNet(num_layers).build_for_shape()
    ignored = load_torch_state_dict(depth_tf, tr.state_numpy(depth.encoder, depth.decoder))
    assert all(k.endswith("num_batches_tracked") or ".fc." in k for k in ignored), ignored
    pose_tf = models.PoseNet(num_layers).build_for_shape()
    load_torch_state_dict(pose_tf, tr.state_numpy(pose.encoder, pose.decoder))


def test_depth_net_output_shapes_and_range():
    net = tr.DepthNet().eval()
    with torch.no_grad():
        disps = net(torch.rand(2, 3, 64, 96))
    assert [tuple(d.shape) for d in disps] == [(2, 1, 64 >> s, 96 >> s) for s in range(4)]
    assert all(float(d.min()) >= 0.0 and float(d.max()) <= 1.0 for d in disps)


def test_rotation_matches_rodrigues_about_z():
    angle = 0.3
    R = tr.rotation(torch.tensor([[0.0, 0.0, angle]]))[0].numpy()
    c, s = np.cos(angle), np.sin(angle)
    np.testing.assert_allclose(R, [[c, -s, 0], [s, c, 0], [0, 0, 1]], atol=1e-6)


def test_ssim_loss_is_zero_for_identical_images_and_positive_otherwise():
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert float(tr.ssim_loss(x, x).abs().max()) < 1e-6
    assert float(tr.photometric(x, 1.0 - x).mean()) > 0.1


def test_mono_train_step_updates_both_networks():
    torch.manual_seed(0)
    step = tr.MonoTrainStep(batch=1, height=64, width=64)  # 1/32 must be >= 2 px
    before = [
        p.detach().clone()
        for p in (step.depth.decoder.decoder[10].conv.weight, step.pose.decoder.net[3].weight)
    ]
    loss = step()
    assert np.isfinite(loss) and loss > 0
    after = (step.depth.decoder.decoder[10].conv.weight, step.pose.decoder.net[3].weight)
    for b, a in zip(before, after):
        assert not torch.equal(a.detach(), b)
