"""Import of pretrained weights: official Monodepth2 checkpoints, torchvision ImageNet ResNets and
Keras' ImageNet MobileNetV3s.

- `torch_layers(model)`: the PyTorch name of every md2tf layer with weights (`torch_names`).
- `load_torch_state_dict(model, state_dict)`: ``{name: np.ndarray}`` in PyTorch layout -> md2tf model.
- `load_encoder_weights` / `init_encoders`: ImageNet initialisation from local torchvision weights
  (ResNet) or Keras weights (MobileNetV3, `load_keras_encoder_weights`).
- `convert_monodepth2(model_dir, out_dir)`: ``python -m md2tf.convert --model_dir DIR --out OUT``.
- ``python -m md2tf.convert.imagenet --pth resnet18-f37072fd.pth --out resnet18.npz``: torch-free weights.
"""

import importlib

# Name -> submodule, imported on first use (PEP 562), so that ``python -m md2tf.convert`` and
# ``python -m md2tf.convert.imagenet`` load this package without Keras and can set up TensorFlow
# (log level, oneDNN) before it starts.
_EXPORTS = {
    "init_encoders": "pretrained", "load_encoder_weights": "pretrained",
    "load_keras_encoder_weights": "pretrained",
    "convert_monodepth2": "torch_checkpoint", "infer_num_layers": "torch_checkpoint",
    "torch_layers": "torch_names",
    "load_torch_state_dict": "torch_weights", "read_state_dict": "torch_weights",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"md2tf.convert.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'md2tf.convert' has no attribute {name!r}")
