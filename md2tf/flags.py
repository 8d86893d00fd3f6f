"""Every command-line flag of md2tf, defined once. The only library module that imports absl.flags.

Entry points call one ``define_*_flags()`` under ``if __name__ == "__main__"`` and convert the parsed
flags into frozen configs (``md2tf.config``) right away; library code never reads ``FLAGS``.
"""

from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS


def _define_once(define, name: str, *args, **kwargs) -> None:
    """Defines a flag unless an earlier ``define_*_flags`` call already did (shared flags)."""
    if name not in FLAGS:
        define(name, *args, **kwargs)


# --- training (issue 5) -------------------------------------------------------------------------


def define_train_flags() -> None:
    """Defines the flags of ``python -m md2tf.train`` (data, model, loss and training sections)."""
    d = _define_once
    # Data.
    d(flags.DEFINE_enum, "dataset", "synthetic", ["kitti", "kitti_odom", "synthetic", "folder"],
      "Training data: KITTI raw, KITTI odometry, the built-in synthetic world or a folder of frames.")
    d(flags.DEFINE_string, "data_dir", "", "Dataset root (KITTI raw layout). Empty for --dataset=synthetic "
      "means --synthetic_cache_dir.")
    d(flags.DEFINE_string, "synthetic_cache_dir", "data_cache/synthetic",
      "Where the synthetic world is generated on first use (relative to the cwd).")
    d(flags.DEFINE_integer, "synthetic_drives", 4, "Synthetic world: number of drives.")
    d(flags.DEFINE_integer, "synthetic_frames", 100, "Synthetic world: frames per drive.")
    d(flags.DEFINE_integer, "synthetic_seed", 0, "Synthetic world: master seed (another seed = other "
      "drives, e.g. for pretraining encoders on data disjoint from the test drive).")
    d(flags.DEFINE_integer, "synthetic_height", 0, "Synthetic world image height (0 = --height).")
    d(flags.DEFINE_integer, "synthetic_width", 0, "Synthetic world image width (0 = --width).")
    d(flags.DEFINE_string, "split", "eigen_zhou", "Training split name (eigen_zhou, eigen_full, odom, ...).")
    d(flags.DEFINE_string, "splits_dir", "", "Directory of split folders. Empty = <data_dir>/splits.")
    d(flags.DEFINE_integer, "height", 192, "Network input height in pixels (multiple of 32).")
    d(flags.DEFINE_integer, "width", 640, "Network input width in pixels (multiple of 32).")
    d(flags.DEFINE_list, "frame_offsets", ["0", "-1", "1"],
      "Temporal frames relative to the target, starting with 0; '0' alone = stereo only.")
    d(flags.DEFINE_boolean, "use_stereo", False, "Add the other stereo camera as a source (S / MS).")
    d(flags.DEFINE_float, "stereo_baseline", 0.1, "Nominal stereo baseline in training units (0.1).")
    d(flags.DEFINE_enum, "image_ext", ".jpg", [".jpg", ".png"], "Image file extension.")
    d(flags.DEFINE_enum, "intrinsics", "fixed", ["fixed", "calib"], "Paper's fixed K or per-drive K.")
    d(flags.DEFINE_float, "flip_prob", 0.5, "Horizontal flip probability.")
    d(flags.DEFINE_float, "color_aug_prob", 0.5, "Colour augmentation probability.")
    d(flags.DEFINE_integer, "num_parallel_calls", -1, "tf.data parallelism (-1 = AUTOTUNE).")
    d(flags.DEFINE_integer, "shuffle_buffer", 512, "tf.data shuffle buffer size.")
    d(flags.DEFINE_integer, "gt_height", 375, "Height of the GT depth carried in training batches.")
    d(flags.DEFINE_integer, "gt_width", 1242, "Width of the GT depth carried in training batches.")
    # Model.
    d(flags.DEFINE_integer, "num_layers", 18, "Depth encoder ResNet depth (18, 34, 50).")
    d(flags.DEFINE_integer, "pose_num_layers", 18, "Pose encoder ResNet depth (18, 50).")
    d(flags.DEFINE_string, "encoder_weights", "none",
      "'none' (scratch) or a local torchvision ImageNet .pth/.npz for the encoders.")
    d(flags.DEFINE_enum, "init", "torch", ["torch", "keras"], "Initialisers of the decoders.")
    d(flags.DEFINE_list, "scales", ["0", "1", "2", "3"], "Decoder output scales 0..n-1.")
    d(flags.DEFINE_float, "init_disparity", None,
      "Initial sigmoid disparity in (0, 1) of the depth decoder (bias = logit); unset = reference init "
      "(~0.5, depth ~2*min_depth). Stereo from scratch needs a far start, e.g. 0.02.")
    # Loss (paper Table 2 switches, positive form: --noautomask etc.).
    d(flags.DEFINE_float, "ssim_weight", 0.85, "alpha of alpha*SSIM + (1-alpha)*L1.")
    d(flags.DEFINE_boolean, "ssim", True, "Use SSIM in the photometric error (--nossim = L1 only).")
    d(flags.DEFINE_boolean, "min_reprojection", True,
      "Per-pixel minimum reprojection (--nomin_reprojection = average, the ablation baseline).")
    d(flags.DEFINE_boolean, "automask", True, "Auto-masking of stationary pixels.")
    d(flags.DEFINE_boolean, "full_res_multiscale", True,
      "Upsample every scale's disparity to full resolution (--nofull_res_multiscale = v1 multiscale).")
    d(flags.DEFINE_float, "disparity_smoothness", 1e-3, "Edge-aware smoothness weight.")
    d(flags.DEFINE_float, "identity_noise_std", 1e-5, "Std of the auto-mask tie-break noise.")
    d(flags.DEFINE_float, "min_depth", 0.1, "Minimum depth of disp_to_depth (training units).")
    d(flags.DEFINE_float, "max_depth", 100.0, "Maximum depth of disp_to_depth (training units).")
    # Training.
    d(flags.DEFINE_string, "run_dir", "", "Run directory: checkpoints, TensorBoard, flags.txt, config.json.")
    d(flags.DEFINE_integer, "batch_size", 12, "Global batch size (split over replicas).")
    d(flags.DEFINE_float, "learning_rate", 1e-4, "Adam learning rate of the first phase.")
    d(flags.DEFINE_integer, "num_epochs", 20, "Number of epochs.")
    d(flags.DEFINE_list, "lr_decay_epochs", ["15"], "Epochs at whose start the LR is multiplied by "
      "--lr_decay_factor (15 = the paper's 15 + 5).")
    d(flags.DEFINE_float, "lr_decay_factor", 0.1, "LR multiplier at each --lr_decay_epochs entry.")
    d(flags.DEFINE_integer, "steps_per_epoch", 0, "Steps per epoch; 0 = one pass over the split.")
    d(flags.DEFINE_integer, "max_steps", 0, "Stop after this many steps in total (0 = no limit).")
    d(flags.DEFINE_integer, "val_steps", 0, "Validation batches per epoch (0 = the whole val split).")
    d(flags.DEFINE_integer, "log_every", 250, "Scalar summary / console log period in steps.")
    d(flags.DEFINE_integer, "image_log_every", 2000, "Image summary period in steps (0 = never).")
    d(flags.DEFINE_integer, "save_every_steps", 2000, "Checkpoint period in steps (plus every epoch).")
    d(flags.DEFINE_integer, "keep_checkpoints", 3, "Number of checkpoints kept.")
    d(flags.DEFINE_boolean, "resume", True, "Continue from the latest checkpoint in --run_dir.")
    d(flags.DEFINE_boolean, "jit_compile", False, "Compile the training step with XLA.")
    d(flags.DEFINE_enum, "mixed_precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
      "Keras mixed precision policy (geometry and losses stay float32).")
    d(flags.DEFINE_integer, "seed", 0, "Seed of weights init, data order/augmentation and loss noise.")
    d(flags.DEFINE_boolean, "deterministic", False,
      "Deterministic ops and data order (bitwise-reproducible resume; set TF_ENABLE_ONEDNN_OPTS=0).")
    d(flags.DEFINE_integer, "max_nonfinite_steps", 10,
      "Stop (after saving) when this many consecutive steps have a non-finite loss.")
    d(flags.DEFINE_list, "profile_steps", [], "Two step numbers 'start,stop' to capture a profiler trace.")
    d(flags.DEFINE_boolean, "validate_every_epoch", True, "Run a validation pass after each epoch.")
    d(flags.DEFINE_string, "init_checkpoint", "",
      "Checkpoint (run dir or prefix) to initialise the networks from, e.g. for 1024x320 fine-tuning.")
    d(flags.DEFINE_string, "encoder_init", "",
      "Run dir or checkpoint prefix whose encoders (depth, and pose when both runs have one) initialise "
      "this run; decoders start fresh (an ImageNet stand-in, e.g. an MS run on other synthetic drives).")
    d(flags.DEFINE_enum, "strategy", "auto", ["auto", "default", "mirrored", "multi_worker"],
      "tf.distribute strategy: auto = multi_worker if TF_CONFIG is set, mirrored over >1 GPU, "
      "else default.")
    d(flags.DEFINE_boolean, "progress_bar", True, "Show a console progress bar.")


