"""scripts/train_synthetic.py: the pose surgery behind its split of the snippet ATE."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("train_synthetic")


def _poses(rng, n=6):
    poses = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        axis = rng.normal(size=3) * 0.05
        angle = np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / angle
        poses[i, :3, :3] = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k  # Rodrigues
        poses[i, :3, 3] = rng.normal(size=3)
    return poses


def test_with_lengths_keeps_rotation_and_direction(script):
    rng = np.random.default_rng(0)
    poses = _poses(rng)
    lengths = np.linalg.norm(poses[:, :3, 3], axis=1)
    np.testing.assert_allclose(script._with_lengths(poses, lengths), poses, atol=1e-12)  # round trip
    wanted = rng.uniform(0.5, 2.0, len(poses))
    out = script._with_lengths(poses, wanted)
    np.testing.assert_allclose(np.linalg.norm(out[:, :3, 3], axis=1), wanted)
    np.testing.assert_allclose(out[:, :3, 3] / wanted[:, None], poses[:, :3, 3] / lengths[:, None])
    np.testing.assert_array_equal(out[:, :3, :3], poses[:, :3, :3])
    np.testing.assert_array_equal(out[:, 3], poses[:, 3])
    poses[2, :3, 3] = 0.0  # a standing pair has no direction: it stays where it is
    before = poses.copy()
    assert np.all(script._with_lengths(poses, wanted)[2, :3, 3] == 0.0)
    np.testing.assert_array_equal(poses, before)  # the input is left as it was
