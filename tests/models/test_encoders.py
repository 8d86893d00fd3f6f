"""Contract tests of the selectable encoders (``--encoder`` / ``--pose_encoder``): skip shapes, channel
counts, config round trips, checkpoints, one training step and the ImageNet weight rule of the
6-channel pose encoder. Shapes at 64x128 and 192x640; everything else at <= 64x128."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.config import ENCODERS, ConfigError, DataConfig, ExperimentConfig, ModelConfig
from md2tf.convert import pretrained
from md2tf.models import encoders, mobilenet_encoder
from md2tf.models.checkpoint import load_models, save_models
from md2tf.models.mobilenet_encoder import MobileNetV3Encoder

MOBILENETS = ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_large_minimalistic",
              "mobilenet_v3_small_minimalistic")
CHANNELS = {
    "resnet": (64, 64, 128, 256, 512),
    "mobilenet_v3_large": (16, 24, 40, 112, 960),
    "mobilenet_v3_small": (16, 16, 24, 48, 576),
    "mobilenet_v3_large_minimalistic": (16, 24, 40, 112, 960),
    "mobilenet_v3_small_minimalistic": (16, 16, 24, 48, 576),
}
#: Measured once (Keras 3.15): trunk + decoder; the totals include the BN moving statistics.
PARAMS = {  # encoder: (depth net, pose net)
    "resnet": (14_338_836, 12_510_092),
    "mobilenet_v3_large": (6_711_252, 4_426_044),
    "mobilenet_v3_small": (3_598_788, 2_270_508),
    "mobilenet_v3_large_minimalistic": (5_152_508, 2_867_300),
    "mobilenet_v3_small_minimalistic": (3_100_668, 1_772_388),
}


def _count(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


@pytest.fixture(scope="module")
def nets():
    """encoder name -> (DepthNet, PoseNet), built at 64x128."""
    return {e: (models.DepthNet(encoder=e).build_for_shape(64, 128),
                models.PoseNet(encoder=e).build_for_shape(64, 128)) for e in ENCODERS}


@pytest.mark.parametrize("height, width", [(64, 128), (192, 640)])
@pytest.mark.parametrize("encoder", ENCODERS)
def test_skip_features_have_strides_2_to_32(encoder, height, width):
    for images in (1, 2):  # depth and pose encoders
        enc = encoders.build_encoder(encoder, num_input_images=images)
        feats = enc(tf.zeros([1, height, width, 3 * images]))
        assert enc.num_ch_enc == CHANNELS[encoder]
        assert [tuple(f.shape) for f in feats] == [
            (1, height >> (k + 1), width >> (k + 1), c) for k, c in enumerate(CHANNELS[encoder])]


@pytest.mark.parametrize("variant", MOBILENETS)
def test_mobilenet_skips_are_the_inputs_of_the_strided_blocks(variant):
    trunk = mobilenet_encoder.keras_trunk(variant)
    strided = [layer.name for layer in trunk.layers if layer.name.endswith("depthwise_pad")]
    size = variant.removesuffix("_minimalistic")  # the same blocks and strides
    assert strided == {"mobilenet_v3_large": ["expanded_conv_1_depthwise_pad", "expanded_conv_3_depthwise_pad",
                                              "expanded_conv_6_depthwise_pad", "expanded_conv_12_depthwise_pad"],
                       "mobilenet_v3_small": ["expanded_conv_depthwise_pad", "expanded_conv_1_depthwise_pad",
                                              "expanded_conv_3_depthwise_pad", "expanded_conv_8_depthwise_pad"],
                       }[size]
    skips = mobilenet_encoder.skip_tensors(trunk)
    assert skips[-1] is trunk.output  # stride 32: conv_1 + its activation, the trunk's last layer
    if size == "mobilenet_v3_large":  # stride 2 = block 0's output (its residual add)
        assert skips[0] is trunk.get_layer("expanded_conv_add").output


@pytest.mark.parametrize("size", ["large", "small"])
def test_minimalistic_trunks_have_relu_only_no_squeeze_excite_and_3x3_kernels(size):
    """What makes the minimalistic int8 graph whole in XNNPACK: no hard-swish, no SE multiply."""
    full = mobilenet_encoder.keras_trunk(f"mobilenet_v3_{size}")
    mini = mobilenet_encoder.keras_trunk(f"mobilenet_v3_{size}_minimalistic")

    def kinds(trunk):
        acts = {getattr(layer, "activation", None) for layer in trunk.layers
                if isinstance(layer, keras.layers.Activation)}
        return ({a.__name__ for a in acts if a is not None},
                sum(isinstance(layer, keras.layers.Multiply) for layer in trunk.layers),
                {layer.kernel_size for layer in trunk.layers
                 if isinstance(layer, keras.layers.DepthwiseConv2D)})

    full_acts, full_se, full_kernels = kinds(full)
    mini_acts, mini_se, mini_kernels = kinds(mini)
    assert "hard_silu" in full_acts and full_se > 0 and (5, 5) in full_kernels  # Keras' hard-swish
    assert mini_acts <= {"relu"} and mini_se == 0 and mini_kernels == {(3, 3)}


def test_depth_decoder_takes_any_skip_channels():
    channels = (3, 5, 7, 11, 13)
    dec = models.DepthDecoder(channels, scales=(0, 1))
    feats = [tf.zeros([2, 64 >> (k + 1), 96 >> (k + 1), c]) for k, c in enumerate(channels)]
    assert [tuple(d.shape) for d in dec(feats)] == [(2, 64, 96, 1), (2, 32, 48, 1)]


def _decoder_weight_count(enc: tuple[int, ...], dec: tuple[int, ...]) -> int:
    """Independent count of `DepthDecoder`'s weights (3x3 convs + biases, four disparity heads)."""
    count = 0
    for i in range(4, -1, -1):
        in0 = enc[-1] if i == 4 else dec[i + 1]
        in1 = dec[i] + (enc[i - 1] if i > 0 else 0)
        count += 9 * in0 * dec[i] + dec[i] + 9 * in1 * dec[i] + dec[i]
    return count + sum(9 * dec[s] + 1 for s in range(4))


