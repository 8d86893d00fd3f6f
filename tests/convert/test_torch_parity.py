"""Converter parity: PyTorch-layout weights -> md2tf gives the same disparities and poses."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from md2tf import models  # noqa: E402
from md2tf.config import ConvertConfig  # noqa: E402
from md2tf.convert import load_torch_state_dict  # noqa: E402
from md2tf.convert import torch_reference as tm  # noqa: E402
from md2tf.convert.__main__ import main as _convert_main  # noqa: E402
from md2tf.flags import call_command  # noqa: E402

PARITY_ATOL = 1e-4


def _depth_pair(num_layers=18, seed=0):
    enc = tm.ResnetEncoder(num_layers)
    dec = tm.DepthDecoder(enc.num_ch_enc)
    tm.randomize_(enc, seed)
    tm.randomize_(dec, seed + 1)
    net = models.DepthNet(num_layers).build_for_shape()
    load_torch_state_dict(net, tm.state_numpy(enc, dec))
    return enc, dec, net


def _pose_pair(seed=10):
    enc, head = tm.ResnetEncoder(18, num_images=2), tm.PoseDecoder(512)
    tm.randomize_(enc, seed)
    tm.randomize_(head, seed + 1)
    net = models.PoseNet(18).build_for_shape()
    load_torch_state_dict(net, tm.state_numpy(enc, head))
    return enc, head, net


def _check_depth(num_layers, height, width, batch=1):
    enc, dec, net = _depth_pair(num_layers)
    x = np.random.default_rng(0).uniform(size=(batch, height, width, 3)).astype(np.float32)
    with torch.no_grad():
        feats_ref = enc(tm.nchw(x))
        disps_ref = dec(feats_ref)
    feats = net.encoder(x, training=False)
    disps = net(x, training=False)
    for k, (a, b) in enumerate(zip(feats, feats_ref)):
        b = tm.nhwc(b)
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a.numpy() / scale, b / scale, atol=1e-4, err_msg=f"feature {k}")
    diffs = []
    for s, (a, b) in enumerate(zip(disps, disps_ref)):
        b = tm.nhwc(b)
        assert a.shape == b.shape == (batch, height >> s, width >> s, 1)
        assert b.std() > 1e-3, "degenerate reference: the comparison would prove nothing"
        diffs.append(float(np.abs(a.numpy() - b).max()))
    assert max(diffs) <= PARITY_ATOL, diffs
    return diffs


def test_depth_parity_resnet18_small():
    _check_depth(18, 64, 128, batch=2)


@pytest.mark.slow
def test_depth_parity_resnet18_full_size():
    diffs = _check_depth(18, 192, 640)
    print("max |disp diff| per scale at 192x640:", diffs)


@pytest.mark.slow
def test_depth_parity_resnet50_small():
    _check_depth(50, 64, 96)


def test_pose_parity_small():
    enc, head, net = _pose_pair()
    x = np.random.default_rng(1).uniform(size=(2, 64, 128, 6)).astype(np.float32)
    with torch.no_grad():
        aa_ref, t_ref = head(enc(tm.nchw(x)))
    aa, t = net(x, training=False)
    assert aa.shape == t.shape == (2, 3)
    assert np.abs(aa_ref.numpy()).max() > 1e-4
    np.testing.assert_allclose(aa.numpy(), aa_ref.numpy(), atol=1e-6, rtol=1e-4)
    np.testing.assert_allclose(t.numpy(), t_ref.numpy(), atol=1e-6, rtol=1e-4)


def test_ignores_num_batches_tracked_fc_and_meta_keys():
    enc = tm.ResnetEncoder(18)
    state = tm.state_numpy(enc)
    assert any(k.endswith("num_batches_tracked") for k in state) and "encoder.fc.weight" in state
    state.update(height=192, width=640, use_stereo=False)
    net = models.ResnetEncoder(18)
    net(np.zeros([1, 32, 32, 3], np.float32))
    plain = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    ignored = load_torch_state_dict(net, plain)
    assert "fc.weight" in ignored and "bn1.num_batches_tracked" in ignored


def test_errors_list_unknown_missing_and_mismatched_keys():
    enc, dec, net = _depth_pair()
    state = tm.state_numpy(enc, dec)
    del state["decoder.3.conv.conv.bias"]
    state["decoder.99.conv.weight"] = np.zeros([1, 16, 3, 3], np.float32)
    state["encoder.conv1.weight"] = np.zeros([64, 6, 7, 7], np.float32)
    before = net.encoder.conv1.kernel.numpy().copy()
    with pytest.raises(ValueError) as err:
        load_torch_state_dict(net, state)
    msg = str(err.value)
    assert "unknown keys (1): ['decoder.99.conv.weight']" in msg
    assert "missing keys (1): ['decoder.3.conv.conv.bias']" in msg
    assert "encoder.conv1.weight: got (64, 6, 7, 7), expected (64, 3, 7, 7)" in msg
    np.testing.assert_array_equal(net.encoder.conv1.kernel.numpy(), before)  # nothing assigned


@pytest.mark.slow
def test_convert_cli_writes_a_loadable_run(tmp_path):
    """encoder/depth/pose_encoder/pose .pth -> md2tf run dir -> load_models -> same outputs."""
    enc, dec, _ = _depth_pair(seed=3)
    penc, head, _ = _pose_pair(seed=5)
    src = tmp_path / "mono_640x192"
    src.mkdir()
    torch.save({**enc.state_dict(), "height": 64, "width": 96, "use_stereo": False},
               src / "encoder.pth")
    torch.save(dec.state_dict(), src / "depth.pth")
    torch.save(penc.state_dict(), src / "pose_encoder.pth")
    torch.save(head.state_dict(), src / "pose.pth")
    out = tmp_path / "run"
    assert convert_main(["--model_dir", str(src), "--out", str(out)]) == 0
    assert os.path.isfile(out / "config.json")

    config, depth_net, pose_net = models.load_models(str(out))
    assert (config.data.height, config.data.width) == (64, 96)
    assert config.model.num_layers == 18 and config.use_pose_net
    x = np.random.default_rng(2).uniform(size=(1, 64, 96, 6)).astype(np.float32)
    with torch.no_grad():
        disp_ref = dec(enc(tm.nchw(x[..., :3])))[0]
        aa_ref, t_ref = head(penc(tm.nchw(x)))
    np.testing.assert_allclose(depth_net(x[..., :3])[0].numpy(), tm.nhwc(disp_ref), atol=PARITY_ATOL)
    aa, t = pose_net(x)
    np.testing.assert_allclose(aa.numpy(), aa_ref.numpy(), atol=1e-6, rtol=1e-4)
    np.testing.assert_allclose(t.numpy(), t_ref.numpy(), atol=1e-6, rtol=1e-4)


def test_convert_cli_depth_only_and_missing_files(tmp_path, capsys):
    src = tmp_path / "stereo"
    src.mkdir()
    assert convert_main(["--model_dir", str(src), "--out", str(tmp_path / "x")]) == 2
    assert "has no encoder.pth" in capsys.readouterr().err
    enc, dec = tm.ResnetEncoder(18), tm.DepthDecoder([64, 64, 128, 256, 512])
    torch.save({**enc.state_dict(), "height": 64, "width": 64, "use_stereo": True},
               src / "encoder.pth")
    torch.save(dec.state_dict(), src / "depth.pth")
    assert convert_main(["--model_dir", str(src), "--out", str(tmp_path / "run")]) == 0
    config, depth_net, pose_net = models.load_models(str(tmp_path / "run"))
    assert pose_net is None and not config.use_pose_net and config.data.use_stereo


def convert_main(argv: list[str]) -> int:
    """``python -m md2tf.convert`` in-process; returns its exit status."""
    return call_command(_convert_main, ConvertConfig, argv)
