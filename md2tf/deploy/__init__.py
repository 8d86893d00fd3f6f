"""Deployment: the exported inference graph, SavedModel / TFLite export, model cards, prediction.

- `inference`: `DepthPredictor` (uint8 RGB in -> disparity, depth), `ModelInfo`,
  `load_predictor(path)` for run dirs / checkpoints, SavedModels and ``.tflite`` files.
- `saved_model`: `export_saved_model` with explicit signatures (single, batch, float, encoded bytes).
- `tflite`: `convert` (float32 / float16 / dynamic / int8, builtin ops only), op lists, analyzer,
  metadata.
- `formats`: the registry of export formats (``--formats`` name -> file, converter options, parity
  tolerance, card entry).
- `model_card`, `exporter`: ``model_card.json`` and `export_all` / `run_export` (``md2tf.export``),
  built in a staging folder and moved into place.
- `prediction`, `images`: ``md2tf.predict`` (any size, EXIF, grey/RGBA, GIF frames) and the magma map.
- `height_scale`: ``md2tf.predict --camera_height``: metric depth from the camera's height above the
  fitted ground, smoothed over a video's frames.

This package never imports training code (losses, sampler, pose training).
"""