def synthetic_world_from_flags(flag_values=None) -> dict:
    """``ensure_world`` keyword arguments (drives, frames, height, width, seed) from the training flags."""
    f = FLAGS if flag_values is None else flag_values
    return {"drives": f.synthetic_drives, "frames": f.synthetic_frames, "seed": f.synthetic_seed,
            "height": f.synthetic_height or f.height, "width": f.synthetic_width or f.width}


def experiment_config_from_flags(flag_values=None):
    """Translates parsed training flags into a validated ``md2tf.config.ExperimentConfig``.

    Args:
      flag_values: parsed ``absl.flags.FlagValues`` (default: the global ``FLAGS``).

    Returns:
      A frozen ``ExperimentConfig``; raises ``ValueError`` naming the flag on bad values.
    """
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values

    def ints(name: str) -> tuple[int, ...]:
        try:
            return tuple(int(v) for v in f[name].value)
        except ValueError as e:
            raise ValueError(f"--{name} must be a comma-separated list of integers, got "
                             f"{f[name].value}") from e

    data_dir = f.data_dir
    if f.dataset == "synthetic" and not data_dir:
        data_dir = f.synthetic_cache_dir
    profile = ints("profile_steps")
    if profile and (len(profile) != 2 or profile[0] >= profile[1]):
        raise ValueError(f"--profile_steps must be two steps 'start,stop' with start < stop, got {profile}")
    return cfg.ExperimentConfig(
        data=cfg.DataConfig(
            dataset=f.dataset, data_dir=data_dir, split=f.split, splits_dir=f.splits_dir,
            height=f.height, width=f.width, frame_offsets=ints("frame_offsets"),
            use_stereo=f.use_stereo, stereo_baseline=f.stereo_baseline, image_ext=f.image_ext,
            intrinsics=f.intrinsics, flip_prob=f.flip_prob, color_aug_prob=f.color_aug_prob,
            num_parallel_calls=f.num_parallel_calls, shuffle_buffer=f.shuffle_buffer, seed=f.seed,
            deterministic=f.deterministic, gt_height=f.gt_height, gt_width=f.gt_width),
        model=cfg.ModelConfig(
            num_layers=f.num_layers, pose_num_layers=f.pose_num_layers,
            encoder_weights=f.encoder_weights, init=f.init, scales=ints("scales"),
            init_disparity=f.init_disparity),
        loss=cfg.LossConfig(
            ssim_weight=f.ssim_weight, use_ssim=f.ssim, min_reprojection=f.min_reprojection,
            automask=f.automask, full_res_multiscale=f.full_res_multiscale,
            smoothness_weight=f.disparity_smoothness, identity_noise_std=f.identity_noise_std,
            min_depth=f.min_depth, max_depth=f.max_depth),
        train=cfg.TrainConfig(
            run_dir=f.run_dir, batch_size=f.batch_size, learning_rate=f.learning_rate,
            num_epochs=f.num_epochs, lr_decay_epochs=ints("lr_decay_epochs"),
            lr_decay_factor=f.lr_decay_factor, steps_per_epoch=f.steps_per_epoch,
            max_steps=f.max_steps, val_steps=f.val_steps, log_every=f.log_every,
            image_log_every=f.image_log_every, save_every_steps=f.save_every_steps,
            keep_checkpoints=f.keep_checkpoints, resume=f.resume, jit_compile=f.jit_compile,
            mixed_precision=f.mixed_precision, seed=f.seed, deterministic=f.deterministic,
            max_nonfinite_steps=f.max_nonfinite_steps, profile_steps=profile,
            validate_every_epoch=f.validate_every_epoch, init_checkpoint=f.init_checkpoint,
            encoder_init=f.encoder_init, strategy=f.strategy, progress_bar=f.progress_bar),
    )


