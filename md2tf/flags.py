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


# --- evaluation (issue 6) -----------------------------------------------------------------------


# --- export / predict (issue 7) -----------------------------------------------------------------


def define_export_flags() -> None:
    """Defines the flags of ``python -m md2tf.export``."""
    from md2tf.config import EXPORT_FORMATS

    d = _define_once
    d(flags.DEFINE_string, "checkpoint", "", "Run directory or checkpoint prefix to export.")
    d(flags.DEFINE_string, "out", "", "Output directory (SavedModel, .tflite files, model_card.json).")
    d(flags.DEFINE_list, "formats", list(EXPORT_FORMATS), "Comma-separated subset of "
      f"{','.join(EXPORT_FORMATS)}.")
    d(flags.DEFINE_boolean, "post_process", False,
      "Bake Monodepth2's flip post-processing (two forward passes) into the graph.")
    d(flags.DEFINE_float, "metric_scale", 0.0, "Depth multiplier; 0 = auto (real_baseline_m / "
      "stereo_baseline for stereo-trained models, else 1).")
    d(flags.DEFINE_float, "real_baseline_m", 0.54, "True stereo baseline of the rig in metres (KITTI 0.54).")
    d(flags.DEFINE_string, "calibration", "auto", "int8 calibration data: auto (training data of the "
      "run if readable, else structured random frames), structured, or a folder of images.")
    d(flags.DEFINE_integer, "num_calibration_images", 64, "Frames used to calibrate int8.")


def export_config_from_flags(flag_values=None):
    """Parsed export flags -> ``md2tf.config.ExportConfig`` (raises ValueError naming the flag)."""
    from md2tf import config as cfg

    f = FLAGS if flag_values is None else flag_values
    return cfg.ExportConfig(
        checkpoint=f.checkpoint, out_dir=f.out, formats=tuple(f.formats), post_process=f.post_process,
        metric_scale=f.metric_scale, real_baseline_m=f.real_baseline_m, calibration=f.calibration,
        num_calibration_images=f.num_calibration_images)


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
