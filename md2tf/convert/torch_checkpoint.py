"""Import of official Monodepth2 checkpoints (``encoder.pth``, ``depth.pth``, ``pose_encoder.pth``,
``pose.pth``) that a user supplies, into an md2tf run directory (`md2tf.models.save_models` format).

md2tf never ships or downloads these weights (non-commercial licence); torch is needed only to read
the ``.pth`` files (``.npz`` files with the same keys also work, without torch).
"""

from __future__ import annotations

import os
import re

from md2tf.config import DataConfig, ExperimentConfig, ModelConfig
from md2tf.convert.torch_weights import load_torch_state_dict, read_state_dict
from md2tf.models.builder import build
from md2tf.models.checkpoint import save_models

DEPTH_FILES = ("encoder", "depth")
POSE_FILES = ("pose_encoder", "pose")


def _find(model_dir: str, stem: str) -> str | None:
    for ext in (".pth", ".npz"):
        path = os.path.join(model_dir, stem + ext)
        if os.path.isfile(path):
            return path
    return None


def infer_num_layers(state: dict, file: str = "encoder") -> int:
    """ResNet depth (18, 34 or 50) from the block layout of a reference encoder state dict.

    Raises:
      ValueError: if the layout is not a ResNet 18/34/50.
    """
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer3\.(\d+)\.", k))}
    bottleneck = any(re.match(r"encoder\.layer1\.0\.conv3\.weight$", k) for k in state)
    count = len(blocks)
    if count == 2 and not bottleneck:
        return 18
    if count == 6:
        return 50 if bottleneck else 34
    raise ValueError(
        f"{file}: cannot infer the ResNet depth ({count} blocks in encoder.layer3, "
        f"bottleneck={bottleneck}); md2tf supports ResNet18/34/50"
    )


def _num_scales(depth_state: dict) -> int:
    heads = {int(m.group(1)) for k in depth_state if (m := re.match(r"decoder\.(\d+)\.conv\.weight$", k))}
    scales = sorted(h - 10 for h in heads if h >= 10)
    if not scales or scales != list(range(len(scales))):
        raise ValueError(f"depth: unexpected disparity heads decoder.{sorted(heads)}")
    return len(scales)


def convert_monodepth2(
    model_dir: str,
    out_dir: str,
    height: int | None = None,
    width: int | None = None,
    load_pose: bool = True,
) -> str:
    """Converts an official Monodepth2 model folder into an md2tf run directory.

    Args:
      model_dir: folder with ``encoder.pth`` and ``depth.pth`` and, optionally, ``pose_encoder.pth`` and
        ``pose.pth`` (``.npz`` with the same keys is accepted too).
      out_dir: md2tf run directory to write (``config.json`` + ``checkpoints/``).
      height, width: input size; default: the ``height``/``width`` stored in ``encoder.pth``.
      load_pose: convert the pose network when its files are present.

    Returns:
      The written checkpoint prefix.

    Raises:
      FileNotFoundError: if ``encoder``/``depth`` weights are missing.
      ValueError: on unknown/missing keys or shape mismatches (listed), or a missing size.
    """
    paths = {stem: _find(model_dir, stem) for stem in DEPTH_FILES + POSE_FILES}
    for stem in DEPTH_FILES:
        if paths[stem] is None:
            raise FileNotFoundError(f"--model_dir {model_dir!r} has no {stem}.pth (or {stem}.npz)")
    encoder_state = read_state_dict(paths["encoder"])
    depth_state = read_state_dict(paths["depth"])
    height = int(height or encoder_state.get("height", 0))
    width = int(width or encoder_state.get("width", 0))
    if not height or not width:
        raise ValueError(f"{paths['encoder']} stores no height/width: pass --height and --width")
    use_stereo = bool(encoder_state.get("use_stereo", False))

    has_pose = load_pose and paths["pose_encoder"] is not None and paths["pose"] is not None
    if load_pose and (paths["pose_encoder"] is None) != (paths["pose"] is None):
        raise FileNotFoundError(
            f"--model_dir {model_dir!r} has only one of pose_encoder.pth / pose.pth; md2tf converts "
            "the separate_resnet pose network, which needs both"
        )
    pose_state = {}
    pose_layers = 18
    if has_pose:
        pose_state = {**read_state_dict(paths["pose_encoder"]), **read_state_dict(paths["pose"])}
        pose_layers = infer_num_layers(pose_state, "pose_encoder")

    # Without a pose network the run can only be described as stereo-only (frame_offsets == (0,)).
    data = DataConfig(
        dataset="kitti",
        height=height,
        width=width,
        frame_offsets=(0, -1, 1) if has_pose else (0,),
        use_stereo=use_stereo or not has_pose,
    )
    model = ModelConfig(
        num_layers=infer_num_layers(encoder_state),
        pose_num_layers=pose_layers,
        scales=tuple(range(_num_scales(depth_state))),
    )
    config = ExperimentConfig(data=data, model=model)
    depth_net, pose_net = build(model, use_pose_net=has_pose)
    load_torch_state_dict(depth_net, {**encoder_state, **depth_state})
    if pose_net is not None:
        load_torch_state_dict(pose_net, pose_state)
    return save_models(out_dir, config, depth_net, pose_net, step=0)
