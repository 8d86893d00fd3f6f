"""The export formats: one registry entry per format, so a new format is one entry in `FORMATS`.

An `ExportFormat` says everything ``md2tf.export`` needs about a format: its ``--formats`` name, the
file (or folder) it writes in the export folder, how it is written (a writer function and, for TFLite,
its `tflite.TFLiteOptions`), the parity tolerance against the Keras model, and the description that
goes into ``model_card.json``. `md2tf.deploy.exporter.export_all` loops over the selected entries and
adds what every format shares (file, size, parity, optional accuracy).

Every TFLite format is converted from one SavedModel of a clone of the depth network in the decoder's
``"xnnpack"`` layout (``md2tf.models.layers.LAYOUTS``; same weights, float outputs checked equal, see
`xnnpack_clone`): reflection padding as slices + concat instead of MIRROR_PAD and nearest upsampling
as DEPTH_TO_SPACE instead of RESIZE_NEAREST_NEIGHBOR. XNNPACK runs neither MIRROR_PAD nor (in int8)
RESIZE_NEAREST_NEIGHBOR, so each of them split the graph into separate delegate partitions with
reference kernels in between: measured at 640x192, 2 threads, the layout makes fp32 1.6x faster
(135 -> 86 ms) and is what lets int8 run whole in XNNPACK. The SavedModel is the network as trained.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from md2tf.deploy import tflite, tflite_graph
from md2tf.deploy.inference import (
    DepthPredictor,
    KerasPredictor,
    ModelInfo,
    Predictor,
    SavedModelPredictor,
    TFLitePredictor,
)
from md2tf.deploy.pose import export_pose
from md2tf.deploy.saved_model import export_saved_model
from md2tf.models import DepthNet

ALL = "all"
_CLONE_ATOL = 1e-5  # float32 disparity difference allowed between the network and its clone


@dataclass
class ExportJob:
    """What the writers share during one export.

    Attributes:
      predictor: the `KerasPredictor` being exported.
      work_dir: scratch folder (removed after the export) for intermediate SavedModels.
      representative_images: uint8 ``[H, W, 3]`` frames for int8 calibration (None if not needed).
      parity_images: uint8 ``[N, H, W, 3]`` frames of the parity checks.
      pose_net: the run's ``PoseNet`` (None when no selected format needs it).
    """

    predictor: KerasPredictor
    work_dir: str
    representative_images: Sequence[np.ndarray] | None = None
    parity_images: np.ndarray | None = None
    pose_net: Any = None
    _trained_saved_model: str | None = None
    _tflite_source: tuple[str, dict[str, Any]] | None = None

    @property
    def info(self) -> ModelInfo:
        return self.predictor.info

    def trained_saved_model(self) -> str:
        """SavedModel of the network as trained (the ``saved_model`` format's, or one in work_dir)."""
        if self._trained_saved_model is None:
            self._trained_saved_model = export_saved_model(
                self.predictor.model, self.info, os.path.join(self.work_dir, "saved_model_trained"))
        return self._trained_saved_model

    def tflite_source(self) -> tuple[str, dict[str, Any]]:
        """The SavedModel every TFLite format is converted from, and its card description."""
        if self._tflite_source is None:
            self._tflite_source = tflite_saved_model(self.predictor, self.trained_saved_model,
                                                     self.work_dir)
        return self._tflite_source


#: ``(job, path, format) -> (card entry, predictor reading the file or None)``.
Writer = Callable[[ExportJob, str, "ExportFormat"], tuple[dict[str, Any], Predictor | None]]


@dataclass(frozen=True)
class ExportFormat:
    """One export format.

    Attributes:
      name: the ``--formats`` name.
      file: file or folder name inside the export folder.
      description: what the format is, for ``model_card.json``.
      parity_atol: largest max-abs difference from the Keras model that the card reports as
        within tolerance (disparity for depth formats, every output for the pose model).
      write: the `Writer` that creates ``file``.
      tflite: converter options of a TFLite format (None otherwise).
      in_all: part of ``--formats=all``.
      needs_pose_net: written from the pose network (the run must have one).
    """

    name: str
    file: str
    description: str
    parity_atol: float
    write: Writer
    tflite: tflite.TFLiteOptions | None = None
    in_all: bool = True
    needs_pose_net: bool = False


def _write_saved_model(job: ExportJob, path: str, fmt: ExportFormat):
    export_saved_model(job.predictor.model, job.info, path)
    job._trained_saved_model = path  # the TFLite fallback source when there is nothing to clone
    loaded = SavedModelPredictor(path)
    return {"signatures": sorted(loaded.loaded.signatures.keys())}, loaded


def _write_tflite(job: ExportJob, path: str, fmt: ExportFormat):
    source_dir, graph = job.tflite_source()
    int8 = fmt.tflite.quantization == "int8"
    reps = (lambda: iter(job.representative_images)) if int8 else None
    content = tflite.convert(source_dir, fmt.tflite, reps, metadata=job.info.to_dict())
    graph = dict(graph)
    if int8:
        graph["float_ops"] = tflite_graph.float_ops(content)
    tflite.write_atomic(path, content)
    text, gpu_ok = tflite.analyze(content)
    entry: dict[str, Any] = {"ops": tflite.analyzer_ops(text), "gpu_compatible": gpu_ok,
                             "tflite_graph": graph}
    if not gpu_ok:
        entry["gpu_warnings"] = [ln.strip() for ln in text.splitlines() if "GPU" in ln][:20]
    return entry, TFLitePredictor(path)


def _write_pose(job: ExportJob, path: str, fmt: ExportFormat):
    images = job.parity_images
    pairs = (images[:-1], images[1:]) if images is not None and len(images) > 1 else None
    return export_pose(job.pose_net, job.info, path, pairs), None


def _tflite(name: str, file: str, quantization: str, atol: float, description: str) -> ExportFormat:
    return ExportFormat(name, file, description, atol, _write_tflite,
                        tflite=tflite.TFLiteOptions(quantization))


_REGISTRY = (
    ExportFormat("saved_model", "saved_model", "TensorFlow SavedModel of the network as trained "
                 "(signatures serving_default, predict_batch, predict_float, predict_encoded)",
                 1e-5, _write_saved_model),
    _tflite("tflite_fp32", "depth_fp32.tflite", "none", 1e-4, "TFLite, float32"),
    _tflite("tflite_fp16", "depth_fp16.tflite", "float16", 1e-2,
            "TFLite, float16 weights (float32 compute on CPU)"),
    _tflite("tflite_dynamic", "depth_dynamic.tflite", "dynamic", 5e-2,
            "TFLite, int8 weights, float activations"),
    _tflite("tflite_int8", "depth_int8.tflite", "int8", 1e-1,
            "TFLite, full integer (int8 weights and activations; uint8 in, float32 out)"),
    ExportFormat("tflite_pose", "pose_fp32.tflite", "TFLite float32 pose network for on-device "
                 "odometry (md2tf.deploy.pose)", 1e-4, _write_pose, in_all=False,
                 needs_pose_net=True),
)

#: ``--formats`` name -> `ExportFormat`, in export order.
FORMATS: dict[str, ExportFormat] = {f.name: f for f in _REGISTRY}


def default_formats() -> tuple[str, ...]:
    """The names ``all`` stands for: every format with ``in_all`` (the depth model's)."""
    return tuple(name for name, f in FORMATS.items() if f.in_all)


def resolve(formats: str | Sequence[str]) -> tuple[ExportFormat, ...]:
    """``"saved_model,tflite_fp32"`` (or a list; ``all`` = `default_formats`) -> registry entries.

    ``all`` may be combined with other names (``all,tflite_pose``). The result keeps registry order
    and has no duplicates.

    Raises:
      ValueError: naming ``--formats``, the unknown names and the known ones.
    """
    items = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    items = [f for f in items if f]
    names = set()
    for item in items:
        names |= set(default_formats()) if item == ALL else {item}
    bad = sorted(names - set(FORMATS))
    if bad or not names:
        raise ValueError(f"--formats must be a comma-separated subset of {','.join(FORMATS)} "
                         f"(or {ALL}), got {','.join(items) or repr(formats)}"
                         + (f": unknown {bad}" if bad else ""))
    return tuple(f for name, f in FORMATS.items() if name in names)


def xnnpack_clone(depth_net, height: int, width: int) -> tuple[DepthNet, float] | None:
    """A copy of ``depth_net`` in the ``"xnnpack"`` layout with the same weights, verified equal.

    The clone is ``DepthNet.from_config(config | {"layout": "xnnpack"})``, built at
    ``[1, height, width, 3]``, given ``depth_net.get_weights()`` and checked on one random float
    image in [0, 1]: every output scale must match ``depth_net``'s within 1e-5.

    Args:
      depth_net: a built network; only an ``md2tf.models.DepthNet`` in the ``"train"`` layout is
        cloned.
      height, width: input size used to build and check the clone.

    Returns:
      ``(clone, max_abs_diff)``, or None when there is nothing to clone (another network, or one
      already in the ``"xnnpack"`` layout).

    Raises:
      RuntimeError: the clone's outputs differ from ``depth_net``'s.
    """
    if not isinstance(depth_net, DepthNet) or depth_net.layout == "xnnpack":
        return None
    clone = DepthNet.from_config({**depth_net.get_config(), "layout": "xnnpack"})
    clone.build_for_shape(height, width)
    clone.set_weights(depth_net.get_weights())
    x = tf.random.stateless_uniform([1, height, width, 3], seed=(11, 12))
    diff = max(float(tf.reduce_max(tf.abs(a - b)))
               for a, b in zip(depth_net(x, training=False), clone(x, training=False), strict=True))
    if not diff <= _CLONE_ATOL:
        raise RuntimeError(f"xnnpack-layout clone of {depth_net.name!r} differs from it by {diff:.3g} "
                           f"(> {_CLONE_ATOL}); refusing to export TFLite from it")
    return clone, diff


def tflite_saved_model(predictor: KerasPredictor, trained_dir: Callable[[], str] | str,
                       work_dir: str) -> tuple[str, dict[str, Any]]:
    """The SavedModel every TFLite format is converted from, and a description for the model card.

    Exports `xnnpack_clone` of ``predictor``'s depth network to ``<work_dir>/saved_model_tflite``;
    falls back to the SavedModel of the network as trained when there is nothing to clone. Also
    used by ``scripts/bench/infer.py``, so the benchmark times the graph users get.

    Args:
      predictor: the `KerasPredictor` being exported.
      trained_dir: SavedModel of ``predictor.model`` (a path, or a callable writing it on demand).
      work_dir: scratch directory for the clone's SavedModel.

    Returns:
      ``(saved_model_dir, entry)``; ``entry["source"]`` says which network was converted,
      ``entry["layout"]`` its decoder layout and ``entry["clone_max_abs_diff_disparity"]`` how far
      the clone's float outputs are from the network's.
    """
    info = predictor.info
    net = predictor.model.depth_net
    cloned = xnnpack_clone(net, info.height, info.width)
    if cloned is None:
        source = trained_dir() if callable(trained_dir) else trained_dir
        return source, {"source": "the depth network as trained",
                        "layout": getattr(net, "layout", "unknown")}
    clone, diff = cloned
    sm_dir = export_saved_model(DepthPredictor(clone, info), info,
                                os.path.join(work_dir, "saved_model_tflite"))
    return sm_dir, {"source": "clone of the depth network, same weights", "layout": clone.layout,
                    "clone_max_abs_diff_disparity": diff}
