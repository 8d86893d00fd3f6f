"""The exported inference object and a loader that runs any exported form of it.

`DepthPredictor` is the one graph md2tf exports (SavedModel and every TFLite variant):

    uint8 RGB [B, H, W, 3]  ->  / 255  ->  DepthNet (normalises inside)  ->  disparity at scale 0
                            ->  optional flip post-processing  ->  disp_to_depth  ->  x metric_scale

Outputs (a dict, float32):
  * ``disparity``: the network's sigmoid output in (0, 1), ``[B, H, W, 1]``.
  * ``depth``: ``metric_scale`` x the depth of ``md2tf.geometry.disp_to_depth`` with the depth
    network's ``min_depth`` / ``max_depth`` (recorded in `ModelInfo`), ``[B, H, W, 1]``. For
    stereo-trained models ``metric_scale`` = 5.4 on KITTI (0.54 m baseline / 0.1 nominal training
    baseline), so depth is in metres; for mono models it is 1 and depth is relative (up to an unknown
    scale; evaluation median-scales it).

Training code (losses, sampler, pose) never reaches this module.

`load_predictor(path)` accepts a run directory / checkpoint prefix, a SavedModel directory or a
``.tflite`` file and returns an object with ``height``, ``width``, ``metric_scale`` and
``predict(images_uint8 [B, H, W, 3]) -> {"disparity", "scaled_disparity", "depth"}`` (NumPy).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np
import tensorflow as tf

from md2tf.config import DECODER_CHANNELS, DEPTH_RANGE, ENCODERS, check_depth_range
from md2tf.deploy.tflite import make_interpreter
from md2tf.deploy.tflite_graph import read_metadata
from md2tf.geometry.depth import disp_to_depth
from md2tf.models.checkpoint import load_learned_intrinsics, load_models

# KITTI's stereo baseline in metres; the paper trains with a nominal baseline of 0.1, so stereo-trained
# depth x (0.54 / 0.1) = x 5.4 is metric (evaluate_depth.py's STEREO_SCALE_FACTOR).
KITTI_BASELINE_M = 0.54
METADATA_NAME = "md2tf_model"
METADATA_FILE = "md2tf_model.json"


@dataclass(frozen=True)
class ModelInfo:
    """What a consumer must know to use an exported depth model (also embedded in every export).

    Attributes:
      height, width: static input size in pixels.
      min_depth, max_depth: the depth network's range (``DepthNet.min_depth`` / ``max_depth``,
        training units).
      metric_scale: factor applied to the depth output (5.4 for KITTI stereo-trained models, else 1).
      depth_units: ``metres`` when the depth is metric (``metric_scale`` included), else ``relative``.
      metric_source: how the depth became metric (the stereo baseline, speed supervision, known
        poses); empty for relative depth.
      post_process: whether flip post-processing is baked into the graph.
      num_layers: ResNet depth of the encoder (informational; meaningful for ``encoder="resnet"``).
      encoder: the depth encoder, an `md2tf.config.ENCODERS` name (``resnet``,
        ``mobilenet_v3_large``, ``mobilenet_v3_small``); it fixes the input normalisation inside the
        graph (`md2tf.models.encoders.input_normalisation`). Metadata written before encoders were
        selectable has none and reads as ``resnet``.
      learned_intrinsics: the camera(s) whose K the model learned in training
        (``--intrinsics=learned``): name -> normalised ``[fx, fy, cx, cy]`` (fx, cx / width;
        fy, cy / height); empty when K was given. ``md2tf.predict --point_cloud`` uses it when no
        intrinsics file is given.
      decoder_channels: the depth decoder's channels at scales 0..4 (informational; the paper's
        ``(16, 32, 64, 128, 256)``, or the phone-class ``(8, 16, 32, 64, 128)``). Metadata written
        before the decoder was selectable has none and reads as the paper's.
    """

    height: int
    width: int
    min_depth: float = DEPTH_RANGE[0]
    max_depth: float = DEPTH_RANGE[1]
    metric_scale: float = 1.0
    depth_units: str = "relative"
    post_process: bool = False
    num_layers: int = 18
    learned_intrinsics: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    metric_source: str = ""
    encoder: str = "resnet"
    decoder_channels: tuple[int, ...] = DECODER_CHANNELS

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoder_channels", tuple(int(c) for c in self.decoder_channels))
        # JSON-ready and equal after a round trip through the exports' metadata.
        object.__setattr__(self, "learned_intrinsics", {
            str(k): [float(x) for x in v] for k, v in dict(self.learned_intrinsics).items()})
        if any(len(v) != 4 or not all(np.isfinite(v)) for v in self.learned_intrinsics.values()):
            raise ValueError(f"learned_intrinsics must map cameras to 4 finite numbers (fx, fy, cx, cy), "
                             f"got {self.learned_intrinsics}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"height/width must be positive, got {self.height}x{self.width}")
        check_depth_range(self.min_depth, self.max_depth)
        if self.metric_scale <= 0:
            raise ValueError(f"metric_scale must be > 0, got {self.metric_scale}")
        if self.depth_units not in ("metres", "relative"):
            raise ValueError(f"depth_units must be metres or relative, got {self.depth_units!r}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {self.encoder!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: equal to what reading the exports' metadata back gives."""
        return {**dataclasses.asdict(self), "decoder_channels": list(self.decoder_channels)}

    def disp_to_depth(self, disparity):
        """``(scaled_disparity, depth x metric_scale)`` of a sigmoid disparity (tensor or NumPy).

        ``md2tf.geometry.disp_to_depth`` with this model's range, then the metric scale.
        """
        scaled, depth = disp_to_depth(disparity, self.min_depth, self.max_depth)
        return scaled, depth * self.metric_scale

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def metric_scale_for(use_stereo: bool, stereo_baseline: float,
                     real_baseline_m: float = KITTI_BASELINE_M) -> float:
    """Depth multiplier that makes a model's depth metric.

    Args:
      use_stereo: whether the model was trained with a stereo partner (S or MS).
      stereo_baseline: the nominal training baseline (``DataConfig.stereo_baseline``, 0.1 in the paper).
      real_baseline_m: the camera rig's true baseline in metres (0.54 for KITTI).

    Returns:
      ``real_baseline_m / stereo_baseline`` for stereo-trained models (5.4 for the paper), else 1.0.
    """
    if not use_stereo:
        return 1.0
    if stereo_baseline <= 0:
        raise ValueError(f"stereo_baseline must be > 0, got {stereo_baseline}")
    return float(real_baseline_m) / float(stereo_baseline)


