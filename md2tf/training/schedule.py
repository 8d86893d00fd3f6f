"""Learning-rate schedule of Monodepth2: a step decay at epoch boundaries.

The paper trains 15 epochs at 1e-4 and 5 at 1e-5. The official code calls ``StepLR.step()`` at the
start of every epoch, which with PyTorch >= 1.1 drops the rate one epoch early (epoch 14 at 1e-5);
md2tf follows the paper: epochs ``0 .. d-1`` use the base rate for a decay epoch ``d``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


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


class EpochPlan(NamedTuple):
    """How global steps map to epochs: every epoch is exactly ``steps_per_epoch`` steps.

    Global step ``s`` (0-based count of finished steps) lies in epoch ``s // steps_per_epoch``, after
    ``s % steps_per_epoch`` of its steps; a resumed run therefore continues an epoch exactly where
    the interrupted one stopped and ends at the same step.

    Attributes:
      steps_per_epoch: steps of every epoch (>= 1).
      total_steps: steps of the whole run (``num_epochs * steps_per_epoch``, capped by ``max_steps``).
    """

    steps_per_epoch: int
    total_steps: int

    def epoch_of(self, step: int) -> int:
        """0-based epoch that global step ``step`` (steps done so far) falls into."""
        return step // self.steps_per_epoch

    def done_in_epoch(self, step: int, epoch: int) -> int:
        """Steps of ``epoch`` already done at global step ``step`` (0 .. steps_per_epoch)."""
        return min(max(step - epoch * self.steps_per_epoch, 0), self.steps_per_epoch)


def plan_epochs(requested: int, num_batches: int | None, num_epochs: int,
                max_steps: int = 0) -> tuple[EpochPlan, str | None]:
    """The one definition of the step/epoch arithmetic of a run.

    Args:
      requested: ``--steps_per_epoch`` (0 = one pass over the split).
      num_batches: full batches per pass over the training split; None when unknown (a filtered
        dataset); -1 for an endless (repeated) dataset.
      num_epochs: ``--num_epochs``.
      max_steps: ``--max_steps`` (0 = no cap).

    Returns:
      ``(plan, warning)``: ``warning`` is a one-line message when ``--steps_per_epoch`` was more than
      the split holds and was clamped to ``num_batches``, else None.

    Raises:
      ValueError: for an empty split, or an unknown/endless batch count without ``--steps_per_epoch``.
    """
    warning = None
    if num_batches == 0:
        raise ValueError("the training split has no full batch: lower --batch_size or add data")
    if num_batches is None or num_batches < 0:
        if not requested:
            kind = "endless" if num_batches is not None else "unknown (e.g. --skip_corrupt_images)"
            raise ValueError(f"the number of training batches is {kind}: set --steps_per_epoch")
        spe = requested
    elif requested > num_batches:
        spe = num_batches
        warning = (f"--steps_per_epoch={requested} is more than the {num_batches} batches of the "
                   f"training split: using {num_batches}")
    else:
        spe = requested or num_batches
    total = spe * num_epochs
    if max_steps:
        total = min(total, max_steps)
    return EpochPlan(spe, total), warning
