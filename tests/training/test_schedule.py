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


def test_epoch_plan_uses_the_split_or_clamps_with_a_warning():
    from md2tf.training.schedule import plan_epochs

    plan, warning = plan_epochs(0, 7, num_epochs=4)
    assert plan == (7, 28) and warning is None
    plan, warning = plan_epochs(10, 7, num_epochs=4)  # the split cannot fill 10 steps
    assert plan == (7, 28)
    assert warning == "--steps_per_epoch=10 is more than the 7 batches of the training split: using 7"
    assert plan_epochs(5, 7, num_epochs=4, max_steps=9)[0] == (5, 9)
    assert plan_epochs(5, None, num_epochs=2)[0] == (5, 10)  # filtered data: epochs of exactly 5
    assert plan_epochs(5, -1, num_epochs=2)[0] == (5, 10)


def test_epoch_plan_positions_and_errors():
    from md2tf.training.schedule import EpochPlan, plan_epochs

    plan = EpochPlan(steps_per_epoch=3, total_steps=9)
    assert [plan.epoch_of(s) for s in (0, 2, 3, 8)] == [0, 0, 1, 2]
    assert [plan.done_in_epoch(s, 1) for s in (2, 3, 4, 6, 7)] == [0, 0, 1, 3, 3]
    with pytest.raises(ValueError, match="no full batch"):
        plan_epochs(0, 0, 1)
    with pytest.raises(ValueError, match=r"unknown \(e.g. --skip_corrupt_images\): set --steps_per_epoch"):
        plan_epochs(0, None, 1)
    with pytest.raises(ValueError, match="endless"):
        plan_epochs(0, -1, 1)
