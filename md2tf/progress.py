"""The one console progress bar of md2tf (tqdm on stderr): training, evaluation, prediction, data.

Long loops report either a count (``update(n)``) or the index of the item just finished
(``bar(i)``, the callback form that library functions such as ``export_gt_depths`` accept). A
disabled bar (non-chief workers, ``--noprogress``, tests) prints nothing. A loop whose remaining time
tqdm cannot know from its rate (training: validation and checkpoints between epochs) passes its own
estimate (``update(..., eta_s=...)``), shown in place of tqdm's.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class Progress:
    """A progress bar over ``total`` items (None = unknown: no ETA).

    Args:
      total: number of items, or None.
      desc: label in front of the bar.
      unit: item name shown in the rate (``step``, ``image``, ``frame``).
      enabled: False makes every call a no-op.
      initial: items already done (a resumed run), so the ETA covers only what remains.
      own_eta: the caller passes the remaining time to `update` (tqdm's rate-based ETA is hidden).
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", enabled: bool = True,
                 initial: int = 0, own_eta: bool = False) -> None:
        self.enabled = enabled
        bar_format = ("{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"
                      if own_eta else None)
        self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr,
                         disable=not enabled, dynamic_ncols=True, mininterval=0.5, smoothing=0.1,
                         bar_format=bar_format)

    def update(self, n: int = 1, postfix: str | None = None, eta_s: float | None = None) -> None:
        """Advances by ``n`` items and optionally sets the text after the bar (e.g. the loss).

        Args:
          n: items done.
          postfix: text after the bar.
          eta_s: remaining time in seconds (bars made with ``own_eta``), shown as ``ETA h:mm:ss``.
        """
        if eta_s is not None:
            postfix = ", ".join(p for p in (postfix, f"ETA {tqdm.format_interval(eta_s)}") if p)
        if postfix is not None:
            self._bar.set_postfix_str(postfix, refresh=False)
        self._bar.update(n)

    def __call__(self, index: int) -> None:
        """Callback form: item ``index`` (0-based) is done."""
        self._bar.update(index + 1 - self._bar.n)

    def write(self, line: str) -> None:
        """Prints ``line`` on its own line above the bar (not glued onto it)."""
        if self.enabled:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