# --- evaluation (issue 6) -----------------------------------------------------------------------


def define_eval_flags() -> None:
    """Defines the flags of ``python -m md2tf.evaluate``."""
    d = _define_once
    d(flags.DEFINE_list, "models", [], "Comma-separated run dirs, checkpoint prefixes, SavedModel dirs, "
      ".tflite files or .npy files of precomputed scaled disparities.")
    d(flags.DEFINE_list, "names", [], "Display names, one per --models entry (default: file names).")
    d(flags.DEFINE_enum, "task", "depth", ["depth", "odometry"], "What to evaluate.")
    d(flags.DEFINE_string, "eval_split", "eigen", "Depth: split folder with test_files.txt (eigen, "
      "eigen_benchmark, synthetic...). Odometry: odom_9 / odom_10 or a name used with --split_file.")
    d(flags.DEFINE_string, "data_dir", "", "Dataset root (KITTI raw layout; odometry layout for odom_*).")
    d(flags.DEFINE_string, "splits_dir", "", "Directory holding split folders; empty = <data_dir>/splits.")
    d(flags.DEFINE_string, "gt_path", "", "GT .npz; empty = <splits_dir>/<eval_split>/gt_depths.npz.")
    d(flags.DEFINE_boolean, "eval_stereo", False, "Stereo-trained model: no median scaling, depth x 5.4.")
    d(flags.DEFINE_enum, "scaling", "median", ["median", "global", "none"],
      "Per-image median scaling, one global median-of-ratios scale, or none (metric models).")
    d(flags.DEFINE_float, "pred_depth_scale_factor", 1.0, "Multiplies predicted depth before scaling.")
    d(flags.DEFINE_boolean, "post_process", False, "Flip post-processing of the predictions.")
    d(flags.DEFINE_boolean, "eval_eigen_to_benchmark", False, "Reorder .npy eigen predictions to the "
      "eigen_benchmark order with <splits_dir>/benchmark/eigen_to_benchmark_ids.npy.")
    d(flags.DEFINE_integer, "eval_batch_size", 16, "Images per forward pass.")
    d(flags.DEFINE_string, "image_ext", ".jpg", "Test image extension (.jpg as the reference, or .png).")
    d(flags.DEFINE_string, "output_json", "", "Write the results as JSON here.")
    d(flags.DEFINE_string, "output_markdown", "", "Write the results as a markdown table here.")
    d(flags.DEFINE_string, "output_dir", "", "--eval_split=benchmark: write the KITTI depth benchmark "
      "submission PNGs to <output_dir>/<model name>/ (no scores).")
    d(flags.DEFINE_string, "split_file", "", "Odometry: frame list (default <splits_dir>/odom/test_files_NN.txt).")
    d(flags.DEFINE_string, "poses_file", "", "Odometry: GT poses (default <data_dir>/poses/NN.txt).")
    d(flags.DEFINE_integer, "snippet_length", 5, "Odometry: frames per ATE snippet.")
    d(flags.DEFINE_boolean, "progress", True, "Show a progress bar.")