#: Flip post-processing ramp: the left-border weight is 1 up to FLIP_RAMP_START of the width and 0 from
#: FLIP_RAMP_START + 1 / FLIP_RAMP_SLOPE on (5 % .. 10 %; Monodepth v1 / Monodepth2 ``--post_process``).
FLIP_RAMP_START = 0.05
FLIP_RAMP_SLOPE = 20.0


def flip_post_process_weights(width: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of Monodepth2's flip post-processing, each ``[width]`` float32.

    ``l_mask = 1 - clip(FLIP_RAMP_SLOPE * (x - FLIP_RAMP_START), 0, 1)`` with
    ``x = linspace(0, 1, width)``; ``r_mask`` is its mirror. The combination is
    ``r_mask * d + l_mask * d_flip + (1 - l_mask - r_mask) * mean``: near the left border the
    prediction of the mirrored image is used, near the right border the original one. This is the
    one implementation; ``md2tf.evaluation.postprocess`` uses it too.
    """
    x = np.linspace(0.0, 1.0, width)
    l_mask = 1.0 - np.clip(FLIP_RAMP_SLOPE * (x - FLIP_RAMP_START), 0.0, 1.0)
    return l_mask.astype(np.float32), l_mask[::-1].astype(np.float32)


class DepthPredictor(keras.Model):
    """The exported depth graph: uint8 RGB ``[B, H, W, 3]`` -> ``{"disparity", "depth"}``.

    ``/ 255`` -> ``depth_net`` (which normalises inside) -> disparity at scale 0 -> optional flip
    post-processing (`flip_post_process_weights`) -> `ModelInfo.disp_to_depth`. Both outputs are
    float32 ``[B, H, W, 1]``.

    Args:
      depth_net: a Keras model mapping float images ``[B, H, W, 3]`` in [0, 1] to a tuple/list of
        sigmoid disparities, scale 0 (``[B, H, W, 1]``) first (the ``md2tf.models.DepthNet``
        contract).
      info: static size, the network's depth range, metric scale and post-processing choice.
    """

    def __init__(self, depth_net, info: ModelInfo, **kwargs):
        kwargs.setdefault("name", "depth_predictor")
        super().__init__(**kwargs)
        self.depth_net = depth_net
        self.info = info
        l_mask, r_mask = flip_post_process_weights(info.width)
        self._l_mask = l_mask.reshape(1, 1, -1, 1)
        self._r_mask = r_mask.reshape(1, 1, -1, 1)

    def disparity_from_float(self, x: tf.Tensor) -> tf.Tensor:
        """Sigmoid disparity ``[B, H, W, 1]`` of float RGB ``x`` ``[B, H, W, 3]`` in [0, 1]."""
        if not self.info.post_process:
            return self.depth_net(x, training=False)[0]
        n = tf.shape(x)[0]
        both = self.depth_net(tf.concat([x, tf.reverse(x, axis=[2])], axis=0), training=False)[0]
        d, d_flip = both[:n], tf.reverse(both[n:], axis=[2])
        lm, rm = tf.constant(self._l_mask), tf.constant(self._r_mask)
        mean = 0.5 * (d + d_flip)
        return rm * d + lm * d_flip + (1.0 - lm - rm) * mean

    def outputs_from_float(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        """``{"disparity", "depth"}`` of float RGB ``x`` ``[B, H, W, 3]`` in [0, 1]."""
        disp = self.disparity_from_float(x)
        _, depth = self.info.disp_to_depth(disp)
        return {"disparity": disp, "depth": depth}

    def call(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """uint8 RGB ``[B, H, W, 3]`` -> ``{"disparity", "depth"}``, each ``[B, H, W, 1]``."""
        return self.outputs_from_float(tf.cast(images, tf.float32) * (1.0 / 255.0))


class Predictor(Protocol):
    """What `load_predictor` returns, whatever the model format."""

    height: int
    width: int
    metric_scale: float
    info: ModelInfo

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]: ...


def _check_images(images: np.ndarray, height: int, width: int) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != (height, width, 3):
        raise ValueError(f"images must be uint8 [B, {height}, {width}, 3], got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [B, {height}, {width}, 3], got dtype {images.dtype}")
    return images


def _finish(disparity: np.ndarray, info: ModelInfo) -> dict[str, np.ndarray]:
    disparity = np.asarray(disparity, np.float32)
    scaled, depth = info.disp_to_depth(disparity)
    return {"disparity": disparity, "scaled_disparity": scaled, "depth": depth.astype(np.float32)}


class _BasePredictor:
    def __init__(self, info: ModelInfo):
        self.info = info
        self.height = info.height
        self.width = info.width
        self.metric_scale = info.metric_scale

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Runs the model.

        Args:
          images: uint8 RGB ``[B, H, W, 3]`` (or ``[H, W, 3]``) at the model's size.

        Returns:
          ``disparity`` (sigmoid), ``scaled_disparity`` (``disp_to_depth``'s first output) and ``depth``
          (x ``metric_scale``), each float32 ``[B, H, W, 1]``.
        """
        images = _check_images(images, self.height, self.width)
        return _finish(self._disparity(images), self.info)

    def _disparity(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class KerasPredictor(_BasePredictor):
    """Runs a `DepthPredictor` in-process (checkpoint or a freshly built model)."""

    def __init__(self, predictor_model: DepthPredictor, info: ModelInfo):
        super().__init__(info)
        self.model = predictor_model
        self._fn = tf.function(lambda x: predictor_model(x)["disparity"], reduce_retracing=True)

    def _disparity(self, images: np.ndarray) -> np.ndarray:
        return self._fn(images).numpy()


class SavedModelPredictor(_BasePredictor):
    """Runs the ``predict_batch`` signature of an exported SavedModel."""

    def __init__(self, path: str):
        meta = os.path.join(path, METADATA_FILE)
        if not os.path.exists(meta):
            raise ValueError(f"{path!r} is not an md2tf SavedModel: {METADATA_FILE} is missing")
        with open(meta) as f:
            super().__init__(ModelInfo.from_dict(json.load(f)))
        self.loaded = tf.saved_model.load(path)
        self._fn = self.loaded.signatures["predict_batch"]

    def _disparity(self, images: np.ndarray) -> np.ndarray:
        return self._fn(images=images)["disparity"].numpy()


class TFLitePredictor(_BasePredictor):
    """Runs a ``.tflite`` model one image at a time (TFLite models have batch 1)."""

    def __init__(self, path: str, num_threads: int | None = None):
        with open(path, "rb") as f:
            content = f.read()
        meta = read_metadata(content, source=path).get(METADATA_NAME)
        if meta is None:
            raise ValueError(f"{path!r} has no {METADATA_NAME!r} metadata: not an md2tf TFLite export")
        super().__init__(ModelInfo.from_dict(json.loads(meta)))
        self.interpreter = make_interpreter(content, num_threads=num_threads, source=path)
        self._runner = self.interpreter.get_signature_runner("serving_default")

    def _disparity(self, images: np.ndarray) -> np.ndarray:
        out = [self._runner(images=img[None])["disparity"] for img in images]
        return np.concatenate(out, axis=0)


def metric_source_for(config, metric_scale: float,
                      real_baseline_m: float = KITTI_BASELINE_M) -> tuple[str, str]:
    """``(depth_units, metric_source)`` of a model trained with ``config`` (`ModelInfo`).

    Depth is metric when the training knew a length in metres: the stereo baseline (scaled by
    ``metric_scale``), the distances travelled between frames (``--speed_weight``), or known camera
    poses (``--pose_source=gt``); or when an explicit ``metric_scale`` says so.
    """
    data = config.data
    if data.use_stereo:
        return "metres", (f"stereo baseline: depth x {metric_scale:g} (a {real_baseline_m:g} m rig "
                          f"trained at baseline {data.stereo_baseline:g})")
    if config.loss.speed_weight > 0:
        return "metres", (f"speed supervision: distances travelled between frames from "
                          f"--speed_source={data.speed_source} (--speed_weight={config.loss.speed_weight:g})")
    if config.train.pose_source == "gt":
        return "metres", "known camera poses in metres (--pose_source=gt)"
    if metric_scale != 1.0:
        return "metres", f"--metric_scale={metric_scale:g} given at export"
    return "relative", ""


def predictor_from_models(config, depth_net, post_process: bool = False,
                          metric_scale: float | None = None,
                          real_baseline_m: float = KITTI_BASELINE_M,
                          learned_intrinsics: dict | None = None) -> KerasPredictor:
    """Wraps a restored depth network (from ``load_models``) into a `KerasPredictor`.

    Args:
      config: the run's ``ExperimentConfig`` (size, stereo settings).
      depth_net: the restored ``DepthNet`` (its ``min_depth`` / ``max_depth`` go to `ModelInfo`).
      post_process: bake flip post-processing into the graph.
      metric_scale: depth multiplier; None = `metric_scale_for` the training setup.
      real_baseline_m: the rig's true stereo baseline (metres) used when ``metric_scale`` is None.
      learned_intrinsics: the run's learned K (`md2tf.models.checkpoint.load_learned_intrinsics`).
    """
    if metric_scale is None:
        metric_scale = metric_scale_for(config.data.use_stereo, config.data.stereo_baseline,
                                        real_baseline_m)
    units, source = metric_source_for(config, metric_scale, real_baseline_m)
    info = ModelInfo(height=config.data.height, width=config.data.width,
                     min_depth=depth_net.min_depth, max_depth=depth_net.max_depth,
                     metric_scale=float(metric_scale), depth_units=units,
                     post_process=post_process, num_layers=config.model.num_layers,
                     learned_intrinsics=learned_intrinsics or {}, metric_source=source,
                     encoder=config.model.encoder,
                     decoder_channels=tuple(config.model.decoder_channels))
    return KerasPredictor(DepthPredictor(depth_net, info), info)


def load_predictor(path: str, post_process: bool = False, num_threads: int | None = None) -> Predictor:
    """Loads any exported or trained form of a depth model.

    Args:
      path: a ``.tflite`` file, a SavedModel directory written by ``md2tf.export``, or a run directory /
        checkpoint prefix readable by ``md2tf.models.checkpoint.load_models``.
      post_process: for checkpoints only: bake flip post-processing into the graph (exports carry their
        own choice in their metadata).
      num_threads: TFLite interpreter threads (None = LiteRT default).

    Returns:
      A `Predictor` with ``height``, ``width``, ``metric_scale``, ``info`` and ``predict``.

    Raises:
      ValueError: if ``path`` does not exist or is none of the accepted forms.
    """
    if path.endswith(".tflite"):
        if not os.path.isfile(path):
            raise ValueError(f"--model: TFLite file {path!r} does not exist")
        return TFLitePredictor(path, num_threads=num_threads)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
        return SavedModelPredictor(path)
    if not (os.path.isdir(path) or os.path.exists(path + ".index")):
        raise ValueError(f"--model: {path!r} is not a .tflite file, SavedModel directory, run directory "
                         "or checkpoint prefix")
    config, depth_net, _ = load_models(path, load_pose_net=False)
    return predictor_from_models(config, depth_net, post_process=post_process,
                                 learned_intrinsics=load_learned_intrinsics(path))
