"""ImageNet initialisation of the encoders (``--encoder_weights``).

ResNet encoders read local torchvision weights (md2tf never downloads them): torchvision's
``resnet{18,34,50}-*.pth`` (needs the optional torch extra) or a portable ``.npz`` with the same keys
(``python -m md2tf.convert.imagenet --pth FILE.pth --out FILE.npz``). MobileNetV3 encoders read Keras
weights (`load_keras_encoder_weights`). Either way a pose encoder's first conv follows
`tile_first_conv`.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from md2tf.config import KERAS_IMAGENET
from md2tf.convert.torch_weights import load_torch_state_dict, read_state_dict
from md2tf.models import mobilenet_encoder
from md2tf.models.mobilenet_encoder import MobileNetV3Encoder
from md2tf.models.resnet_encoder import ResnetEncoder

# Official torchvision downloads (documented only; md2tf never fetches anything).
TORCHVISION_URLS = {
    18: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    34: "https://download.pytorch.org/models/resnet34-b627a593.pth",
    50: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}


def _missing_file_message(path: str, num_layers: int) -> str:
    url = TORCHVISION_URLS.get(num_layers, TORCHVISION_URLS[18])
    return (
        f"encoder weights file not found: {path!r}. Download torchvision's ImageNet ResNet{num_layers} "
        f"weights yourself, e.g. `wget {url}`, then pass the file (.pth needs `pip install -e '.[torch]'`; "
        "or convert once with `python -m md2tf.convert.imagenet --pth FILE.pth --out FILE.npz`), "
        "or use --encoder_weights=none to train from scratch."
    )


def tile_first_conv(kernel: np.ndarray, num_input_images: int, axis: int) -> np.ndarray:
    """An ImageNet first-conv kernel for ``num_input_images`` RGB images stacked along channels.

    The 3-channel kernel is repeated ``num_input_images`` times along its input-channel axis and divided
    by ``num_input_images`` (paper supplementary B), so a stack of identical images gives the
    single-image ImageNet response. One rule for every encoder.

    Args:
      kernel: the pretrained kernel, 3 input channels on ``axis``.
      num_input_images: images stacked along channels (2 for the pose encoder; 1 returns ``kernel``).
      axis: its input-channel axis (1 in PyTorch's OIHW, 2 in Keras' HWIO).

    Returns:
      The kernel with ``3 * num_input_images`` input channels (``kernel`` itself when it does not have
      3, so a mismatch is reported by the shape check of the caller).
    """
    kernel = np.asarray(kernel)
    if num_input_images <= 1 or kernel.shape[axis] != 3:
        return kernel
    return np.concatenate([kernel] * num_input_images, axis=axis) / num_input_images


def imagenet_state_for_encoder(state: dict, num_input_images: int) -> dict:
    """Adapts a torchvision ResNet state dict to an encoder with ``3 * num_input_images`` inputs.

    The first conv ``conv1.weight`` ``[64, 3, 7, 7]`` follows `tile_first_conv` (concatenated
    ``num_input_images`` times along input channels and divided by ``num_input_images``), so a pair of
    identical images gives the ImageNet response. A leading ``encoder.`` prefix on every key is
    stripped.
    """
    tensor_keys = [k for k, v in state.items() if isinstance(v, np.ndarray)]
    if tensor_keys and all(k.startswith("encoder.") for k in tensor_keys):
        state = {k[len("encoder."):] if k.startswith("encoder.") else k: v for k, v in state.items()}
    if "conv1.weight" not in state:
        raise ValueError("encoder weights have no 'conv1.weight': not a torchvision ResNet state dict")
    state = dict(state)
    state["conv1.weight"] = tile_first_conv(state["conv1.weight"], num_input_images, axis=1)
    return state


def load_encoder_weights(encoder: ResnetEncoder, path: str) -> None:
    """Loads ImageNet weights from a local ``.pth``/``.npz`` into a built `ResnetEncoder`.

    Args:
      encoder: built encoder (any ``num_input_images``; conv1 is tiled for > 1).
      path: torchvision ``resnet*.pth`` or the equivalent ``.npz``.

    Raises:
      FileNotFoundError: if ``path`` does not exist (the message says where to get the weights).
      ValueError: if the keys or shapes do not match the encoder (e.g. ResNet50 weights for a
        ResNet18 encoder); the message lists them.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(_missing_file_message(path, encoder.num_layers))
    state = imagenet_state_for_encoder(read_state_dict(path), encoder.num_input_images)
    try:
        load_torch_state_dict(encoder, state)
    except ValueError as err:
        raise ValueError(
            f"{path} does not fit a ResNet{encoder.num_layers} encoder: {err}"
        ) from err


# Keras' published no-top MobileNetV3 weights (documented only; with ``--encoder_weights=imagenet``
# Keras itself fetches them into ~/.keras/models, or finds them there).
KERAS_WEIGHT_URLS = {
    variant: ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/"
              f"weights_{variant}_224_1.0_float_no_top_v2.h5")
    for variant in mobilenet_encoder.VARIANTS
}


