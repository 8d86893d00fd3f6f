"""``intrinsics.json`` validation of the folder dataset: every bad value is refused, naming file and key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from md2tf.data.datasets import folder

GOOD = {"fx": 0.58, "fy": 1.92, "cx": 0.5, "cy": 0.5}


def write(tmp_path, text: str) -> str:
    path = tmp_path / "intrinsics.json"
    path.write_text(text)
    return str(path)


def test_valid_normalised_and_pixel_files(tmp_path):
    K = folder.read_intrinsics(write(tmp_path, json.dumps(GOOD)))
    np.testing.assert_allclose(K, [[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]], rtol=1e-6)
    pixels = {"fx": 74.4, "fy": 61.4, "cx": 64.0, "cy": 16.0, "units": "pixels"}
    K = folder.read_intrinsics(write(tmp_path, json.dumps(pixels)), image_size=(128, 32))
    np.testing.assert_allclose(K[:2], [[74.4 / 128, 0, 0.5], [0, 61.4 / 32, 0.5]], rtol=1e-6)


@pytest.mark.parametrize("key, value, message", [
    ("fx", "NaN", r"'fx' must be finite, got nan"),
    ("fy", "Infinity", r"'fy' must be finite"),
    ("fx", '"abc"', r"'fx' must be a number, got 'abc'"),
    ("cy", "true", r"'cy' must be a number, got True"),
    ("fx", "null", r"'fx' must be a number, got None"),
    ("fx", "0", r"'fx' must be > 0"),
    ("fy", "-1.5", r"'fy' must be > 0"),
    ("cx", "1.7", r"'cx' puts the principal point outside the image"),
    ("cy", "-0.1", r"'cy' puts the principal point outside the image"),
    ("fx", "74.4", r"normalised 'fx' = 74.4 is implausible.*\"units\": \"pixels\""),
])
def test_bad_value_names_file_and_key(tmp_path, key, value, message):
    text = json.dumps(GOOD).replace(f'"{key}": {json.dumps(GOOD[key])}', f'"{key}": {value}')
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=rf"intrinsics.json: {message}"):
        folder.read_intrinsics(path)


def test_pixel_values_outside_the_frame_are_refused(tmp_path):
    pixels = {"fx": 74.4, "fy": 61.4, "cx": 300.0, "cy": 16.0, "units": "pixels"}
    with pytest.raises(ValueError, match=r"intrinsics.json: 'cx' puts the principal point outside"):
        folder.read_intrinsics(write(tmp_path, json.dumps(pixels)), image_size=(128, 32))


def test_not_an_object(tmp_path):
    with pytest.raises(ValueError, match="intrinsics.json: expected a JSON object"):
        folder.read_intrinsics(write(tmp_path, "[0.58, 1.92, 0.5, 0.5]"))
