"""Frozen, validated configuration objects: the only thing that travels from flags into the library.

`md2tf.flags` defines every command-line flag; `from_flags` (per entry point) turns the parsed flags
into these dataclasses, and from then on only configs or plain arguments are passed around. Every
``__post_init__`` checks its invariants, so a bad combination fails at start-up with a message naming
the flag, not hours into training.

Defaults are the paper's (Monodepth2, ICCV 2019; see ``options.py`` facts in the project notes).
This module must not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class DataConfig:
    """What the input pipeline reads and how it prepares samples.

    Attributes:
      dataset: ``kitti`` (raw, split files), ``kitti_odom``, ``synthetic`` (built-in world, generated on
        first use into ``data_dir``) or ``folder`` (a user's folder of video frames).
      data_dir: root of the dataset (KITTI raw layout for ``kitti`` and ``synthetic``).
      split: split name; files are read from ``<splits_dir>/<split>/{train,val}_files.txt``.
      splits_dir: directory holding split folders. Empty = ``<data_dir>/splits``.
      height, width: network input size in pixels (multiples of 32).
      frame_offsets: temporal frames relative to the target; must contain 0. ``(0,)`` = stereo only.
      use_stereo: add the other stereo camera at the same time as a source ("S" / "MS" training).
      stereo_baseline: |x| of the nominal stereo translation (0.1 in the paper; metres for real scale).
      image_ext: ``.jpg`` (paper) or ``.png``.
      intrinsics: ``fixed`` (the paper's averaged KITTI K) or ``calib`` (per-drive P_rect).
      flip_prob, color_aug_prob: augmentation probabilities (0.5 each in the paper).
      seed: shuffling / augmentation seed; ``deterministic`` makes tf.data order reproducible.
      gt_height, gt_width: size of the ground-truth depth carried in a training batch for metrics.
    """

    dataset: str = "synthetic"
    data_dir: str = ""
    split: str = "eigen_zhou"
    splits_dir: str = ""
    height: int = 192
    width: int = 640
    frame_offsets: tuple[int, ...] = (0, -1, 1)
    use_stereo: bool = False
    stereo_baseline: float = 0.1
    image_ext: str = ".jpg"
    intrinsics: str = "fixed"
    flip_prob: float = 0.5
    color_aug_prob: float = 0.5
    num_parallel_calls: int = -1  # -1 = tf.data.AUTOTUNE
    shuffle_buffer: int = 512
    seed: int = 0
    deterministic: bool = False
    gt_height: int = 375
    gt_width: int = 1242

    def __post_init__(self) -> None:
        _check(self.height > 0 and self.height % 32 == 0, f"--height must be a positive multiple of 32, got {self.height}")
        _check(self.width > 0 and self.width % 32 == 0, f"--width must be a positive multiple of 32, got {self.width}")
        _check(0 in self.frame_offsets, f"--frame_offsets must contain 0 (the target frame), got {self.frame_offsets}")
        _check(self.frame_offsets[0] == 0, f"--frame_offsets must start with 0, got {self.frame_offsets}")
        _check(len(set(self.frame_offsets)) == len(self.frame_offsets), f"--frame_offsets has duplicates: {self.frame_offsets}")
        _check(len(self.frame_offsets) > 1 or self.use_stereo, "no source frame: give --frame_offsets besides 0 or --use_stereo")
        _check(self.image_ext in (".jpg", ".png"), f"--image_ext must be .jpg or .png, got {self.image_ext!r}")
        _check(self.intrinsics in ("fixed", "calib"), f"--intrinsics must be fixed or calib, got {self.intrinsics!r}")
        _check(0.0 <= self.flip_prob <= 1.0 and 0.0 <= self.color_aug_prob <= 1.0, "augmentation probabilities must lie in [0, 1]")
        _check(self.stereo_baseline > 0, f"--stereo_baseline must be > 0, got {self.stereo_baseline}")

    @property
    def temporal_offsets(self) -> tuple[int, ...]:
        """Source frame offsets (non-zero entries of ``frame_offsets``), in the order given."""
        return tuple(o for o in self.frame_offsets if o != 0)

    @property
    def num_sources(self) -> int:
        """S: temporal sources first (``temporal_offsets`` order), then the stereo partner if used."""
        return len(self.temporal_offsets) + int(self.use_stereo)


@dataclass(frozen=True)
class ModelConfig:
    """Depth and pose networks.

    Attributes:
      num_layers: ResNet depth of the depth encoder (18, 34 or 50).
      pose_num_layers: ResNet depth of the separate pose encoder (18 or 50).
      encoder_weights: ``none`` (scratch) or a local ``.pth``/``.npz`` of torchvision ImageNet weights.
      init: ``torch`` (PyTorch default initialisers, as the reference trained) or ``keras``.
      scales: decoder output scales; must be ``0..n-1`` (scale s is 1/2^s resolution).
      init_disparity: None (the reference init: every sigmoid disparity starts near 0.5, i.e. depth
        near ``2 * min_depth``) or p in (0, 1): the disparity convs' biases start at ``logit(p)``. Stereo
        training from scratch needs a start beyond the true depth (e.g. 0.02, depth ~4.8 units = 26 m
        at the 5.4 stereo scale): from 0.5 the stereo warp starts ~90 px off and never finds the basin.
    """

    num_layers: int = 18
    pose_num_layers: int = 18
    encoder_weights: str = "none"
    init: str = "torch"
    scales: tuple[int, ...] = (0, 1, 2, 3)
    init_disparity: float | None = None

    def __post_init__(self) -> None:
        _check(self.init_disparity is None or 0.0 < self.init_disparity < 1.0,
               f"--init_disparity must lie in (0, 1), got {self.init_disparity}")
        _check(self.num_layers in (18, 34, 50), f"--num_layers must be 18, 34 or 50, got {self.num_layers}")
        _check(self.pose_num_layers in (18, 50), f"--pose_num_layers must be 18 or 50, got {self.pose_num_layers}")
        _check(self.init in ("torch", "keras"), f"--init must be torch or keras, got {self.init!r}")
        _check(tuple(self.scales) == tuple(range(len(self.scales))) and 1 <= len(self.scales) <= 4,
               f"--scales must be 0..n-1 with n in 1..4, got {self.scales}")


@dataclass(frozen=True)
class LossConfig:
    """The self-supervised objective (paper Sec. 3 and Table 2 ablations).

    Attributes:
      ssim_weight: alpha in ``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` (0.85).
      use_ssim: False gives plain L1 (``--no_ssim``).
      min_reprojection: per-pixel minimum over sources (True) or average (``--avg_reprojection``).
      automask: auto-masking of stationary pixels (the unwarped sources compete in the minimum).
      full_res_multiscale: upsample every disparity to full resolution before warping (True) or warp
        each scale at its own resolution ("v1" multi-scale).
      smoothness_weight: edge-aware smoothness weight at scale 0, divided by 2^s at scale s (1e-3).
      identity_noise_std: std of the tie-break noise added to the unwarped (identity) error (1e-5).
      min_depth, max_depth: depth range of ``disp_to_depth`` in the training units.
    """

    ssim_weight: float = 0.85
    use_ssim: bool = True
    min_reprojection: bool = True
    automask: bool = True
    full_res_multiscale: bool = True
    smoothness_weight: float = 1e-3
    identity_noise_std: float = 1e-5
    min_depth: float = 0.1
    max_depth: float = 100.0

    def __post_init__(self) -> None:
        _check(0.0 <= self.ssim_weight <= 1.0, f"ssim_weight must lie in [0, 1], got {self.ssim_weight}")
        _check(self.smoothness_weight >= 0, f"--disparity_smoothness must be >= 0, got {self.smoothness_weight}")
        _check(0 < self.min_depth < self.max_depth, f"need 0 < --min_depth < --max_depth, got {self.min_depth}, {self.max_depth}")
        _check(self.identity_noise_std >= 0, "identity_noise_std must be >= 0")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, logging and checkpointing.

    Attributes:
      run_dir: directory of the run (checkpoints, TensorBoard events, flags.txt, config.json).
      batch_size: global batch size (split over replicas).
      learning_rate: Adam learning rate of the first phase (1e-4).
      num_epochs: epochs to train (20).
      lr_decay_epochs: epochs at whose start the LR is multiplied by ``lr_decay_factor`` (15 -> 15 + 5).
      steps_per_epoch: 0 = one pass over the training split.
      max_steps: 0 = no limit; otherwise stop after this many steps (smoke runs).
      init_checkpoint: run directory or checkpoint prefix whose networks (encoders and decoders)
        initialise this run, e.g. 1024x320 fine-tuning from a 640x192 run.
      encoder_init: run directory or checkpoint prefix whose *encoders* initialise this run: the depth
        encoder, and the 6-channel pose encoder when both runs have a pose network; the decoders keep
        their fresh initialisation. The stand-in for ImageNet initialisation of the encoders (paper
        Sec. 4.1) where no ImageNet weights exist, e.g. an S or MS run on other data. Applied after
        ``encoder_weights`` (it replaces them); exclusive with ``init_checkpoint``.
    """

    run_dir: str = ""
    batch_size: int = 12
    learning_rate: float = 1e-4
    num_epochs: int = 20
    lr_decay_epochs: tuple[int, ...] = (15,)
    lr_decay_factor: float = 0.1
    steps_per_epoch: int = 0
    max_steps: int = 0
    log_every: int = 250
    image_log_every: int = 2000
    save_every_steps: int = 2000
    keep_checkpoints: int = 3
    resume: bool = True
    jit_compile: bool = False
    mixed_precision: str = "float32"  # float32 | mixed_float16 | mixed_bfloat16
    seed: int = 0
    deterministic: bool = False
    max_nonfinite_steps: int = 10
    profile_steps: tuple[int, ...] = ()
    validate_every_epoch: bool = True
    init_checkpoint: str = ""
    encoder_init: str = ""
    # Added by the training package (issue 5).
    val_steps: int = 0  # validation batches per epoch; 0 = the whole validation split
    strategy: str = "auto"  # auto | default | mirrored | multi_worker
    progress_bar: bool = True

    def __post_init__(self) -> None:
        _check(self.strategy in ("auto", "default", "mirrored", "multi_worker"),
               f"--strategy must be auto, default, mirrored or multi_worker, got {self.strategy!r}")
        _check(self.val_steps >= 0 and self.steps_per_epoch >= 0 and self.max_steps >= 0,
               "--val_steps, --steps_per_epoch and --max_steps must be >= 0")
        _check(self.log_every > 0, f"--log_every must be > 0, got {self.log_every}")
        _check(self.keep_checkpoints > 0, f"--keep_checkpoints must be > 0, got {self.keep_checkpoints}")
        _check(not self.profile_steps or len(self.profile_steps) == 2,
               f"--profile_steps must be 'start,stop', got {self.profile_steps}")
        _check(self.batch_size > 0, f"--batch_size must be > 0, got {self.batch_size}")
        _check(self.learning_rate > 0, f"--learning_rate must be > 0, got {self.learning_rate}")
        _check(self.num_epochs > 0, f"--num_epochs must be > 0, got {self.num_epochs}")
        _check(self.mixed_precision in ("float32", "mixed_float16", "mixed_bfloat16"),
               f"--mixed_precision must be float32, mixed_float16 or mixed_bfloat16, got {self.mixed_precision!r}")
        _check(list(self.lr_decay_epochs) == sorted(self.lr_decay_epochs), "--lr_decay_epochs must be sorted")
        _check(not (self.init_checkpoint and self.encoder_init),
               "--init_checkpoint and --encoder_init are exclusive (the first restores the encoders too), "
               f"got {self.init_checkpoint!r} and {self.encoder_init!r}")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a training run needs; written to ``<run_dir>/config.json``."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def use_pose_net(self) -> bool:
        """Stereo-only runs (frame_offsets == (0,)) build no pose network."""
        return bool(self.data.temporal_offsets)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        """Inverse of ``to_dict`` (JSON lists become tuples; unknown keys are an error)."""
        def build(kind, values):
            names = {f.name for f in dataclasses.fields(kind)}
            unknown = set(values) - names
            _check(not unknown, f"unknown {kind.__name__} keys in config: {sorted(unknown)}")
            return kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(
            data=build(DataConfig, d.get("data", {})),
            model=build(ModelConfig, d.get("model", {})),
            loss=build(LossConfig, d.get("loss", {})),
            train=build(TrainConfig, d.get("train", {})),
        )


# --- export / predict (issue 7) -------------------------------------------------------------------
EXPORT_FORMATS = ("saved_model", "tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8")


@dataclass(frozen=True)
class ExportConfig:
    """``python -m md2tf.export``: which checkpoint, which formats, how to calibrate int8.

    Attributes:
      checkpoint: run directory or checkpoint prefix (``md2tf.models.checkpoint.load_models``).
      out_dir: output directory (SavedModel, ``.tflite`` files, ``model_card.json``).
      formats: subset of ``EXPORT_FORMATS`` plus the optional ``tflite_pose``.
      post_process: bake flip post-processing (2 forward passes) into the exported graph.
      metric_scale: depth multiplier; 0 = automatic (``real_baseline_m / stereo_baseline`` for
        stereo-trained models, 1 otherwise).
      real_baseline_m: the camera rig's true stereo baseline in metres (0.54 for KITTI).
      calibration: int8 calibration data: ``auto`` (the run's training data if readable, else
        structured random frames), ``structured``, or a folder of images.
      num_calibration_images: frames used to calibrate int8.
      accuracy_split: if set, score every variant on this test split (``md2tf.evaluate``; needs
        ``test_files.txt`` and ``gt_depths.npz`` in ``<accuracy_splits_dir>/<split>/``).
      accuracy_data_dir: dataset root of the test images; empty = the run's ``data_dir``.
      accuracy_splits_dir: split folders; empty = ``<accuracy_data_dir>/splits``.
      height, width: static input size of the exported graph (multiples of 32); 0 = the training size.
    """

    checkpoint: str = ""
    out_dir: str = ""
    formats: tuple[str, ...] = EXPORT_FORMATS
    post_process: bool = False
    metric_scale: float = 0.0
    real_baseline_m: float = 0.54
    calibration: str = "auto"
    num_calibration_images: int = 64
    accuracy_split: str = ""
    accuracy_data_dir: str = ""
    accuracy_splits_dir: str = ""
    height: int = 0
    width: int = 0

    def __post_init__(self) -> None:
        _check(self.height >= 0 and self.height % 32 == 0,
               f"--export_height must be 0 (training size) or a multiple of 32, got {self.height}")
        _check(self.width >= 0 and self.width % 32 == 0,
               f"--export_width must be 0 (training size) or a multiple of 32, got {self.width}")
        _check(bool(self.checkpoint), "--checkpoint is required (run directory or checkpoint prefix)")
        _check(bool(self.out_dir), "--out is required (output directory)")
        allowed = EXPORT_FORMATS + ("tflite_pose",)  # tflite_pose: optional pose network (odometry)
        bad = [f for f in self.formats if f not in allowed]
        _check(bool(self.formats) and not bad,
               f"--formats must be a comma-separated subset of {','.join(allowed)}, got {self.formats}")
        _check(self.metric_scale >= 0, f"--metric_scale must be >= 0 (0 = auto), got {self.metric_scale}")
        _check(self.real_baseline_m > 0, f"--real_baseline_m must be > 0, got {self.real_baseline_m}")
        _check(self.num_calibration_images > 0,
               f"--num_calibration_images must be > 0, got {self.num_calibration_images}")


@dataclass(frozen=True)
class PredictConfig:
    """``python -m md2tf.predict``: model, inputs and what to write.

    Attributes:
      model: checkpoint / run directory, SavedModel directory or ``.tflite`` file.
      input: an image file, a folder of images, or an animated GIF (frames are predicted in turn).
      out_dir: output directory for ``<name>_disp.png``, ``<name>_disp.npy``, ``<name>_depth.npy``.
      post_process: flip post-processing (checkpoints only; exports carry their own choice).
      save_npy: write ``.npy`` disparity (``disp_to_depth`` scaled) and depth at the original size.
      save_color: write magma-coloured disparity PNGs.
      vmax_percentile: percentile of disparity mapped to the brightest colour (95).
      num_threads: TFLite interpreter threads (0 = LiteRT default).
    """

    model: str = ""
    input: str = ""
    out_dir: str = ""
    post_process: bool = False
    save_npy: bool = True
    save_color: bool = True
    vmax_percentile: float = 95.0
    num_threads: int = 0

    def __post_init__(self) -> None:
        _check(bool(self.model), "--model is required (checkpoint, SavedModel dir or .tflite)")
        _check(bool(self.input), "--input is required (image, folder or animated GIF)")
        _check(bool(self.out_dir), "--out is required (output directory)")
        _check(0 < self.vmax_percentile <= 100,
               f"--vmax_percentile must lie in (0, 100], got {self.vmax_percentile}")
        _check(self.num_threads >= 0, f"--num_threads must be >= 0, got {self.num_threads}")


# --- evaluation (issue 6) -------------------------------------------------------------------------
EVAL_TASKS = ("depth", "odometry")
EVAL_SCALINGS = ("median", "global", "none")


@dataclass(frozen=True)
class EvalConfig:
    """``python -m md2tf.evaluate``: what to evaluate, against which GT, with which protocol.

    Attributes:
      models: run directories, checkpoint prefixes, SavedModel directories, ``.tflite`` files or
        ``.npy`` files of precomputed ``scaled_disp`` maps; several give one comparison table.
      names: display names, one per model (default: the file / directory name).
      task: ``depth`` (Eigen-style depth metrics) or ``odometry`` (ATE of the pose network).
      eval_split: depth: split folder with ``test_files.txt`` (``eigen``, ``eigen_benchmark``,
        ``synthetic``...); odometry: ``odom_9`` / ``odom_10`` or any name used with ``split_file``.
      data_dir: dataset root (KITTI raw layout, or odometry layout for ``odom_*``).
      splits_dir: directory holding the split folders; empty = ``<data_dir>/splits``.
      gt_path: GT ``.npz``; empty = ``<splits_dir>/<eval_split>/gt_depths.npz``.
      eval_stereo: stereo-trained model: no median scaling, depth x 5.4.
      scaling: ``median`` (per image), ``global`` (one median-of-ratios scale) or ``none``.
      pred_depth_scale_factor: multiplies predicted depth before scaling.
      post_process: flip post-processing of the predictions.
      eval_eigen_to_benchmark: reorder ``.npy`` eigen predictions to eigen_benchmark order with
        ``<splits_dir>/benchmark/eigen_to_benchmark_ids.npy``.
      batch_size: images per forward pass (16 as the reference).
      image_ext: test image extension (``.jpg``: the reference evaluates JPEGs).
      output_json, output_markdown: optional result files.
      output_dir: ``benchmark`` split: directory of the KITTI submission PNGs (one folder per model).
      split_file, poses_file: odometry overrides of the frame list and GT ``world_from_camera`` poses
        (default ``<splits_dir>/odom/test_files_NN.txt`` and ``<data_dir>/poses/NN.txt``).
      snippet_length: frames per ATE snippet (5).
      progress: show a progress bar.
    """

    models: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    task: str = "depth"
    eval_split: str = "eigen"
    data_dir: str = ""
    splits_dir: str = ""
    gt_path: str = ""
    eval_stereo: bool = False
    scaling: str = "median"
    pred_depth_scale_factor: float = 1.0
    post_process: bool = False
    eval_eigen_to_benchmark: bool = False
    batch_size: int = 16
    image_ext: str = ".jpg"
    output_json: str = ""
    output_markdown: str = ""
    output_dir: str = ""
    split_file: str = ""
    poses_file: str = ""
    snippet_length: int = 5
    progress: bool = True

    def __post_init__(self) -> None:
        _check(bool(self.models), "--models is required (checkpoints, SavedModels, .tflite or .npy files)")
        _check(not self.names or len(self.names) == len(self.models),
               f"--names needs one name per --models entry: {len(self.names)} vs {len(self.models)}")
        _check(self.task in EVAL_TASKS, f"--task must be one of {EVAL_TASKS}, got {self.task!r}")
        _check(self.scaling in EVAL_SCALINGS, f"--scaling must be one of {EVAL_SCALINGS}, got {self.scaling!r}")
        _check(not (self.eval_stereo and self.scaling == "global"),
               "--eval_stereo disables median scaling: do not combine it with --scaling=global")
        _check(self.pred_depth_scale_factor > 0,
               f"--pred_depth_scale_factor must be > 0, got {self.pred_depth_scale_factor}")
        _check(self.batch_size > 0, f"--eval_batch_size must be > 0, got {self.batch_size}")
        _check(self.image_ext in (".jpg", ".png"), f"--image_ext must be .jpg or .png, got {self.image_ext!r}")
        _check(self.snippet_length >= 2, f"--snippet_length must be >= 2, got {self.snippet_length}")

    @property
    def resolved_splits_dir(self) -> str:
        """``splits_dir`` or ``<data_dir>/splits``."""
        import os  # noqa: PLC0415

        return self.splits_dir or os.path.join(self.data_dir, "splits")


@dataclass(frozen=True)
class ExportGtConfig:
    """``python -m md2tf.export_gt``: GT depth maps of a split's test files.

    Attributes:
      split: split folder with ``test_files.txt``.
      data_dir: dataset root (KITTI raw layout).
      splits_dir: directory holding split folders; empty = ``<data_dir>/splits``.
      gt_source: ``velodyne``, ``png`` (depth-annotated), ``dense`` (synthetic ``depth_gt``) or
        empty = by split (``png`` for eigen_benchmark, else ``velodyne``).
      output: output ``.npz``; empty = ``<splits_dir>/<split>/gt_depths.npz``.
    """

    split: str = "eigen"
    data_dir: str = ""
    splits_dir: str = ""
    gt_source: str = ""
    output: str = ""

    def __post_init__(self) -> None:
        _check(bool(self.data_dir), "--data_dir is required (dataset root in KITTI raw layout)")
        _check(self.gt_source in ("", "velodyne", "png", "dense"),
               f"--gt_source must be velodyne, png or dense (or empty), got {self.gt_source!r}")
