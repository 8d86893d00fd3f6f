"""One tiny real DepthNet (ResNet18, 64x128) exported once per session: SavedModel + TFLite fp32."""

from __future__ import annotations

import numpy as np
import pytest

H, W = 64, 128


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """Dict with the Keras predictor, the SavedModel dir, the fp32 .tflite path and test images."""
    import keras

    from md2tf.deploy import tflite
    from md2tf.deploy.inference import DepthPredictor, KerasPredictor, ModelInfo
    from md2tf.deploy.saved_model import export_saved_model
    from md2tf.models import DepthNet

    keras.utils.set_random_seed(0)
    net = DepthNet(num_layers=18, init="keras").build_for_shape(H, W)
    # A learned K and the metric source travel with every export (the metadata round trips check it).
    info = ModelInfo(H, W, min_depth=0.1, max_depth=100.0, metric_scale=5.4, depth_units="metres",
                     learned_intrinsics={"clip": [0.71, 2.38, 0.55, 0.45]},
                     metric_source="stereo baseline: depth x 5.4")
    predictor = KerasPredictor(DepthPredictor(net, info), info)
    root = tmp_path_factory.mktemp("export")
    sm_dir = export_saved_model(predictor.model, info, str(root / "saved_model"))
    content = tflite.convert(sm_dir, metadata=info.to_dict())
    path = root / "depth_fp32.tflite"
    path.write_bytes(content)
    images = np.random.default_rng(5).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    return {"predictor": predictor, "info": info, "saved_model": sm_dir, "tflite_fp32": str(path),
            "content": content, "images": images, "reference": predictor.predict(images),
            "root": root}