def eval_config_from_flags(flag_values=None):
    """Parsed evaluation flags -> ``md2tf.config.EvalConfig`` (raises ValueError naming the flag)."""
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values
    return cfg.EvalConfig(
        models=tuple(f.models), names=tuple(f.names), task=f.task, eval_split=f.eval_split,
        data_dir=f.data_dir, splits_dir=f.splits_dir, gt_path=f.gt_path, eval_stereo=f.eval_stereo,
        scaling=f.scaling, pred_depth_scale_factor=f.pred_depth_scale_factor, post_process=f.post_process,
        eval_eigen_to_benchmark=f.eval_eigen_to_benchmark, batch_size=f.eval_batch_size,
        image_ext=f.image_ext, output_json=f.output_json, output_markdown=f.output_markdown,
        output_dir=f.output_dir,
        split_file=f.split_file, poses_file=f.poses_file, snippet_length=f.snippet_length,
        progress=f.progress)


def define_export_gt_flags() -> None:
    """Defines the flags of ``python -m md2tf.export_gt``."""
    d = _define_once
    d(flags.DEFINE_string, "split", "eigen", "Split folder with test_files.txt.")
    d(flags.DEFINE_string, "data_dir", "", "Dataset root (KITTI raw layout).")
    d(flags.DEFINE_string, "splits_dir", "", "Directory holding split folders; empty = <data_dir>/splits.")
    d(flags.DEFINE_string, "gt_source", "", "velodyne, png (depth-annotated), dense (synthetic depth_gt); "
      "empty = png for eigen_benchmark, else velodyne.")
    d(flags.DEFINE_string, "output", "", "Output .npz; empty = <splits_dir>/<split>/gt_depths.npz.")


