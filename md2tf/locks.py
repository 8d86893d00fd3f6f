"""One writer at a time: an exclusive lock on a run directory, an export folder or a video decode.

A lock is an advisory `fcntl.flock` on a small lock file that holds the holder's PID. The kernel
drops a flock when the holder's file descriptor closes, whether the holder returns, raises or is
killed (``kill -9`` included), so a lock file left by a dead process is stale and the next process
takes it over without asking anyone. flock locks belong to an open file, not to a process: two
`hold` s of one path conflict even within one process (two threads, or a test that holds a lock
while it calls an entry point).

The holder removes the lock file before it lets go. A waiter that then gets the lock of the removed
file sees that the path no longer names that file and tries again on the path's new file, so two
processes never both hold one path.

Linux emulates flock with byte-range locks on NFS, so the lock also holds between machines that
share an NFS v4 mount. This module must not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator

logger = logging.getLogger(__name__)


class LockBusy(ValueError):
    """Another holder has the lock: one line naming the locked thing, the holder's PID and the file.

    Attributes:
      path: the lock file.
      pid: the holder's PID as written in the lock file (None when it was not written yet).
    """

    def __init__(self, message: str, path: str, pid: int | None):
        super().__init__(message)
        self.path = path
        self.pid = pid


def holder_pid(path: str) -> int | None:
    """The PID written in the lock file ``path`` (None: no file, or no PID written yet)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _open_locked(path: str) -> int | None:
    """A file descriptor of ``path`` holding its lock, or None while another holder has it.

    Raises:
      OSError: the lock file cannot be created (read-only or missing folder, ...).
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            return fd
        os.close(fd)  # the previous holder removed this file before we locked it: take the new one


@contextlib.contextmanager
def hold(path: str, what: str, hint: str = "", *, wait_s: float = 0.0,
         poll_s: float = 0.2) -> Iterator[str]:
    """Holds the exclusive lock ``path`` for the body of a ``with`` statement.

    The lock file's folder is created when missing. The lock is released, and the file removed,
    when the body ends, however it ends.

    Args:
      path: the lock file (e.g. ``<run_dir>/.lock``).
      what: the locked thing as the user names it, for messages (e.g. ``--run_dir=runs/a``).
      hint: what the user can do about a busy lock (appended to the message).
      wait_s: seconds to wait for another holder to let go; 0 fails at once.
      poll_s: seconds between two tries while waiting.

    Yields:
      ``path``.

    Raises:
      LockBusy: (a ValueError) another holder still has the lock after ``wait_s`` seconds; the
        message names ``what``, the holder's PID and ``path``.
      ValueError: the lock file cannot be created (e.g. a read-only file system), naming ``path``.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = _open_locked(path)
        deadline = time.monotonic() + wait_s
        if fd is None and wait_s > 0:
            logger.info("%s is in use by process %s: waiting up to %.0f s for it to finish",
                        what, holder_pid(path) or "?", wait_s)
        while fd is None and time.monotonic() < deadline:
            time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.0)))
            fd = _open_locked(path)
    except OSError as e:
        raise ValueError(f"{what}: cannot create the lock file {path!r} "
                         f"({e.strerror or type(e).__name__})") from e
    if fd is None:
        pid = holder_pid(path)
        holder = f"process {pid}" if pid is not None else "another process"
        waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
        raise LockBusy(f"{what} is in use by {holder}{waited} (lock file {path})"
                       + (f"; {hint}" if hint else ""), path, pid)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):  # already gone with its folder: nothing to remove
            os.remove(path)
        os.close(fd)  # releases the lock