def keras_trunk_weights(variant: str, source: str) -> dict[str, list[np.ndarray]]:
    """The weights of a 3-channel Keras MobileNetV3 trunk, by Keras layer name.

    Args:
      variant: a `md2tf.models.mobilenet_encoder.VARIANTS` name.
      source: ``imagenet`` (Keras' published weights: Keras downloads them once into
        ``~/.keras/models`` or reads them from there) or a local file of the same trunk that Keras'
        ``load_weights`` reads: Keras' no-top ``.h5`` (`KERAS_WEIGHT_URLS`), or a ``.weights.h5`` /
        ``.keras`` saved from ``keras.applications.MobileNetV3*(include_top=False)``.

    Returns:
      ``{layer name: [arrays in Keras' order]}`` for every layer with weights.

    Raises:
      FileNotFoundError: a local file that does not exist (the message says where Keras publishes
        the weights).
      ValueError: the weights cannot be fetched or do not fit the trunk (naming ``--encoder_weights``).
    """
    flag = f"--encoder_weights={source}"
    if source.strip().lower() == KERAS_IMAGENET:
        try:
            trunk = mobilenet_encoder.keras_trunk(variant, 3, weights=KERAS_IMAGENET)
        except Exception as err:  # Keras raises plain Exceptions for failed fetches
            raise ValueError(f"{flag}: Keras could not fetch its {variant} weights "
                             f"({' '.join(str(err).split())[:200]}); download "
                             f"{KERAS_WEIGHT_URLS[variant]} yourself and pass the file") from None
    else:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{flag}: no such file; Keras publishes the {variant} ImageNet "
                                    f"weights at {KERAS_WEIGHT_URLS[variant]}")
        trunk = mobilenet_encoder.keras_trunk(variant, 3)
        try:
            # Keras only warns for some mismatches (a container of the file it cannot match keeps its
            # fresh weights): every warning is taken as a mismatch.
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                trunk.load_weights(source)
        except Exception as err:  # ValueError, KeyError, h5py errors or a warning raised above
            raise ValueError(f"{flag} does not fit a {variant} trunk without classifier: "
                             f"{' '.join(str(err).split())[:300]}") from None
    return {layer.name: layer.get_weights() for layer in trunk.layers if layer.weights}


def load_keras_encoder_weights(encoder: MobileNetV3Encoder, source: str) -> None:
    """Loads Keras ImageNet weights into a built `MobileNetV3Encoder`, layer by layer name.

    The first conv (``conv``) of an encoder over several images follows `tile_first_conv`; every
    other layer, BatchNorm moving statistics included, takes the weights as they are.

    Args:
      encoder: the encoder (any ``num_input_images``).
      source: see `keras_trunk_weights`.

    Raises:
      FileNotFoundError, ValueError: see `keras_trunk_weights`; ValueError too when a layer is missing
        or has other shapes (the first five are listed).
    """
    weights = keras_trunk_weights(encoder.variant, source)
    assignments, problems = [], []
    for name in encoder.layer_names:
        layer = getattr(encoder, name)
        values = weights.get(name)
        if values is None:
            problems.append(f"{name} missing")
            continue
        if name == mobilenet_encoder.FIRST_CONV:
            values = [tile_first_conv(values[0], encoder.num_input_images, axis=2), *values[1:]]
        have = [tuple(v.shape) for v in layer.get_weights()]
        got = [tuple(np.shape(v)) for v in values]
        if have != got:
            problems.append(f"{name} has shapes {got} in the file, {have} here")
        else:
            assignments.append((layer, values))
    if problems:
        raise ValueError(f"--encoder_weights={source} does not fit the {encoder.variant} "
                         f"encoder: {problems[:5]}")
    for layer, values in assignments:
        layer.set_weights(values)


def init_encoders(encoder_weights: str, depth_net, pose_net=None) -> bool:
    """Loads ImageNet weights into the encoders of a run's networks (``ModelConfig.encoder_weights``).

    Args:
      encoder_weights: ``none`` / empty (nothing to load); for ResNet encoders a local
        ``.pth``/``.npz`` file, for MobileNetV3 encoders ``imagenet`` or a local Keras
        ``.h5``/``.weights.h5``/``.keras`` file (``ModelConfig`` checks the kinds match).
      depth_net: built ``DepthNet``.
      pose_net: built ``PoseNet`` or None (its first conv follows `tile_first_conv` over the 2
        input images).

    Returns:
      Whether weights were loaded.

    Raises:
      FileNotFoundError, ValueError: see `load_encoder_weights` and `load_keras_encoder_weights`.
    """
    if not encoder_weights or encoder_weights.lower() == "none":
        return False
    for net in (depth_net, pose_net):
        if net is None:
            continue
        if isinstance(net.encoder, MobileNetV3Encoder):
            load_keras_encoder_weights(net.encoder, encoder_weights)
        else:
            load_encoder_weights(net.encoder, encoder_weights)
    return True
