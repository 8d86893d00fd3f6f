"""Contract tests of the md2tf networks: shapes, parameter counts, config round trips, tracking,
initialisers, one training step and error messages. Small images (<= 64x128) only."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from md2tf import models
from md2tf.config import DEPTH_RANGE, ModelConfig
from md2tf.deploy.inference import ModelInfo
from md2tf.evaluation.metrics import ScoringOptions
from md2tf.geometry.depth import disp_to_depth_coefficients
from md2tf.models import layers as L
from md2tf.models.resnet_encoder import BasicBlock, ResnetEncoder
from tests.conftest import tol


def _count(variables) -> int:
    return int(sum(np.prod(v.shape) for v in variables))


@pytest.fixture(scope="module")
def depth_net():
    return models.DepthNet(18).build_for_shape(64, 128)


@pytest.fixture(scope="module")
def pose_net():
    return models.PoseNet(18).build_for_shape(64, 128)


def test_depth_net_output_shapes_every_scale(depth_net):
    disps = depth_net(tf.random.stateless_uniform([2, 64, 128, 3], seed=(1, 2)))
    assert len(disps) == 4
    for s, d in enumerate(disps):
        assert d.shape == (2, 64 >> s, 128 >> s, 1) and d.dtype == tf.float32
        assert np.all((d.numpy() > 0) & (d.numpy() < 1))


def test_depth_net_traces_with_unknown_height_and_width(depth_net):
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def predict(images):
        return depth_net(images, training=False)

    disps = predict(tf.zeros([1, 64, 96, 3]))
    assert [tuple(d.shape) for d in disps] == [(1, 64 >> s, 96 >> s, 1) for s in range(4)]


@pytest.mark.parametrize("scales", [(0,), pytest.param((0, 1), marks=pytest.mark.slow)])
def test_depth_net_fewer_scales(scales):
    net = models.DepthNet(18, scales=scales)
    disps = net(tf.zeros([1, 64, 64, 3]))
    assert [d.shape[1] for d in disps] == [64 >> s for s in scales]


@pytest.mark.parametrize(
    "num_layers, channels",
    [
        (18, (64, 64, 128, 256, 512)),
        pytest.param(34, (64, 64, 128, 256, 512), marks=pytest.mark.slow),
        (50, (64, 256, 512, 1024, 2048)),
    ],
)
def test_encoder_feature_shapes(num_layers, channels):
    enc = ResnetEncoder(num_layers)
    feats = enc(tf.zeros([1, 64, 96, 3]))
    assert enc.num_ch_enc == channels
    assert [tuple(f.shape) for f in feats] == [
        (1, 64 >> (k + 1), 96 >> (k + 1), c) for k, c in enumerate(channels)
    ]


def test_pose_net_outputs(pose_net):
    aa, t = pose_net(tf.random.stateless_uniform([3, 64, 128, 6], seed=(3, 4)))
    assert aa.shape == t.shape == (3, 3) and aa.dtype == t.dtype == tf.float32


def test_exact_parameter_counts(depth_net, pose_net):
    # ResNet18 without fc: 11,689,512 - (512*1000 + 1000) = 11,176,512 trainable parameters.
    assert _count(depth_net.encoder.trainable_weights) == 11_176_512
    # Encoder + 10 decoder ConvBlocks + 4 heads; totals include the 2 * 4,800 BN moving statistics.
    assert _count(depth_net.weights) == 14_338_836
    assert _count(depth_net.trainable_weights) == 14_338_836 - 9_600
    # Pose encoder conv1 sees 6 channels (+64*3*49); decoder 1x1/3x3/3x3/1x1 -> 12 outputs.
    assert _count(pose_net.weights) == 12_510_092
    assert _count(pose_net.trainable_weights) == 12_510_092 - 9_600


def test_every_variable_is_checkpointed_including_bn_statistics(tmp_path, depth_net, pose_net):
    prefix = tf.train.Checkpoint(depth_net=depth_net, pose_net=pose_net).write(str(tmp_path / "c"))
    saved = dict(tf.train.list_variables(prefix))
    saved.pop("_CHECKPOINTABLE_OBJECT_GRAPH")
    assert len(saved) == len(depth_net.weights) + len(pose_net.weights)
    assert _count([tf.zeros(s) for s in saved.values()]) == 14_338_836 + 12_510_092
    moving = [k for k in saved if "moving_" in k]
    assert len(moving) == 2 * 2 * 20  # 20 BN layers per ResNet18 x (mean, var) x 2 networks


def test_config_round_trip(depth_net):
    net = models.DepthNet(18, scales=(0, 1, 2, 3), init="keras", synchronized_bn=True, name="d")
    clone = models.DepthNet.from_config(net.get_config())
    assert clone.get_config() == net.get_config() == {
        "name": "d", "num_layers": 18, "scales": [0, 1, 2, 3], "init": "keras",
        "synchronized_bn": True, "init_disparity": None, "min_depth": 0.1, "max_depth": 100.0,
        "layout": "train", "encoder": "resnet", "decoder_channels": [16, 32, 64, 128, 256]}
    clone.build_for_shape()  # same architecture as the fixture (init/sync do not change shapes)
    assert [v.shape for v in clone.weights] == [v.shape for v in depth_net.weights]
    pose = models.PoseNet(50, init="keras")
    assert models.PoseNet.from_config(pose.get_config()).get_config() == pose.get_config()


def test_disp_to_depth_is_the_networks_output_contract():
    net = models.DepthNet(18, scales=(0,), min_depth=0.5, max_depth=40.0)  # not built: no weights needed
    disp = np.array([0.0, 0.25, 1.0], np.float32)
    scaled, depth = net.disp_to_depth(disp)
    # D = 1 / (a * sigma + b): sigma = 0 -> max_depth, 1 -> min_depth; 0.25 by hand.
    np.testing.assert_allclose(depth, [40.0, 1.0 / (0.025 + 0.25 * (2.0 - 0.025)), 0.5], rtol=1e-6)
    np.testing.assert_allclose(scaled * depth, 1.0, rtol=1e-6)
    assert isinstance(depth, np.ndarray) and depth.dtype == np.float32  # NumPy in, NumPy out
    t_scaled, t_depth = net.disp_to_depth(tf.constant(disp))
    assert isinstance(t_depth, tf.Tensor)
    np.testing.assert_allclose(t_depth.numpy(), depth, rtol=1e-6)
    np.testing.assert_allclose(t_scaled.numpy(), scaled, rtol=1e-6)
    with pytest.raises(ValueError, match="min_depth < max_depth"):
        models.DepthNet(min_depth=5.0, max_depth=1.0)


def test_build_passes_the_depth_range_to_the_network():
    depth, _ = models.build(ModelConfig(scales=(0,), min_depth=0.2, max_depth=20.0), use_pose_net=False)
    assert (depth.min_depth, depth.max_depth) == (0.2, 20.0)
    np.testing.assert_allclose(depth.disp_to_depth(np.zeros(1, np.float32))[1], [20.0])


@pytest.mark.parametrize(
    "layer",
    [
        ResnetEncoder(50, num_input_images=2, init="keras", synchronized_bn=True),
        models.DepthDecoder((64, 256, 512, 1024, 2048), scales=(0, 1), init="keras"),
        models.DepthDecoder(scales=(0,), layout="xnnpack"),
        models.PoseDecoder((64, 64, 128, 256, 512), num_frames_to_predict_for=1),
    ],
    ids=["encoder", "depth_decoder", "depth_decoder_xnnpack", "pose_decoder"],
)
def test_layer_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_synchronized_bn_reaches_every_bn_layer():
    enc = ResnetEncoder(18, synchronized_bn=True)
    enc(tf.zeros([1, 32, 32, 3]))
    bns = [layer for layer in enc._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(bns) == 20 and all(b.synchronized for b in bns)
    assert all(b.epsilon == 1e-5 and b.momentum == 0.9 for b in bns)


def test_one_training_step_changes_weights_and_bn_statistics():
    net = models.DepthNet(18).build_for_shape(64, 64)
    before = [v.numpy().copy() for v in net.weights]
    opt = keras.optimizers.SGD(learning_rate=0.1)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=(5, 6))
    with tf.GradientTape() as tape:
        loss = tf.add_n([tf.reduce_mean(d) for d in net(images, training=True)])
    grads = tape.gradient(loss, net.trainable_variables)
    assert all(g is not None for g in grads)
    opt.apply(grads, net.trainable_variables)
    changed = {v.path for v, b in zip(net.weights, before) if not np.array_equal(v.numpy(), b)}
    assert {v.path for v in net.trainable_variables} <= changed
    assert any("moving_mean" in p for p in changed) and any("moving_variance" in p for p in changed)


def test_upsample_nearest_2x_matches_numpy_repeat():
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    ref = x.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(L.upsample_nearest_2x(tf.constant(x)).numpy(), ref)


# --- upsample_nearest_2x: the hand-written 2x2 block-sum gradient ------------------------------------


def _plain_resize_2x(x):
    """The un-wrapped op, whose gradient TF's autodiff gives (``ResizeNearestNeighborGrad``)."""
    return tf.image.resize(x, [2 * x.shape[1], 2 * x.shape[2]], method="nearest")


