"""Frames for int8 calibration: the run's training targets, a folder of images, or structured frames."""

from __future__ import annotations

import numpy as np

from md2tf.data import datasets
from md2tf.data.datasets.base import draw
from md2tf.deploy.images import list_images, load_image_rgb, resize_rgb, structured_images


def calibration_images(source: str, num: int, height: int, width: int,
                       data_config=None, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """uint8 RGB frames ``[height, width, 3]`` for int8 calibration, and a description for the card.

    The frames are a seeded random draw (`md2tf.data.datasets.base.draw`) of the training targets
    or of the folder's images, so that they cover the whole dataset rather than its first drive and
    two exports of one checkpoint calibrate on the same frames in the same order (the TFLite
    calibrator is deterministic for given frames, so the int8 models are then identical). Each frame
    is resized as ``md2tf.predict`` does (`resize_rgb`), i.e. as the model will see images on device.

    Args:
      source: ``auto`` (the run's training targets, through the dataset protocol's
        ``draw_frames``, when ``data_config``'s data is readable, else structured frames),
        ``structured``, or a folder of images.
      num: number of frames.
      height, width: model input size.
      data_config: the run's ``DataConfig`` (used by ``auto``).
      seed: selection seed (``--calibration_seed``).

    Raises:
      ValueError: ``source`` is a folder without images.
    """
    if source not in ("auto", "structured"):
        images = list_images(source)
        files = [images[i] for i in draw(len(images), num, seed)]
        if not files:
            raise ValueError(f"--calibration: no images found in {source!r}")
        frames = [resize_rgb(load_image_rgb(f), height, width) for f in files]
        return frames, f"{len(frames)} images from {source} (drawn with seed {seed})"
    if source == "auto" and data_config is not None:
        try:
            dataset = datasets.get_dataset(data_config.dataset)
            drawn, count = dataset.draw_frames(data_config, "train", num, seed)
        except (ValueError, OSError) as e:  # FileNotFoundError included; say why in the card
            reason = f"training data unreadable ({type(e).__name__}: {e})"
        else:
            if drawn:
                frames = [resize_rgb(f, height, width) for f in drawn]
                return frames, (f"{len(frames)} of the {count} training frames of "
                                f"dataset={data_config.dataset} (drawn with seed {seed})")
            reason = "training data empty"
        return (structured_images(num, height, width, seed=seed),
                f"{num} structured random frames (seed {seed}); {reason}")
    return structured_images(num, height, width, seed=seed), f"{num} structured random frames (seed {seed})"