def test_decoder_channels_set_every_conv_of_the_decoder():
    enc = CHANNELS["mobilenet_v3_small"]
    half = (8, 16, 32, 64, 128)
    for dec in (models.depth_decoder.NUM_CH_DEC, half):
        net = models.DepthNet(encoder="mobilenet_v3_small_minimalistic", decoder_channels=dec)
        net.build_for_shape(64, 128)
        assert _count(net.decoder.weights) == _decoder_weight_count(enc, dec)
        assert net.decoder.upconv_0_1.conv.conv.kernel.shape[-1] == dec[0]
        clone = models.DepthNet.from_config(net.get_config())
        assert tuple(clone.decoder.num_ch_dec) == dec
    with pytest.raises(ValueError, match=r"5 positive integers"):
        models.DepthDecoder(enc, num_ch_dec=(8, 16, 32, 64))
    with pytest.raises(ConfigError, match=r"--decoder_channels must be 5 positive integers .* got 8,0"):
        ModelConfig(decoder_channels=(8, 0, 32, 64, 128))
    config = ExperimentConfig(model=ModelConfig(decoder_channels=half))
    assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    depth_net, _ = models.build(config.model, use_pose_net=False)
    assert depth_net.decoder.num_ch_dec == half
    recorded = ExperimentConfig().to_dict()  # a config.json written before --decoder_channels existed
    del recorded["model"]["decoder_channels"]
    assert ExperimentConfig.from_dict(recorded).model.decoder_channels == (16, 32, 64, 128, 256)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_parameter_counts_and_outputs(nets, encoder):
    depth_net, pose_net = nets[encoder]
    assert (_count(depth_net.weights), _count(pose_net.weights)) == PARAMS[encoder]
    disps = depth_net(tf.random.stateless_uniform([2, 64, 128, 3], seed=(1, 2)))
    assert [tuple(d.shape) for d in disps] == [(2, 64 >> s, 128 >> s, 1) for s in range(4)]
    aa, t = pose_net(tf.random.stateless_uniform([2, 64, 128, 6], seed=(3, 4)))
    assert aa.shape == t.shape == (2, 3)


def _keras_application(variant: str) -> keras.Model:
    """Keras' own no-top trunk with its preprocessing (``Rescaling(1 / 127.5, -1)`` on [0, 255])."""
    return mobilenet_encoder.VARIANTS[variant](input_shape=(None, None, 3), include_top=False, weights=None)


