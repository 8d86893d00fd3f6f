"""The magma colour map shared by prediction PNGs (``deploy.images``) and TensorBoard images
(``training.summaries``). NumPy only: no TensorFlow import, so any package may use it.

(``tflite/run_tflite.py`` keeps its own copy on purpose: that runner never imports md2tf.)
"""

from __future__ import annotations

import numpy as np

#: Anchor colours (RGB in [0, 1]) of matplotlib's perceptually uniform "magma" map at evenly spaced
#: positions 0, 1/8, ..., 1; linear interpolation between them is visually close to the 256-entry map.
MAGMA_ANCHORS = np.array([
    [0.001462, 0.000466, 0.013866],
    [0.078815, 0.054184, 0.211667],
    [0.232077, 0.059889, 0.437695],
    [0.390384, 0.100379, 0.501864],
    [0.550287, 0.161158, 0.505719],
    [0.716387, 0.214982, 0.475290],
    [0.868793, 0.287728, 0.409303],
    [0.967671, 0.439703, 0.359810],
    [0.987053, 0.991438, 0.749504],
])


def magma_table(n: int = 256) -> np.ndarray:
    """The magma colour map as ``[n, 3]`` uint8 RGB, dark (0) to bright (n - 1)."""
    pos = np.linspace(0.0, 1.0, len(MAGMA_ANCHORS))
    x = np.linspace(0.0, 1.0, n)
    table = np.stack([np.interp(x, pos, MAGMA_ANCHORS[:, c]) for c in range(3)], axis=-1)
    return np.round(table * 255.0).astype(np.uint8)
