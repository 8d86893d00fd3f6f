"""ResNet encoders (torchvision-equivalent trunk, NHWC) returning five feature maps.

Feature ``k`` (k = 0..4) has stride ``2^(k+1)``: ``relu(bn1(conv1))`` at 1/2, then ``layer1`` after the
max-pool at 1/4, ``layer2`` 1/8, ``layer3`` 1/16, ``layer4`` 1/32. Channels are
``[64, 64, 128, 256, 512]`` (BasicBlock, ResNet18/34) or ``[64, 256, 512, 1024, 2048]`` (Bottleneck,
ResNet50). Bottleneck blocks stride their 3x3 conv (torchvision's "v1.5").

All padding is explicit and symmetric, BN uses eps 1e-5 / momentum 0.9, so PyTorch weights give the
same outputs (see `md2tf.convert`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from md2tf.models import layers as L

# ImageNet-free input normalisation of the reference: one scalar mean/std for all channels.
INPUT_MEAN = 0.45
INPUT_STD = 0.225

BLOCKS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)), 50: ("bottleneck", (3, 4, 6, 3))}


def num_ch_enc(num_layers: int) -> tuple[int, ...]:
    """Channels of the five encoder features for a ResNet depth (18, 34 or 50)."""
    if num_layers not in BLOCKS:
        raise ValueError(f"num_layers must be one of {sorted(BLOCKS)}, got {num_layers}")
    factor = 4 if BLOCKS[num_layers][0] == "bottleneck" else 1
    return (64, 64 * factor, 128 * factor, 256 * factor, 512 * factor)


def _conv(filters: int, kernel: int, stride: int, init: str, name: str) -> keras.layers.Conv2D:
    # Bias-free; padding is applied by the caller (symmetric zeros).
    return keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        use_bias=False,
        kernel_initializer=L.resnet_conv_initializer(init),
        name=name,
    )


class _Block(keras.layers.Layer):
    """Shared parts of the residual blocks (projection shortcut and torch names)."""

    expansion = 1
    conv_names: tuple[str, ...] = ()

    def _make_shortcut(self, in_channels, planes, stride, init, synchronized_bn):
        if stride != 1 or in_channels != planes * self.expansion:
            self.downsample_conv = _conv(planes * self.expansion, 1, stride, init, "downsample_conv")
            self.downsample_bn = L.batch_norm(synchronized_bn, "downsample_bn")
        else:
            self.downsample_conv = None
            self.downsample_bn = None

    def _shortcut(self, x, training):
        if self.downsample_conv is None:
            return x
        return self.downsample_bn(self.downsample_conv(x), training=training)


class BasicBlock(_Block):
    """Two 3x3 convs + identity/projection shortcut: ``[B,H,W,Cin] -> [B,H/s,W/s,planes]``."""

    expansion = 1
    conv_names = ("conv1", "conv2")

    def __init__(self, in_channels, planes, stride=1, init="torch", synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.conv1 = _conv(planes, 3, stride, init, "conv1")
        self.bn1 = L.batch_norm(synchronized_bn, "bn1")
        self.conv2 = _conv(planes, 3, 1, init, "conv2")
        self.bn2 = L.batch_norm(synchronized_bn, "bn2")
        self._make_shortcut(in_channels, planes, stride, init, synchronized_bn)

    def call(self, x, training=None):
        y = tf.nn.relu(self.bn1(self.conv1(L.zero_pad(x, 1)), training=training))
        y = self.bn2(self.conv2(L.zero_pad(y, 1)), training=training)
        return tf.nn.relu(y + self._shortcut(x, training))


class Bottleneck(_Block):
    """1x1 -> 3x3 (strided) -> 1x1 (x4 channels) + shortcut: ``[B,H,W,Cin] -> [B,H/s,W/s,4*planes]``."""

    expansion = 4
    conv_names = ("conv1", "conv2", "conv3")

    def __init__(self, in_channels, planes, stride=1, init="torch", synchronized_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.conv1 = _conv(planes, 1, 1, init, "conv1")
        self.bn1 = L.batch_norm(synchronized_bn, "bn1")
        self.conv2 = _conv(planes, 3, stride, init, "conv2")
        self.bn2 = L.batch_norm(synchronized_bn, "bn2")
        self.conv3 = _conv(planes * 4, 1, 1, init, "conv3")
        self.bn3 = L.batch_norm(synchronized_bn, "bn3")
        self._make_shortcut(in_channels, planes, stride, init, synchronized_bn)

    def call(self, x, training=None):
        y = tf.nn.relu(self.bn1(self.conv1(x), training=training))
        y = tf.nn.relu(self.bn2(self.conv2(L.zero_pad(y, 1)), training=training))
        y = self.bn3(self.conv3(y), training=training)
        return tf.nn.relu(y + self._shortcut(x, training))


class ResnetEncoder(keras.layers.Layer):
    """ResNet trunk without the classifier: images -> five feature maps.

    Args:
      num_layers: 18, 34 or 50.
      num_input_images: images stacked along channels (1 = depth encoder, 2 = pose encoder with a
        6-channel first conv).
      init: ``"torch"`` (torchvision's kaiming fan-out convs, BN gamma 1 / beta 0) or ``"keras"``.
      synchronized_bn: cross-replica BatchNormalization (MirroredStrategy training).

    Call args:
      images: ``[B, H, W, 3 * num_input_images]`` float RGB in [0, 1]; H and W multiples of 32.
      training: BN mode.

    Returns:
      Tuple of 5 tensors ``[B, H/2^(k+1), W/2^(k+1), num_ch_enc[k]]``, k = 0..4.
    """

    def __init__(
        self,
        num_layers: int = 18,
        num_input_images: int = 1,
        init: str = "torch",
        synchronized_bn: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_ch_enc = num_ch_enc(num_layers)
        L.check_init(init)
        if num_input_images < 1:
            raise ValueError(f"num_input_images must be >= 1, got {num_input_images}")
        self.num_layers = num_layers
        self.num_input_images = num_input_images
        self.init = init
        self.synchronized_bn = synchronized_bn
        kind, counts = BLOCKS[num_layers]
        block_cls = Bottleneck if kind == "bottleneck" else BasicBlock

        self.conv1 = _conv(64, 7, 2, init, "conv1")
        self.bn1 = L.batch_norm(synchronized_bn, "bn1")
        self.maxpool = keras.layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")
        block_names = []
        in_channels = 64
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
            names = []
            for j in range(count):
                stride = 2 if (stage > 1 and j == 0) else 1
                name = f"layer{stage}_{j}"
                block = block_cls(in_channels, planes, stride, init, synchronized_bn, name=name)
                setattr(self, name, block)  # named attribute: tracked by tf.train.Checkpoint
                names.append(name)
                in_channels = planes * block_cls.expansion
            block_names.append(tuple(names))
        self.block_names = tuple(block_names)

    @property
    def architecture(self) -> str:
        """The `md2tf.config.encoder_architecture` name (``resnet18``, ``resnet50``, ...)."""
        return f"resnet{self.num_layers}"

    def call(self, images, training=None):
        channels = images.shape[-1]
        if channels is not None and channels != 3 * self.num_input_images:
            raise ValueError(
                f"images must be [B, H, W, {3 * self.num_input_images}] "
                f"(num_input_images={self.num_input_images}), got shape {images.shape}"
            )
        x = (images - INPUT_MEAN) / INPUT_STD
        x = tf.nn.relu(self.bn1(self.conv1(L.zero_pad(x, 3)), training=training))
        features = [x]
        # Zero padding is exact here: inputs are >= 0 after the ReLU (and -inf breaks int8 export).
        x = self.maxpool(L.zero_pad(x, 1))
        for names in self.block_names:
            for name in names:
                x = getattr(self, name)(x, training=training)
            features.append(x)
        return tuple(features)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            num_input_images=self.num_input_images,
            init=self.init,
            synchronized_bn=self.synchronized_bn,
        )
        return config
