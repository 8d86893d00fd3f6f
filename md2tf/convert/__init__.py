"""Import of PyTorch weights: official Monodepth2 checkpoints and torchvision ImageNet ResNets.

- `torch_layers(model)`: the PyTorch name of every md2tf layer with weights (`torch_names`).
- `load_torch_state_dict(model, state_dict)`: ``{name: np.ndarray}`` in PyTorch layout -> md2tf model.
- `load_encoder_weights` / `init_encoders`: ImageNet initialisation from local torchvision weights.
- `convert_monodepth2(model_dir, out_dir)`: ``python -m md2tf.convert --model_dir DIR --out OUT``.
- ``python -m md2tf.convert.imagenet --pth resnet18-f37072fd.pth --out resnet18.npz``: torch-free weights.
"""

from md2tf.convert.pretrained import init_encoders, load_encoder_weights
from md2tf.convert.torch_checkpoint import convert_monodepth2, infer_num_layers
from md2tf.convert.torch_names import torch_layers
from md2tf.convert.torch_weights import load_torch_state_dict, read_state_dict

__all__ = ["convert_monodepth2", "infer_num_layers", "init_encoders", "load_encoder_weights",
           "load_torch_state_dict", "read_state_dict", "torch_layers"]
