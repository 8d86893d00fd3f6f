"""``md2tf.predict`` as a library: depth for an image, a folder or an animated GIF, any input size.

For each frame named ``<name>`` it writes, at the frame's original resolution:
  * ``<name>_disp.png``: magma-coloured disparity (min -> dark, 95th percentile -> bright);
  * ``<name>_disp.npy``: float32 ``[H, W]`` scaled disparity (``disp_to_depth``'s first output, the
    quantity Monodepth2 evaluates), bilinearly resized from the model size;
  * ``<name>_depth.npy``: float32 ``[H, W]`` depth = ``metric_scale / scaled disparity`` (metres for
    stereo-trained models, relative otherwise; see the model card).

Unreadable files are reported and skipped; the run goes on and ends with a summary.
Video containers (mp4, avi) are not read: no video decoder ships with md2tf's dependencies. Extract
frames first (``ffmpeg -i in.mp4 frames/%06d.png``) or pass an animated GIF.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageSequence

from md2tf.deploy.images import (
    IMAGE_EXTENSIONS,
    colorize,
    list_images,
    load_image_rgb,
    resize_map,
    resize_rgb,
)
from md2tf.deploy.inference import Predictor
from md2tf.progress import Progress

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclasses.dataclass
class PredictSummary:
    """Outcome of a prediction run (``out_dir``: where the files went)."""

    written: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    num_frames: int = 0
    out_dir: str = ""

    def lines(self) -> list[str]:
        where = f" to {self.out_dir}" if self.out_dir else ""
        out = [f"predicted {self.num_frames} frame(s), wrote {len(self.written)} file(s){where}, "
               f"{len(self.failed)} failure(s)"]
        out += [f"  FAILED {path}: {reason}" for path, reason in self.failed]
        return out


def _gif_frames(path: str) -> Iterator[tuple[str, np.ndarray]]:
    stem = os.path.splitext(os.path.basename(path))[0]
    with Image.open(path) as img:
        for i, frame in enumerate(ImageSequence.Iterator(img)):
            yield f"{stem}_{i:06d}", np.asarray(frame.convert("RGB"), np.uint8)


def _is_animated(path: str) -> bool:
    try:
        with Image.open(path) as img:
            return getattr(img, "n_frames", 1) > 1
    except (OSError, SyntaxError, ValueError):
        return False


def list_inputs(path: str) -> list[str]:
    """Files to process: ``path`` itself (image or GIF) or the images of a folder.

    Raises:
      ValueError: ``path`` does not exist, is a video container, or a folder without images.
    """
    if os.path.isdir(path):
        files = list_images(path)
        if not files:
            raise ValueError(f"--input: no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {path!r}")
        return files
    if not os.path.exists(path):
        raise ValueError(f"--input: {path!r} does not exist")
    if path.lower().endswith(VIDEO_EXTENSIONS):
        raise ValueError(f"--input: cannot decode video {path!r} without a video reader; extract "
                         "frames first (ffmpeg -i in.mp4 frames/%06d.png) and pass the folder")
    return [path]


def predict_image(predictor: Predictor, image: np.ndarray) -> dict[str, np.ndarray]:
    """Depth of one uint8 RGB image ``[h, w, 3]`` of any size, returned at ``[h, w]``.

    Returns:
      ``disparity`` (sigmoid), ``scaled_disparity`` and ``depth``, each float32 ``[h, w]``. The sigmoid
      disparity is resized (bilinear) and the other two are derived from it, so that
      ``depth == metric_scale / scaled_disparity`` holds at the original size (float32 rounding).
    """
    h, w = image.shape[:2]
    out = predictor.predict(resize_rgb(image, predictor.height, predictor.width)[None])
    disp = np.clip(resize_map(out["disparity"][0], h, w), 0.0, 1.0).astype(np.float32)
    scaled, depth = predictor.info.disp_to_depth(disp)
    return {"disparity": disp, "scaled_disparity": scaled, "depth": depth}


def run_predict(predictor: Predictor, input_path: str, out_dir: str, save_npy: bool = True,
                save_color: bool = True, vmax_percentile: float = 95.0,
                progress: bool = True) -> PredictSummary:
    """Predicts every frame of ``input_path`` and writes the outputs listed in the module docstring.

    Args:
      predictor: from `md2tf.deploy.inference.load_predictor`.
      input_path: image file, folder of images, or animated GIF.
      out_dir: output directory (created).
      save_npy, save_color: which outputs to write.
      vmax_percentile: disparity percentile mapped to the brightest colour.
      progress: draw a progress bar on stderr.

    Returns:
      A `PredictSummary` (files written, failures with reasons).
    """
    files = list_inputs(input_path)
    os.makedirs(out_dir, exist_ok=True)
    summary = PredictSummary(out_dir=out_dir)
    used: set[str] = set()
    bar = Progress(len(files), "predict", unit="file", enabled=progress)
    for path in files:
        try:
            if path.lower().endswith(".gif") and _is_animated(path):
                frames = list(_gif_frames(path))
            else:
                name = os.path.splitext(os.path.basename(path))[0]
                if name in used:
                    name = os.path.basename(path).replace(".", "_")
                frames = [(name, load_image_rgb(path))]
            for name, image in frames:
                used.add(name)
                res = predict_image(predictor, image)
                summary.num_frames += 1
                base = os.path.join(out_dir, name)
                if save_color:
                    Image.fromarray(colorize(res["scaled_disparity"], percentile=vmax_percentile)
                                    ).save(base + "_disp.png")
                    summary.written.append(base + "_disp.png")
                if save_npy:
                    np.save(base + "_disp.npy", res["scaled_disparity"])
                    np.save(base + "_depth.npy", res["depth"])
                    summary.written += [base + "_disp.npy", base + "_depth.npy"]
        except (ValueError, OSError) as e:
            summary.failed.append((path, str(e)))
        bar.update(1, postfix=os.path.basename(path)[-40:])
    bar.close()
    return summary
