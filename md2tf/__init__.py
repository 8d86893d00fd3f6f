"""md2tf: Monodepth2 self-supervised monocular depth in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"
