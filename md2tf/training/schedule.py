"""Learning-rate schedule of Monodepth2: a step decay at epoch boundaries.

The paper trains 15 epochs at 1e-4 and 5 at 1e-5. The official code calls ``StepLR.step()`` at the
start of every epoch, which with PyTorch >= 1.1 drops the rate one epoch early (epoch 14 at 1e-5);
md2tf follows the paper: epochs ``0 .. d-1`` use the base rate for a decay epoch ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence


def learning_rate_at_epoch(epoch: int, base_lr: float, decay_epochs: Sequence[int],
                           decay_factor: float) -> float:
    """Learning rate used during (0-based) ``epoch``.

    Args:
      epoch: 0-based epoch index (>= 0).
      base_lr: rate of the first phase, e.g. 1e-4.
      decay_epochs: sorted epochs at whose start the rate is multiplied by ``decay_factor``.
      decay_factor: multiplier, e.g. 0.1.

    Returns:
      ``base_lr * decay_factor ** (number of decay epochs <= epoch)``.
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    num_decays = sum(1 for d in decay_epochs if epoch >= d)
    return float(base_lr * decay_factor**num_decays)
