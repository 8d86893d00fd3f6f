"""Loading PyTorch-layout weights (Monodepth2 ``.pth`` files, torchvision ResNets) into md2tf models.

The library entry point, `load_torch_state_dict`, takes a mapping of names to NumPy arrays, so torch
is needed only to *read* ``.pth`` files (`read_pth`, optional ``torch`` extra).

Layout conversion: conv ``weight`` OIHW -> Keras HWIO (``transpose(2, 3, 1, 0)``), conv ``bias`` as is;
BatchNorm ``weight, bias, running_mean, running_var`` -> ``gamma, beta, moving_mean,
moving_variance`` (md2tf's BN uses PyTorch's eps 1e-5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np

from md2tf.convert.torch_names import torch_layers

# Non-tensor entries of the reference encoder.pth (height/width are read by the converter CLI).
META_KEYS = ("height", "width", "use_stereo")
IGNORED_SUFFIXES = (".num_batches_tracked",)


def _is_ignored(key: str) -> bool:
    if key in META_KEYS or key.endswith(IGNORED_SUFFIXES):
        return True
    # The classifier of torchvision ResNets (unused by the encoders).
    return key.startswith("fc.") or ".fc." in key or key.startswith("encoder.fc.")


def torch_variable_map(model) -> dict[str, tuple[keras.Variable, str]]:
    """Maps every reference parameter name to ``(keras variable, kind)`` for ``model``.

    Args:
      model: an md2tf network named by `md2tf.convert.torch_names.torch_layers` (DepthNet,
        PoseNet, ResnetEncoder, DepthDecoder, PoseDecoder), already built.

    Returns:
      ``{torch_name: (variable, kind)}``, kind in ``{"conv", "copy"}``.

    Raises:
      ValueError: if the model is not built or not an md2tf network.
    """
    mapping: dict[str, tuple[keras.Variable, str]] = {}
    for prefix, layer in torch_layers(model):
        if not layer.built:
            raise ValueError(
                f"model {model.name!r} is not built (layer {prefix!r}); call it once (e.g. "
                "build_for_shape()) before loading weights"
            )
        if isinstance(layer, keras.layers.BatchNormalization):
            pairs = [("weight", layer.gamma), ("bias", layer.beta),
                     ("running_mean", layer.moving_mean), ("running_var", layer.moving_variance)]
            for suffix, var in pairs:
                mapping[f"{prefix}.{suffix}"] = (var, "copy")
        elif isinstance(layer, keras.layers.Conv2D):
            mapping[f"{prefix}.weight"] = (layer.kernel, "conv")
            if layer.use_bias:
                mapping[f"{prefix}.bias"] = (layer.bias, "copy")
        else:
            raise ValueError(f"unsupported layer type {type(layer).__name__} at {prefix!r}")
    return mapping


def load_torch_state_dict(model, state_dict: Mapping[str, object]) -> list[str]:
    """Assigns reference (PyTorch) weights to an md2tf model, strictly.

    Ignores ``*.num_batches_tracked``, the classifier ``fc.*`` and the meta entries
    ``height``/``width``/``use_stereo``. Everything else must match one to one.

    Args:
      model: a built md2tf network (see `torch_variable_map`).
      state_dict: ``{name: array}`` in PyTorch layout (NumPy arrays, or anything ``np.asarray``
        accepts, e.g. CPU torch tensors).

    Returns:
      The sorted list of ignored keys.

    Raises:
      ValueError: listing unknown keys, missing keys and shape mismatches (nothing is assigned then).
    """
    mapping = torch_variable_map(model)
    ignored = sorted(k for k in state_dict if _is_ignored(k))
    unknown = sorted(k for k in state_dict if k not in mapping and not _is_ignored(k))
    missing = sorted(k for k in mapping if k not in state_dict)
    values, mismatched = {}, []
    for key, (var, kind) in mapping.items():
        if key not in state_dict:
            continue
        value = np.asarray(state_dict[key])
        if kind == "conv" and value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        if tuple(value.shape) != tuple(var.shape):
            expected = tuple(var.shape)
            if kind == "conv":  # report in PyTorch's OIHW layout
                expected = (expected[3], expected[2], expected[0], expected[1])
            mismatched.append(f"{key}: got {tuple(np.asarray(state_dict[key]).shape)}, "
                              f"expected {expected}")
            continue
        values[key] = value
    if unknown or missing or mismatched:
        lines = [f"state_dict does not match {type(model).__name__} ({model.name!r}):"]
        if unknown:
            lines.append(f"  unknown keys ({len(unknown)}): {unknown}")
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {missing}")
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): {mismatched}")
        raise ValueError("\n".join(lines))
    for key, value in values.items():
        var = mapping[key][0]
        var.assign(value.astype(var.dtype))
    return ignored


def read_pth(path: str) -> dict[str, object]:
    """Reads a PyTorch ``state_dict`` file into ``{name: np.ndarray | python scalar}`` (needs torch).

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ImportError: if torch is not installed (``pip install -e '.[torch]'``), with a hint to use
        ``.npz`` instead.
      ValueError: if the file does not hold a flat mapping of tensors.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such .pth file: {path}")
    try:
        import torch  # noqa: PLC0415  (optional: the torch extra)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading {path} needs PyTorch: pip install -e '.[torch]' (or convert it to .npz on a "
            "machine with torch: python -m md2tf.convert.imagenet --pth FILE --out FILE.npz)"
        ) from err
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state_dict (got {type(state).__name__})")
    out: dict[str, object] = {}
    for key, value in state.items():
        out[key] = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
    return out


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Reads a ``.npz`` of PyTorch-layout arrays into ``{name: np.ndarray}``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such .npz file: {path}")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_state_dict(path: str) -> dict[str, object]:
    """Reads ``.pth``/``.pt`` (torch) or ``.npz`` (NumPy) weights by file extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pth", ".pt"):
        return read_pth(path)
    if ext == ".npz":
        return read_npz(path)
    raise ValueError(f"weights file must be .pth, .pt or .npz, got {path!r}")
