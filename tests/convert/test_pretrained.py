"""ImageNet encoder weights from local torchvision-layout files (.npz without torch, .pth with it)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from md2tf import convert, models
from md2tf.config import ImagenetConvertConfig, ModelConfig
from md2tf.convert import imagenet
from md2tf.flags import call_command
from md2tf.models.resnet_encoder import ResnetEncoder


def torchvision_resnet18_state(seed: int = 0) -> dict[str, np.ndarray]:
    """Random arrays with torchvision's ResNet18 key names and PyTorch (OIHW) shapes."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}

    def conv(name, cout, cin, k):
        state[name + ".weight"] = (rng.normal(size=(cout, cin, k, k)) * np.sqrt(1 / (cin * k * k))
                                   ).astype(np.float32)

    def bn(name, c):
        state[name + ".weight"] = rng.uniform(0.5, 1.0, c).astype(np.float32)
        state[name + ".bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        state[name + ".running_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
        state[name + ".running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        state[name + ".num_batches_tracked"] = np.array(100, np.int64)

    conv("conv1", 64, 3, 7)
    bn("bn1", 64)
    cin = 64
    for stage, planes in enumerate([64, 128, 256, 512], start=1):
        for j in range(2):
            p = f"layer{stage}.{j}"
            conv(p + ".conv1", planes, cin, 3)
            bn(p + ".bn1", planes)
            conv(p + ".conv2", planes, planes, 3)
            bn(p + ".bn2", planes)
            if j == 0 and stage > 1:
                conv(p + ".downsample.0", planes, cin, 1)
                bn(p + ".downsample.1", planes)
            cin = planes
    state["fc.weight"] = rng.normal(size=(1000, 512)).astype(np.float32)
    state["fc.bias"] = np.zeros(1000, np.float32)
    return state


@pytest.fixture(scope="module")
def npz_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18.npz"
    np.savez(path, **torchvision_resnet18_state())
    return str(path)


def _encoder(num_layers=18, num_images=1):
    enc = ResnetEncoder(num_layers, num_images)
    enc(tf.zeros([1, 32, 32, 3 * num_images]))
    return enc


def test_npz_loads_and_pose_encoder_duplicates_conv1(npz_path):
    state = torchvision_resnet18_state()
    enc, pose_enc = _encoder(18, 1), _encoder(18, 2)
    convert.load_encoder_weights(enc, npz_path)
    convert.load_encoder_weights(pose_enc, npz_path)
    w = state["conv1.weight"].transpose(2, 3, 1, 0)  # OIHW -> HWIO
    np.testing.assert_array_equal(enc.conv1.kernel.numpy(), w)
    np.testing.assert_allclose(pose_enc.conv1.kernel.numpy(), np.concatenate([w, w], 2) / 2)
    np.testing.assert_array_equal(enc.layer2_0.downsample_bn.moving_variance.numpy(),
                                  state["layer2.0.downsample.1.running_var"])
    # Supplementary B: a pair of identical frames gives the single-image ImageNet features.
    x = tf.random.stateless_uniform([1, 64, 64, 3], seed=(4, 2))
    for a, b in zip(enc(x), pose_enc(tf.concat([x, x], -1))):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_init_encoders_loads_both_encoders(npz_path):
    config = ModelConfig(encoder_weights=npz_path)
    depth, pose = models.build(config, use_pose_net=True)
    assert convert.init_encoders(config.encoder_weights, depth, pose)
    assert not convert.init_encoders("none", depth, pose)  # scratch: nothing loaded
    w = torchvision_resnet18_state()["conv1.weight"].transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(depth.encoder.conv1.kernel.numpy(), w)
    np.testing.assert_allclose(pose.encoder.layer4_1.bn2.gamma.numpy(),
                               torchvision_resnet18_state()["layer4.1.bn2.weight"])


def test_missing_file_says_where_to_get_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"download\.pytorch\.org/models/resnet18-.*\.pth"):
        convert.load_encoder_weights(_encoder(), str(tmp_path / "resnet18.pth"))


def test_wrong_depth_lists_the_mismatch(npz_path):
    with pytest.raises(ValueError, match=r"(?s)does not fit a ResNet50 encoder.*missing keys"):
        convert.load_encoder_weights(_encoder(50), npz_path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"must be \.pth, \.pt or \.npz"):
        convert.load_encoder_weights(_encoder(), str(path))


def test_pth_to_npz_cli_round_trip(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    state = torchvision_resnet18_state(1)
    pth = tmp_path / "resnet18-test.pth"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
    out = tmp_path / "resnet18.npz"
    assert call_command(imagenet.main, ImagenetConvertConfig, ["--pth", str(pth), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    with np.load(out) as data:
        assert sorted(data.files) == sorted(k for k in state if not k.endswith("num_batches_tracked"))
        np.testing.assert_array_equal(data["layer3.1.conv2.weight"], state["layer3.1.conv2.weight"])
    enc_pth, enc_npz = _encoder(), _encoder()
    convert.load_encoder_weights(enc_pth, str(pth))
    convert.load_encoder_weights(enc_npz, str(out))
    for a, b in zip(enc_pth.weights, enc_npz.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert call_command(imagenet.main, ImagenetConvertConfig,
                        ["--pth", str(tmp_path / "nope.pth"), "--out", str(out)]) == 2
