"""``python -m md2tf.export --checkpoint RUN_OR_CKPT --out DIR --formats saved_model,tflite_fp32,...``

Exports the depth network of a run as a SavedModel and TFLite fp32 / fp16 / dynamic / int8 models
(builtin ops only) and writes ``model_card.json``. See ``md2tf.deploy`` and ``tflite/README.md``.
"""

from __future__ import annotations

from absl import app

from md2tf import cli
from md2tf import flags as md2tf_flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from md2tf.deploy.exporter import run_export, summary_lines
    from md2tf.evaluation.runner import accuracy_evaluator

    try:
        config = md2tf_flags.export_config_from_flags()
        card = run_export(config, accuracy_evaluator=accuracy_evaluator)
    except (ValueError, FileNotFoundError) as e:  # bad flags / paths: message, no traceback
        raise app.UsageError(str(e)) from e
    for line in summary_lines(card):
        print(line)
    print(f"model card: {config.out_dir}/model_card.json")


if __name__ == "__main__":
    md2tf_flags.define_export_flags()
    app.run(cli.main(main))
