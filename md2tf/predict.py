"""``python -m md2tf.predict --model (checkpoint | saved_model dir | .tflite) --input PATH --out DIR``

Writes magma-coloured disparity PNGs and ``.npy`` scaled disparity / depth at each input's original
resolution, for a video file a side-by-side depth video (``--frame_stride``, ``--max_frames``,
``--video_out``, ``--save_frames``), and with ``--point_cloud`` a coloured ``.ply`` per frame (see
``md2tf.deploy.prediction``). ``--camera_height=1.65`` scales the depth to metres from the camera's
height above a flat road (``md2tf.deploy.height_scale``). Unreadable files are skipped and listed at
the end; the exit status is 1 if any file failed.
"""

from __future__ import annotations

from md2tf import flags as md2tf_flags
from md2tf.config import PredictConfig


def main(config: PredictConfig, flag_values) -> int:
    del flag_values
    from md2tf.deploy.height_scale import CameraHeight  # noqa: PLC0415  (TF after flag parsing)
    from md2tf.deploy.inference import load_predictor  # noqa: PLC0415
    from md2tf.deploy.prediction import (  # noqa: PLC0415
        depth_units_line,
        point_cloud_intrinsics,
        run_predict,
    )

    predictor = load_predictor(config.model, post_process=config.post_process,
                               num_threads=config.num_threads or None)
    K, uses = None, [what for what, on in (("point clouds", config.point_cloud),
                                           ("the camera-height scale", config.camera_height)) if on]
    if uses:
        needed_by = "--point_cloud" if config.point_cloud else "--camera_height"
        K, source = point_cloud_intrinsics(config.input, config.intrinsics_file,
                                           predictor.info.learned_intrinsics, needed_by)
        print(f"{' and '.join(uses)} with the intrinsics of {source}")
    summary = run_predict(predictor, config.input, config.out_dir, save_npy=config.save_npy,
                          save_color=config.save_color, vmax_percentile=config.vmax_percentile,
                          frame_stride=config.frame_stride, max_frames=config.max_frames,
                          video_out=config.video_out, save_frames=config.save_frames,
                          intrinsics=K if config.point_cloud else None,
                          camera_height=CameraHeight(config.camera_height, K) if config.camera_height else None)
    for line in summary.lines():
        print(line)
    if config.save_npy or config.point_cloud:
        print(depth_units_line(predictor.info, config.camera_height))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    md2tf_flags.run_command(main, PredictConfig, __doc__)
