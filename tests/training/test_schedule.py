"""LR schedule: the paper's 15 epochs at 1e-4 then 5 at 1e-5 (not PyTorch>=1.1's one-epoch-early drop)."""

from __future__ import annotations

import pytest

from md2tf.training.schedule import learning_rate_at_epoch


def test_paper_schedule_15_plus_5():
    lrs = [learning_rate_at_epoch(e, 1e-4, (15,), 0.1) for e in range(20)]
    assert lrs[:15] == [1e-4] * 15  # epoch 14 still at 1e-4 (the PyTorch>=1.1 code drops it here)
    assert lrs[15:] == pytest.approx([1e-5] * 5)


def test_multiple_decays_compound():
    assert learning_rate_at_epoch(0, 1.0, (2, 4), 0.5) == 1.0
    assert learning_rate_at_epoch(2, 1.0, (2, 4), 0.5) == 0.5
    assert learning_rate_at_epoch(5, 1.0, (2, 4), 0.5) == 0.25


def test_no_decay_epochs_is_constant():
    assert learning_rate_at_epoch(100, 1e-5, (), 0.1) == 1e-5


def test_negative_epoch_rejected():
    with pytest.raises(ValueError, match="epoch"):
        learning_rate_at_epoch(-1, 1e-4, (15,), 0.1)
