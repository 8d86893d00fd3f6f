"""Image I/O for prediction and calibration (Pillow + NumPy only) and magma colouring.

The colour table itself is `md2tf.visualization.magma_table` (re-exported here).
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

from md2tf.visualization import magma_table

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def colorize(values: np.ndarray, vmin: float | None = None, vmax: float | None = None,
             percentile: float = 95.0) -> np.ndarray:
    """Maps a 2-D array to magma RGB, as Monodepth2's visualisations do for disparity.

    Args:
      values: ``[H, W]`` (or ``[H, W, 1]``) array, e.g. disparity (large = near = bright).
      vmin: value mapped to the darkest colour; None = ``values.min()``.
      vmax: value mapped to the brightest colour; None = the ``percentile``-th percentile.
      percentile: percentile used for ``vmax`` (95, as in the reference's ``test_simple``).

    Returns:
      uint8 ``[H, W, 3]`` RGB.
    """
    v = np.asarray(values, np.float64)
    if v.ndim == 3 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.ndim != 2:
        raise ValueError(f"values must be [H, W] or [H, W, 1], got shape {np.shape(values)}")
    lo = float(v.min()) if vmin is None else float(vmin)
    hi = float(np.percentile(v, percentile)) if vmax is None else float(vmax)
    t = np.clip((v - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    table = magma_table()
    n = len(table)  # matplotlib's convention: bin floor(t * n), t == 1 in the last bin
    return table[np.minimum(np.floor(t * n), n - 1).astype(np.int64)]


def load_image_rgb(path: str) -> np.ndarray:
    """Reads an image as uint8 RGB ``[H, W, 3]``: EXIF orientation applied, grey/palette/RGBA converted.

    16-bit grey images are scaled by 1/257 (65535 -> 255); float images by their maximum.

    RGBA images are composited on black (the alpha channel is dropped). Raises ``ValueError`` naming the
    file if Pillow cannot read it.
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float grey
                grey = np.asarray(img, np.float64)
                scale = 257.0 if img.mode != "F" else max(float(grey.max()), 1e-12) / 255.0
                grey = np.clip(np.round(grey / scale), 0, 255).astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=-1)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (0, 0, 0, 255))
                img = Image.alpha_composite(background, img)
            return np.asarray(img.convert("RGB"), np.uint8)
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises these for corrupt/unknown files
        raise ValueError(f"cannot read image {path!r}: {e}") from e


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resizes uint8 RGB ``[h, w, 3]`` to ``[height, width, 3]`` (Lanczos, as ``test_simple``)."""
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.LANCZOS))


def resize_map(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinearly resizes a float map ``[h, w]`` (or ``[h, w, 1]``) to ``[height, width]`` float32."""
    v = np.asarray(values, np.float32)
    if v.ndim == 3:
        v = v[..., 0]
    if v.shape == (height, width):
        return v
    return np.asarray(Image.fromarray(v, mode="F").resize((width, height), Image.Resampling.BILINEAR),
                      np.float32)


def list_images(folder: str) -> list[str]:
    """Files of ``folder`` (not recursive) with an image extension, sorted by name."""
    if not os.path.isdir(folder):
        raise ValueError(f"{folder!r} is not a directory")
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if f.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, f)))


def structured_images(num: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Random but image-like uint8 RGB ``[height, width, 3]`` frames (gradients, boxes, noise).

    Used as calibration data when no dataset is given; real frames calibrate int8 better.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for _ in range(num):
        img = np.zeros((height, width, 3), np.float32)
        for c in range(3):
            a, b, d = rng.uniform(-1, 1, 3)
            img[..., c] = 128 + 100 * (a * xx / width + b * yy / height) + 40 * d
        for _ in range(rng.integers(2, 6)):
            y0, x0 = rng.integers(0, height), rng.integers(0, width)
            img[y0:y0 + rng.integers(4, height // 2 + 5), x0:x0 + rng.integers(4, width // 2 + 5)] = \
                rng.uniform(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out
