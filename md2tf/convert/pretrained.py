"""ImageNet initialisation of the ResNet encoders from local torchvision weights (never downloads).

Accepted files: torchvision's ``resnet{18,34,50}-*.pth`` (needs the optional torch extra) or a portable
``.npz`` with the same keys (``python -m md2tf.convert.imagenet --pth FILE.pth --out FILE.npz``).
"""

from __future__ import annotations

import os

import numpy as np

from md2tf.convert.torch_weights import load_torch_state_dict, read_state_dict
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


def imagenet_state_for_encoder(state: dict, num_input_images: int) -> dict:
    """Adapts a torchvision ResNet state dict to an encoder with ``3 * num_input_images`` inputs.

    The first conv ``conv1.weight`` ``[64, 3, 7, 7]`` is concatenated ``num_input_images`` times along
    input channels and divided by ``num_input_images`` (paper supplementary B), so a pair of identical
    images gives the ImageNet response. A leading ``encoder.`` prefix on every key is stripped.
    """
    tensor_keys = [k for k, v in state.items() if isinstance(v, np.ndarray)]
    if tensor_keys and all(k.startswith("encoder.") for k in tensor_keys):
        state = {k[len("encoder."):] if k.startswith("encoder.") else k: v for k, v in state.items()}
    if "conv1.weight" not in state:
        raise ValueError("encoder weights have no 'conv1.weight': not a torchvision ResNet state dict")
    state = dict(state)
    conv1 = np.asarray(state["conv1.weight"])
    if num_input_images > 1 and conv1.shape[1] == 3:
        state["conv1.weight"] = np.concatenate([conv1] * num_input_images, axis=1) / num_input_images
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


def init_encoders(encoder_weights: str, depth_net, pose_net=None) -> bool:
    """Loads ImageNet weights into the encoders of a run's networks (``ModelConfig.encoder_weights``).

    Args:
      encoder_weights: ``none`` / empty (nothing to load) or a local ``.pth``/``.npz`` file.
      depth_net: built ``DepthNet``.
      pose_net: built ``PoseNet`` or None (its first conv is tiled over the 2 input images).

    Returns:
      Whether weights were loaded.

    Raises:
      FileNotFoundError, ValueError: see `load_encoder_weights`.
    """
    if not encoder_weights or encoder_weights.lower() == "none":
        return False
    load_encoder_weights(depth_net.encoder, encoder_weights)
    if pose_net is not None:
        load_encoder_weights(pose_net.encoder, encoder_weights)
    return True
