"""Static shape checks shared by the geometry and loss functions (private)."""

from __future__ import annotations

import tensorflow as tf


def check_shape(
    tensor: tf.Tensor,
    name: str,
    spec: str,
    rank: int | tuple[int, ...],
    dims: dict[int, int] | None = None,
) -> None:
    """Raises ValueError if ``tensor``'s static shape contradicts ``spec``.

    Unknown (None) dimensions and unknown ranks pass: they are checked by TF at run time.

    Args:
      tensor: the tensor to check.
      name: the argument name, used in the message.
      spec: the expected shape as written in the docstring, e.g. ``"[B, 3, 3]"``.
      rank: the expected rank (or the allowed ranks).
      dims: expected sizes of some axes, e.g. ``{-1: 3, -2: 3}``.

    Raises:
      ValueError: naming ``name``, ``spec`` and the actual shape.
    """
    shape = tensor.shape
    if shape.rank is None:
        return
    ranks = (rank,) if isinstance(rank, int) else rank
    bad = shape.rank not in ranks
    if not bad and dims:
        for axis, size in dims.items():
            actual = shape[axis]
            if actual is not None and actual != size:
                bad = True
    if bad:
        raise ValueError(f"{name} must have shape {spec}, got {shape.as_list()}")


def check_same_batch(*named: tuple[str, tf.Tensor]) -> None:
    """Raises ValueError if the static leading (batch) dimensions of the tensors differ."""
    known = [(n, t.shape[0]) for n, t in named if t.shape.rank and t.shape[0] is not None]
    if len({b for _, b in known}) > 1:
        desc = ", ".join(f"{n}: {b}" for n, b in known)
        raise ValueError(f"mismatched batch sizes ({desc}); all must share the same B")


def check_same_spatial(a_name: str, a: tf.Tensor, b_name: str, b: tf.Tensor) -> None:
    """Raises ValueError if the static H, W of two ``[B, H, W, ...]`` tensors differ."""
    if a.shape.rank is None or b.shape.rank is None:
        return
    for axis in (1, 2):
        if a.shape[axis] is not None and b.shape[axis] is not None and a.shape[axis] != b.shape[axis]:
            raise ValueError(
                f"{a_name} and {b_name} must have the same H, W; got {a.shape.as_list()} "
                f"and {b.shape.as_list()}"
            )
