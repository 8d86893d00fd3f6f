"""SIGTERM / SIGINT handling: finish the current step, save, exit cleanly."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager that turns SIGTERM/SIGINT into a flag the training loop polls after each step.

    A second SIGINT while a stop is pending raises ``KeyboardInterrupt`` (the user really wants out).
    Outside the main thread (where handlers cannot be installed) it is a plain flag.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = signals
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def request(self, reason: str = "request") -> None:
        """Asks the loop to stop after the current step (tests, callbacks)."""
        self.requested = True
        self.signal_name = reason

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
