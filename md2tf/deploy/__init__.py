"""Deployment: the exported inference graph, SavedModel / TFLite export, model cards, prediction.

- `inference`: `make_depth_predictor` (uint8 RGB in -> disparity, depth), `ModelInfo`,
  `load_predictor(path)` for run dirs / checkpoints, SavedModels and ``.tflite`` files.
- `saved_model`: `export_saved_model` with explicit signatures (single, batch, float, encoded bytes).
- `tflite`: `convert` (fp32 / fp16 / dynamic / int8, builtin ops only), op lists, analyzer, metadata.
- `model_card`, `exporter`: ``model_card.json`` and `export_all` / `run_export` (``md2tf.export``).
- `prediction`, `images`: ``md2tf.predict`` (any size, EXIF, grey/RGBA, GIF frames) and the magma map.

This package never imports training code (losses, sampler, pose); TensorFlow is imported lazily where
possible so that `inference.load_predictor` on a ``.tflite`` file stays light.
"""