@pytest.mark.parametrize("variant", MOBILENETS)
def test_mobilenet_on_0_1_images_equals_keras_preprocessing_on_0_255(variant):
    """The [0, 1] contract of every encoder, mapped inside to the [-1, 1] MobileNetV3 was trained on."""
    assert encoders.input_normalisation(variant) == (0.5, 0.5)
    assert encoders.input_normalisation("resnet") == (0.45, 0.225)
    app, enc = _keras_application(variant), MobileNetV3Encoder(variant)
    for name in enc.layer_names:
        getattr(enc, name).set_weights(app.get_layer(name).get_weights())
    x = tf.random.stateless_uniform([1, 64, 96, 3], seed=(9, 9))
    np.testing.assert_allclose(enc(x)[-1].numpy(), app(x * 255.0).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("encoder", MOBILENETS)
def test_every_variable_is_checkpointed_under_keras_layer_names(tmp_path, nets, encoder):
    depth_net, pose_net = nets[encoder]
    prefix = tf.train.Checkpoint(depth_net=depth_net, pose_net=pose_net).write(str(tmp_path / "c"))
    saved = dict(tf.train.list_variables(prefix))
    saved.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    assert len(saved) == len(depth_net.weights) + len(pose_net.weights)
    assert _count([tf.zeros(s) for s in saved.values()]) == sum(PARAMS[encoder])
    assert "depth_net/encoder/conv_bn/moving_variance/.ATTRIBUTES/VARIABLE_VALUE" in saved
    assert "pose_net/encoder/expanded_conv_3_depthwise/kernel/.ATTRIBUTES/VARIABLE_VALUE" in saved
    assert not any("_operations" in k or "_skip_graph" in k for k in saved)  # no Keras indices


def test_config_round_trip_and_old_configs_default_to_resnet():
    for encoder in ENCODERS:
        net = models.DepthNet(encoder=encoder, scales=(0,), name="d")
        assert models.DepthNet.from_config(net.get_config()).get_config() == net.get_config()
        assert net.get_config()["encoder"] == encoder
        pose = models.PoseNet(encoder=encoder)
        assert models.PoseNet.from_config(pose.get_config()).get_config() == pose.get_config()
    old = {k: v for k, v in models.DepthNet().get_config().items() if k != "encoder"}
    assert models.DepthNet.from_config(old).encoder_name == "resnet"
    enc = MobileNetV3Encoder("mobilenet_v3_small", 2, synchronized_bn=True)
    assert MobileNetV3Encoder.from_config(enc.get_config()).get_config() == enc.get_config()

    config = ExperimentConfig(model=ModelConfig(encoder="mobilenet_v3_large",
                                                pose_encoder="mobilenet_v3_small"))
    assert ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    recorded = ExperimentConfig().to_dict()  # a config.json written before --encoder existed
    for key in ("encoder", "pose_encoder"):
        del recorded["model"][key]
    restored = ExperimentConfig.from_dict(recorded)
    assert (restored.model.encoder, restored.model.pose_encoder) == ("resnet", "resnet")
    assert (restored.model.depth_architecture, restored.model.pose_architecture) == ("resnet18",
                                                                                     "resnet18")


def test_save_and_load_models_round_trip(tmp_path):
    config = ExperimentConfig(data=DataConfig(height=64, width=128),
                              model=ModelConfig(encoder="mobilenet_v3_small",
                                                pose_encoder="mobilenet_v3_small", scales=(0,)))
    depth_net, pose_net = models.build(config.model)
    assert isinstance(depth_net.encoder, MobileNetV3Encoder)
    assert pose_net.encoder.num_input_images == 2
    x = tf.random.stateless_uniform([1, 64, 128, 3], seed=(7, 8))
    depth_net(tf.concat([x, x], 0), training=True)  # moves the BN statistics off their init
    save_models(str(tmp_path), config, depth_net, pose_net, step=1)
    loaded_config, depth2, pose2 = load_models(str(tmp_path))
    assert loaded_config == config and depth2.encoder.variant == "mobilenet_v3_small"
    np.testing.assert_array_equal(depth2(x)[0].numpy(), depth_net(x)[0].numpy())
    pair = tf.concat([x, x], -1)
    np.testing.assert_array_equal(pose2(pair)[1].numpy(), pose_net(pair)[1].numpy())


def test_encoder_init_refuses_another_architecture(tmp_path):
    from md2tf.training import run_checkpoints

    source = ExperimentConfig(data=DataConfig(frame_offsets=(0,), use_stereo=True),
                              model=ModelConfig(encoder="mobilenet_v3_small"))
    save_models(str(tmp_path), source, models.build(source.model, use_pose_net=False)[0])
    depth, _ = models.build(ModelConfig(encoder="mobilenet_v3_large"), use_pose_net=False)
    with pytest.raises(ValueError, match=r"has a mobilenet_v3_small depth_net encoder \(--encoder\), "
                                         r"this run a mobilenet_v3_large"):
        run_checkpoints.restore_encoders(str(tmp_path), depth)
    same, _ = models.build(ModelConfig(encoder="mobilenet_v3_small"), use_pose_net=False)
    assert run_checkpoints.restore_encoders(str(tmp_path), same)[1] == ["depth_net"]


@pytest.mark.parametrize("encoder", MOBILENETS)
def test_one_training_step_changes_weights_and_bn_statistics(nets, encoder):
    for net, channels in zip(nets[encoder], (3, 6)):
        before = [v.numpy().copy() for v in net.weights]
        images = tf.random.stateless_uniform([2, 64, 128, channels], seed=(5, 6))
        with tf.GradientTape() as tape:
            out = net(images, training=True)
            loss = tf.add_n([tf.reduce_mean(o) for o in tf.nest.flatten(out)])
        grads = tape.gradient(loss, net.trainable_variables)
        assert all(g is not None for g in grads)
        keras.optimizers.SGD(learning_rate=0.1).apply(grads, net.trainable_variables)
        changed = {id(v) for v, b in zip(net.weights, before) if not np.array_equal(v.numpy(), b)}
        assert {id(v) for v in net.trainable_variables} <= changed
        moving = [v for v in net.encoder.non_trainable_weights if "moving" in v.path]
        assert moving and {id(v) for v in moving} <= changed


def test_synchronized_bn_reaches_every_mobilenet_bn_layer():
    enc = MobileNetV3Encoder("mobilenet_v3_small", synchronized_bn=True)
    bns = [layer for layer in enc._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 34 and all(b.synchronized for b in bns)


def test_mobilenet_moving_statistics_move_a_tenth_per_step_like_resnets():
    """Momentum 0.9 (PyTorch's 0.1), not Keras' 0.999: one training call moves the stem BN's moving
    mean 10 % of the way to the batch mean of its input (the stem conv's output)."""
    enc = MobileNetV3Encoder("mobilenet_v3_small_minimalistic")
    x = tf.random.stateless_uniform([2, 64, 64, 3], seed=(1, 1))
    enc(x)  # builds
    conv, bn = enc.conv, enc.conv_bn
    before = bn.moving_mean.numpy().copy()
    enc(x, training=True)
    batch_mean = tf.reduce_mean(conv((x - 0.5) / 0.5), axis=(0, 1, 2)).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.9 * before + 0.1 * batch_mean, atol=1e-5)


def test_bad_encoder_settings_fail_with_the_flag():
    with pytest.raises(ValueError, match="encoder must be one of"):
        models.DepthNet(encoder="mobilenet_v2")
    with pytest.raises(ValueError, match=r"images must be \[B, H, W, 6\]"):
        MobileNetV3Encoder("mobilenet_v3_small", 2)(tf.zeros([1, 64, 64, 3]))
    with pytest.raises(ConfigError, match="--encoder must be one of"):
        ModelConfig(encoder="mobilenet")
    with pytest.raises(ConfigError, match=r"--encoder_weights=imagenet is Keras MobileNetV3 weights, "
                                          r"but --encoder=resnet"):
        ModelConfig(encoder_weights="imagenet")
    with pytest.raises(ConfigError, match=r"--encoder_weights=r18.pth: --encoder=mobilenet_v3_small"):
        ModelConfig(encoder="mobilenet_v3_small", encoder_weights="r18.pth")
    light = ModelConfig(encoder="mobilenet_v3_small", encoder_weights="imagenet")
    with pytest.raises(ConfigError, match=r"but --pose_encoder=resnet takes"):
        ExperimentConfig(model=light)  # the pose encoder loads the same weights
    ExperimentConfig(model=light, data=DataConfig(frame_offsets=(0,), use_stereo=True))  # no pose net
    ExperimentConfig(model=dataclasses.replace(light, pose_encoder="mobilenet_v3_large"))


# --- ImageNet weights: Keras files, 6-channel pose encoder --------------------------------------------


def _fake_weights(variant: str, path: str) -> dict[str, list[np.ndarray]]:
    """Writes seeded random weights of Keras' 3-channel no-top trunk (a stand-in for its ImageNet file,
    Rescaling layer included) to ``path`` (.weights.h5, .keras or .h5); returns them by layer name."""
    keras.utils.set_random_seed(3)
    trunk = _keras_application(variant)
    rng = np.random.default_rng(4)
    for layer in trunk.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # non-trivial statistics
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    if path.endswith(".weights.h5"):
        trunk.save_weights(path)
    else:  # .keras, or a legacy .h5 (read like Keras' published weights file)
        trunk.save(path)
    return {layer.name: layer.get_weights() for layer in trunk.layers if layer.weights}


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras", ".h5"])
def test_keras_weights_load_and_the_pose_encoder_repeats_and_halves_the_first_conv(tmp_path, suffix):
    variant = "mobilenet_v3_small"
    path = str(tmp_path / f"fake{suffix}")
    expected = _fake_weights(variant, path)
    config = ExperimentConfig(model=ModelConfig(encoder=variant, pose_encoder=variant,
                                                encoder_weights=path, scales=(0,)))
    depth_net, pose_net = models.build(config.model)
    assert pretrained.init_encoders(config.model.encoder_weights, depth_net, pose_net)
    depth_enc, pose_enc = depth_net.encoder, pose_net.encoder
    for name in depth_enc.layer_names:
        for ours, theirs in zip(getattr(depth_enc, name).get_weights(), expected[name], strict=True):
            np.testing.assert_array_equal(ours, theirs)
        if name != "conv":
            for ours, theirs in zip(getattr(pose_enc, name).get_weights(), expected[name], strict=True):
                np.testing.assert_array_equal(ours, theirs)
    kernel = expected["conv"][0]  # [3, 3, 3, 16] HWIO
    pose_kernel = pose_enc.conv.get_weights()[0]
    assert pose_kernel.shape == (3, 3, 6, 16)
    np.testing.assert_array_equal(pose_kernel, np.concatenate([kernel, kernel], axis=2) / 2)
    # Paper supplementary B: a pair of identical frames gives the single-image ImageNet features.
    x = tf.random.stateless_uniform([1, 64, 64, 3], seed=(4, 2))
    for a, b in zip(depth_enc(x), pose_enc(tf.concat([x, x], -1)), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)


def test_resnet_and_keras_weights_share_the_first_conv_rule():
    kernel = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(pretrained.tile_first_conv(kernel, 2, axis=1),
                                  np.concatenate([kernel, kernel], 1) / 2)
    assert pretrained.tile_first_conv(kernel, 1, axis=1) is kernel
    np.testing.assert_allclose(pretrained.tile_first_conv(kernel, 3, axis=1).sum(axis=1),
                               kernel.sum(axis=1), rtol=1e-6)  # 3 equal images: same response


def test_keras_weights_errors_name_the_flag(tmp_path):
    enc = MobileNetV3Encoder("mobilenet_v3_large")
    with pytest.raises(FileNotFoundError, match=r"--encoder_weights=.*nowhere.h5: no such file.*"
                                                r"storage.googleapis.com"):
        pretrained.load_keras_encoder_weights(enc, str(tmp_path / "nowhere.h5"))
    small = str(tmp_path / "small.weights.h5")
    _fake_weights("mobilenet_v3_small", small)
    with pytest.raises(ValueError, match=r"--encoder_weights=.*small.weights.h5 does not fit a "
                                         r"mobilenet_v3_large trunk"):
        pretrained.load_keras_encoder_weights(enc, small)


@pytest.mark.slow  # ~45 s here: the trainer traces the full step (loss, both networks, Adam)
def test_one_trainer_step_with_mobilenet_depth_and_pose_encoders(tmp_path):
    """The real loss and optimizer (`md2tf.training.Trainer`, fake data): one step moves every
    trainable weight of both networks; the checkpoint it writes restores through `load_models`."""
    from md2tf.training import trainer as trainer_lib
    from tests.training import fakes

    config = fakes.tiny_config(str(tmp_path), steps_per_epoch=1, validate_every_epoch=False,
                               image_log_every=0)
    config = dataclasses.replace(config, model=ModelConfig(encoder="mobilenet_v3_small",
                                                           pose_encoder="mobilenet_v3_small"))
    t = trainer_lib.Trainer(config, dataset_fn=fakes.fake_dataset_fn(2))
    nets = (t.depth_net, t.pose_net)
    before = {id(v): v.numpy().copy() for n in nets for v in n.trainable_variables}
    result = t.train()
    assert (result.reason, result.step) == ("completed", 1) and np.isfinite(result.last_scalars["loss/total"])
    unchanged = [v.path for n in nets for v in n.trainable_variables
                 if np.array_equal(v.numpy(), before[id(v)])]
    assert not unchanged, unchanged[:5]
    _, depth2, pose2 = load_models(str(tmp_path))
    assert depth2.encoder.variant == pose2.encoder.variant == "mobilenet_v3_small"
