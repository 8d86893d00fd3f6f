"""``python -m md2tf.export --checkpoint RUN_OR_CKPT --out DIR --formats saved_model,tflite_fp32,...``

Exports the depth network of a run as a SavedModel and TFLite fp32 / fp16 / dynamic / int8 models
(builtin ops only) and writes ``model_card.json``. See ``md2tf.deploy`` and ``tflite/README.md``.
"""

from __future__ import annotations

from md2tf import flags as md2tf_flags
from md2tf.config import ExportConfig


def main(config: ExportConfig, flag_values) -> None:
    del flag_values
    from md2tf.deploy.exporter import run_export, summary_lines  # noqa: PLC0415  (TF after flags)
    from md2tf.evaluation.runner import accuracy_evaluator  # noqa: PLC0415

    card = run_export(config, accuracy_evaluator=accuracy_evaluator)
    for line in summary_lines(card):
        print(line)
    print(f"model card: {config.out_dir}/model_card.json")


if __name__ == "__main__":
    md2tf_flags.run_command(main, ExportConfig, __doc__)