def export_gt_config_from_flags(flag_values=None):
    """Parsed export_gt flags -> ``md2tf.config.ExportGtConfig``."""
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values
    return cfg.ExportGtConfig(split=f.split, data_dir=f.data_dir, splits_dir=f.splits_dir,
                              gt_source=f.gt_source, output=f.output)


# --- export / predict (issue 7) -----------------------------------------------------------------


def define_export_flags() -> None:
    """Defines the flags of ``python -m md2tf.export``."""
    from md2tf.config import EXPORT_FORMATS

    d = _define_once
    d(flags.DEFINE_string, "checkpoint", "", "Run directory or checkpoint prefix to export.")
    d(flags.DEFINE_string, "out", "", "Output directory (SavedModel, .tflite files, model_card.json).")
    d(flags.DEFINE_list, "formats", list(EXPORT_FORMATS), "Comma-separated subset of "
      f"{','.join(EXPORT_FORMATS)}, plus tflite_pose (pose network for on-device odometry).")
    d(flags.DEFINE_boolean, "post_process", False,
      "Bake Monodepth2's flip post-processing (two forward passes) into the graph.")
    d(flags.DEFINE_float, "metric_scale", 0.0, "Depth multiplier; 0 = auto (real_baseline_m / "
      "stereo_baseline for stereo-trained models, else 1).")
    d(flags.DEFINE_float, "real_baseline_m", 0.54, "True stereo baseline of the rig in metres (KITTI 0.54).")
    d(flags.DEFINE_string, "calibration", "auto", "int8 calibration data: auto (training data of the "
      "run if readable, else structured random frames), structured, or a folder of images.")
    d(flags.DEFINE_integer, "num_calibration_images", 64, "Frames used to calibrate int8.")
    d(flags.DEFINE_string, "accuracy_split", "", "If set, score every exported variant on this test "
      "split (abs_rel, a1, ...; needs test_files.txt and gt_depths.npz).")
    d(flags.DEFINE_string, "accuracy_data_dir", "", "Test images root; empty = the run's data_dir.")
    d(flags.DEFINE_string, "accuracy_splits_dir", "", "Split folders; empty = <data_dir>/splits.")
    d(flags.DEFINE_integer, "export_height", 0, "Input height of the exported graph (0 = training size).")
    d(flags.DEFINE_integer, "export_width", 0, "Input width of the exported graph (0 = training size).")


def export_config_from_flags(flag_values=None):
    """Parsed export flags -> ``md2tf.config.ExportConfig`` (raises ValueError naming the flag)."""
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values
    return cfg.ExportConfig(
        checkpoint=f.checkpoint, out_dir=f.out, formats=tuple(f.formats), post_process=f.post_process,
        metric_scale=f.metric_scale, real_baseline_m=f.real_baseline_m, calibration=f.calibration,
        num_calibration_images=f.num_calibration_images, accuracy_split=f.accuracy_split,
        accuracy_data_dir=f.accuracy_data_dir, accuracy_splits_dir=f.accuracy_splits_dir,
        height=f.export_height, width=f.export_width)


def define_predict_flags() -> None:
    """Defines the flags of ``python -m md2tf.predict``."""
    d = _define_once
    d(flags.DEFINE_string, "model", "", "Checkpoint / run directory, SavedModel directory or .tflite file.")
    d(flags.DEFINE_string, "input", "", "Image file, folder of images, or animated GIF.")
    d(flags.DEFINE_string, "out", "", "Output directory.")
    d(flags.DEFINE_boolean, "post_process", False,
      "Flip post-processing (checkpoints only; exported models carry their own choice).")
    d(flags.DEFINE_boolean, "save_npy", True, "Write .npy disparity and depth at the original size.")
    d(flags.DEFINE_boolean, "save_color", True, "Write magma-coloured disparity PNGs.")
    d(flags.DEFINE_float, "vmax_percentile", 95.0, "Disparity percentile mapped to the brightest colour.")
    d(flags.DEFINE_integer, "num_threads", 0, "TFLite interpreter threads (0 = LiteRT default).")


def predict_config_from_flags(flag_values=None):
    """Parsed predict flags -> ``md2tf.config.PredictConfig`` (raises ValueError naming the flag)."""
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values
    return cfg.PredictConfig(
        model=f.model, input=f.input, out_dir=f.out, post_process=f.post_process, save_npy=f.save_npy,
        save_color=f.save_color, vmax_percentile=f.vmax_percentile, num_threads=f.num_threads)
