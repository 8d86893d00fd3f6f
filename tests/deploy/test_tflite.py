"""A damaged ``.tflite`` (cut short, empty, text) ends in one line naming the file, never a traceback."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from md2tf import evaluate, predict
from md2tf.config import EvalConfig, PredictConfig
from md2tf.deploy import tflite, tflite_graph
from md2tf.deploy.inference import load_predictor
from md2tf.flags import call_command

DAMAGES = {
    "cut_in_half": lambda content: content[: len(content) // 2],
    "last_bytes_missing": lambda content: content[:-8],
    "empty": lambda content: b"",
    "text": lambda content: b"--height=192\n--width=640\n",
}


@pytest.fixture(params=sorted(DAMAGES))
def damaged(request, exported, tmp_path):
    """Path of a damaged copy of the session's fp32 export."""
    path = tmp_path / f"{request.param}.tflite"
    path.write_bytes(DAMAGES[request.param](exported["content"]))
    return str(path)


def test_read_metadata_names_the_damaged_model(damaged):
    with open(damaged, "rb") as f:
        content = f.read()
    with pytest.raises(ValueError, match=f"^{re.escape(damaged)} is not a valid, complete TFLite model"):
        tflite_graph.read_metadata(content, source=damaged)
    with pytest.raises(ValueError, match=f"^{re.escape(damaged)} is not a valid, complete TFLite model"):
        load_predictor(damaged)


def test_interpreter_names_the_model_its_verifier_refuses():
    with pytest.raises(ValueError, match=r"^m\.tflite is not a valid, complete TFLite model \(.*Flatbuffer"):
        tflite.make_interpreter(b"1234TFL3" + b"\0" * 64, source="m.tflite")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_predict_and_evaluate_end_in_one_line(damaged, tmp_path, capsys):
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(image)
    message = f"error: {damaged} is not a valid, complete TFLite model ("
    assert call_command(predict.main, PredictConfig, [f"--model={damaged}", f"--input={image}",
                                                      f"--out={tmp_path / 'out'}"]) == 2
    assert _one_error_line(capsys).startswith(message)
    assert call_command(evaluate.main, EvalConfig, [f"--models={damaged}", "--noprogress"]) == 2
    assert _one_error_line(capsys).startswith(message)