def _value_and_grad(fn, x, upstream):
    """``fn(x)`` and ``d sum(fn(x) * upstream) / dx``; a non-constant upstream keeps grappler from
    constant-folding the gradient op away (``tape.gradient(fn(x), x)`` alone would hide it from XLA)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(y * upstream)
    return y, tape.gradient(loss, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_upsample_nearest_2x_gradient_matches_resize_autodiff(dtype, rng):
    x = tf.constant(rng.normal(size=(2, 3, 5, 4)).astype(dtype))
    upstream = tf.constant(rng.normal(size=(2, 6, 10, 4)).astype(dtype))
    y, grad = _value_and_grad(L.upsample_nearest_2x, x, upstream)
    y_ref, grad_ref = _value_and_grad(_plain_resize_2x, x, upstream)
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())  # forward: the same op
    assert grad.dtype == x.dtype and grad.shape == x.shape
    np.testing.assert_allclose(grad.numpy(), grad_ref.numpy(), **tol(dtype))


@pytest.mark.parametrize("dtype", [tf.bfloat16, tf.float16])
def test_upsample_nearest_2x_low_precision_keeps_dtype_and_exact_block_sums(dtype, rng):
    # Small integers: the input, the 2x2 sums and the products are exact in bf16/fp16.
    x_np = rng.integers(-8, 9, size=(1, 2, 3, 2)).astype(np.float32)
    up_np = rng.integers(-8, 9, size=(1, 4, 6, 2)).astype(np.float32)
    y, grad = _value_and_grad(L.upsample_nearest_2x, tf.cast(x_np, dtype), tf.cast(up_np, dtype))
    assert y.dtype == grad.dtype == dtype
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), x_np.repeat(2, 1).repeat(2, 2))
    block_sums = up_np.reshape(1, 2, 2, 3, 2, 2).sum(axis=(2, 4))
    np.testing.assert_array_equal(tf.cast(grad, tf.float32).numpy(), block_sums)


@pytest.mark.parametrize(
    "spec, out_shape",
    [([2, 3, 5, 4], (2, 6, 10, 4)), ([None, 3, None, 4], (None, 6, None, 4)),
     ([None, None, None, 4], (None, None, None, 4))],
)
def test_upsample_nearest_2x_static_and_dynamic_shapes(spec, out_shape, rng):
    x = tf.constant(rng.normal(size=(2, 3, 5, 4)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(2, 6, 10, 4)).astype(np.float32))
    traced = {}

    @tf.function(input_signature=[tf.TensorSpec(spec), tf.TensorSpec([None] * 3 + [4])])
    def fn(x, upstream):
        y, grad = _value_and_grad(L.upsample_nearest_2x, x, upstream)
        traced.update(y=y.shape, grad=grad.shape)
        return y, grad

    y, grad = fn(x, upstream)
    assert tuple(traced["y"]) == out_shape and tuple(traced["grad"]) == tuple(spec)
    y_ref, grad_ref = _value_and_grad(_plain_resize_2x, x, upstream)
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
    np.testing.assert_allclose(grad.numpy(), grad_ref.numpy(), **tol())


@pytest.mark.parametrize("dtype", [tf.float32, tf.bfloat16, tf.float16])
def test_upsample_nearest_2x_forward_and_backward_compile_with_xla(dtype, rng):
    # Small integers: exact in every dtype, so XLA must reproduce the reference bit for bit.
    x = tf.cast(rng.integers(-8, 9, size=(2, 3, 5, 4)), dtype)
    upstream = tf.cast(rng.integers(-8, 9, size=(2, 6, 10, 4)), dtype)
    xla = tf.function(lambda x, u: _value_and_grad(L.upsample_nearest_2x, x, u), jit_compile=True)
    y, grad = xla(x, upstream)  # the plain resize fails here: no XLA kernel for its gradient
    y_ref, grad_ref = _value_and_grad(_plain_resize_2x, x, upstream)
    assert y.dtype == grad.dtype == dtype
    np.testing.assert_array_equal(tf.cast(y, tf.float32).numpy(), tf.cast(y_ref, tf.float32).numpy())
    np.testing.assert_array_equal(tf.cast(grad, tf.float32).numpy(),
                                  tf.cast(grad_ref, tf.float32).numpy())


def test_upsample_nearest_2x_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        L.upsample_nearest_2x(tf.zeros([3, 5, 4]))


@pytest.mark.slow  # ~30 s: XLA compiles ResNet18 + decoder forward and backward
def test_depth_net_forward_and_backward_compile_with_xla():
    net = models.DepthNet(18, init="keras").build_for_shape(64, 64)
    images = tf.random.stateless_uniform([2, 64, 64, 3], seed=(7, 8))
    weights = [tf.random.stateless_normal([2, 64 >> s, 64 >> s, 1], seed=(9, s)) for s in range(4)]

    def loss_and_grads(images):
        with tf.GradientTape() as tape:
            disps = net(images, training=False)  # inference BN: XLA and graph see the same weights
            loss = tf.add_n([tf.reduce_sum(d * w) for d, w in zip(disps, weights, strict=True)])
        return loss, tape.gradient(loss, net.trainable_variables)

    loss, grads = tf.function(loss_and_grads, jit_compile=True)(images)
    loss_ref, grads_ref = tf.function(loss_and_grads)(images)
    np.testing.assert_allclose(loss.numpy(), loss_ref.numpy(), rtol=1e-4)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        scale = float(tf.reduce_max(tf.abs(g_ref))) + 1e-12
        np.testing.assert_allclose(g.numpy() / scale, g_ref.numpy() / scale, atol=1e-3)


@pytest.mark.slow  # ~25 s: XLA compile of the decoder forward and backward
def test_depth_decoder_mixed_bfloat16_backward_compiles_with_xla():
    channels = (4, 4, 8, 8, 16)
    keras.utils.set_random_seed(0)  # fixed weights: the bf16 rounding differences below are then fixed
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        decoder = models.DepthDecoder(channels, init="keras")  # bf16 upsampling inputs
    finally:
        keras.mixed_precision.set_global_policy("float32")
    features = [tf.random.stateless_uniform([2, 32 >> k, 32 >> k, c], seed=(k, 1))
                for k, c in enumerate(channels)]
    weights = [tf.random.stateless_normal([2, 64 >> s, 64 >> s, 1], seed=(9, s)) for s in range(4)]

    def loss_and_grads(features):
        with tf.GradientTape() as tape:
            tape.watch(features)
            disps = decoder(features)
            loss = tf.add_n([tf.reduce_sum(d * w) for d, w in zip(disps, weights, strict=True)])
        return loss, tape.gradient(loss, decoder.trainable_variables + features)

    loss, grads = tf.function(loss_and_grads, jit_compile=True)(features)
    loss_ref, grads_ref = tf.function(loss_and_grads)(features)
    # bf16 activations (8-bit mantissa): XLA and the graph kernels round and accumulate in different
    # orders. Measured relative L2 differences: 1-5 % for kernels and features, up to ~10 % for the
    # biases of the finest convs (sums over every pixel of terms of both signs). A wrong gradient
    # (missing term, wrong upsampling adjoint) is O(1) off.
    np.testing.assert_allclose(loss.numpy(), loss_ref.numpy(), rtol=1e-2)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert g.dtype == g_ref.dtype == tf.float32
        error = float(tf.norm(g - g_ref) / (tf.norm(g_ref) + 1e-12))
        assert error < 0.15, error


def test_reflect_pad_matches_numpy():
    x = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(2, 3, 4, 1)
    ref = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(L.reflect_pad(tf.constant(x)).numpy(), ref)


def test_first_conv_is_symmetric_and_normalises_input():
    """A centred impulse must give a centred response (TF 'same' would shift it by one pixel)."""
    enc = ResnetEncoder(18, init="keras")
    enc(tf.zeros([1, 32, 32, 3]))
    kernel = np.zeros([7, 7, 3, 64], np.float32)
    kernel[3, 3, :, 0] = 1.0  # identity tap at the kernel centre
    enc.conv1.kernel.assign(kernel)
    img = np.full([1, 32, 32, 3], 0.45, np.float32)  # normalises to exactly 0
    img[0, 10, 14, :] = 0.45 + 0.225  # normalises to 1
    x = (img - 0.45) / 0.225
    out = enc.conv1(L.zero_pad(tf.constant(x), 3)).numpy()[0, :, :, 0]
    assert out[5, 7] == pytest.approx(3.0) and np.count_nonzero(out) == 1


def _stats(layer):
    k = layer.kernel.numpy()
    return float(np.abs(k).max()), float(k.std())


def test_torch_initialisers():
    keras.utils.set_random_seed(0)
    # Decoder: PyTorch default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kernel and bias.
    block = L.ConvBlock(512, 256, "torch")
    block(tf.zeros([1, 4, 4, 512]))
    conv = block.conv.conv
    bound = 1 / np.sqrt(512 * 9)
    kmax, kstd = _stats(conv)
    assert kmax <= bound and kstd == pytest.approx(bound / np.sqrt(3), rel=0.02)
    bias = conv.bias.numpy()
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.8 * bound
    # Encoder: kaiming normal, fan_out, std = sqrt(2 / (out * kh * kw)); BN gamma 1, beta 0.
    res = BasicBlock(256, 512, stride=2, init="torch")
    res(tf.zeros([1, 4, 4, 256]))
    assert _stats(res.conv2)[1] == pytest.approx(np.sqrt(2 / (512 * 9)), rel=0.02)
    assert np.all(res.bn1.gamma.numpy() == 1) and np.all(res.bn1.beta.numpy() == 0)


def test_keras_initialisers_differ():
    keras.utils.set_random_seed(0)
    block = L.ConvBlock(512, 256, "keras")
    block(tf.zeros([1, 4, 4, 512]))
    conv = block.conv.conv
    assert np.all(conv.bias.numpy() == 0)
    glorot_limit = np.sqrt(6 / (512 * 9 + 256 * 9))
    assert _stats(conv)[1] == pytest.approx(glorot_limit / np.sqrt(3), rel=0.02)


def test_mixed_precision_outputs_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = models.DepthNet(18, scales=(0,))
        disp = net(tf.random.stateless_uniform([1, 64, 64, 3], seed=(1, 1)))[0]
        pose = models.PoseDecoder()
        aa, t = pose([tf.zeros([1, 2, 2, 512], "bfloat16")] * 5)
        assert net.encoder.conv1.compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert disp.dtype == aa.dtype == t.dtype == tf.float32 and aa.shape == (1, 2, 3)
    assert net.encoder.conv1.kernel.dtype == "float32"


def test_build_from_model_config():
    depth, pose = models.build(ModelConfig(num_layers=18, scales=(0, 1)), use_pose_net=False)
    assert depth.built and len(depth.decoder.scales) == 2 and pose is None


def test_bad_inputs_raise_clear_errors(depth_net, pose_net):
    with pytest.raises(ValueError, match=r"images must be \[B, H, W, 3\]"):
        depth_net(tf.zeros([1, 32, 32, 6]))
    with pytest.raises(ValueError, match=r"multiples of 32 and >= 64"):
        depth_net(tf.zeros([1, 32, 64, 3]))
    with pytest.raises(ValueError, match=r"pair must be \[B, H, W, 6\]"):
        pose_net(tf.zeros([1, 32, 32, 3]))
    with pytest.raises(ValueError, match="num_layers must be one of"):
        models.DepthNet(101)
    with pytest.raises(ValueError, match="scales must be 0..n-1"):
        models.DepthNet(18, scales=(1, 2))
    with pytest.raises(ValueError, match="init must be one of"):
        models.PoseNet(18, init="xavier")


@pytest.mark.parametrize("make", [
    lambda lo, hi: ModelConfig(min_depth=lo, max_depth=hi),
    lambda lo, hi: models.DepthNet(min_depth=lo, max_depth=hi),
    lambda lo, hi: ModelInfo(height=32, width=64, min_depth=lo, max_depth=hi),
    lambda lo, hi: disp_to_depth_coefficients(lo, hi),
    lambda lo, hi: ScoringOptions(min_depth=lo, max_depth=hi),
], ids=["config", "network", "export_info", "geometry", "scoring"])
def test_one_depth_range_default_and_one_check(make):
    """Every holder of a depth range rejects ``min >= max`` or ``min <= 0`` with the same check, and
    the network and the export record default to the config's range (paper Sec. 4: 0.1, 100)."""
    for lo, hi in ((5.0, 1.0), (0.0, 1.0), (1.0, 1.0)):
        with pytest.raises(ValueError, match=r"need 0 < .*min_depth < .*max_depth, got"):
            make(lo, hi)
    make(0.5, 50.0)  # a valid range passes
    assert (ModelConfig().min_depth, ModelConfig().max_depth) == DEPTH_RANGE == (0.1, 100.0)
    assert (models.DepthNet().min_depth, models.DepthNet().max_depth) == DEPTH_RANGE
    assert (ModelInfo(32, 64).min_depth, ModelInfo(32, 64).max_depth) == DEPTH_RANGE
