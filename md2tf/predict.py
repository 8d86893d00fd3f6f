"""``python -m md2tf.predict --model (checkpoint | saved_model dir | .tflite) --input PATH --out DIR``

Writes magma-coloured disparity PNGs and ``.npy`` scaled disparity / depth at each input's original
resolution (see ``md2tf.deploy.prediction``). Unreadable files are skipped and listed at the end; the
exit status is 1 if any file failed.
"""

from __future__ import annotations

import sys

from absl import app

from md2tf import cli
from md2tf import flags as md2tf_flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from md2tf.deploy.inference import load_predictor
    from md2tf.deploy.prediction import run_predict

    try:
        config = md2tf_flags.predict_config_from_flags()
        predictor = load_predictor(config.model, post_process=config.post_process,
                                   num_threads=config.num_threads or None)
        summary = run_predict(predictor, config.input, config.out_dir, save_npy=config.save_npy,
                              save_color=config.save_color, vmax_percentile=config.vmax_percentile)
    except (ValueError, FileNotFoundError) as e:  # bad flags / paths: message, no traceback
        raise app.UsageError(str(e)) from e
    for line in summary.lines():
        print(line)
    if summary.failed:
        sys.exit(1)


if __name__ == "__main__":
    md2tf_flags.define_predict_flags()
    app.run(cli.main(main))
