"""Where an export is written: one folder per model, written by one export at a time, atomically.

An export never mixes two models and never leaves a half-written folder: everything is built in a
staging folder beside ``out_dir`` (``.<name>.export-<pid>-*``, same file system) and moved into
place by one rename at the end. A non-empty ``out_dir`` is refused unless ``overwrite`` is set, which
replaces the whole folder. On an error the staging folder is removed and ``out_dir`` is untouched; a
staging folder left by a killed export is removed by the next export to the same ``out_dir``.

One export writes ``out_dir`` at a time: an export holds the lock ``.<name>.lock`` beside it
(`md2tf.locks`) from its checks to its final rename, and a second one fails at once naming the
holder's PID. The final rename checks again: without ``overwrite`` it never replaces an ``out_dir``
that was filled meanwhile (by a writer that does not lock), and the export fails instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile

from md2tf import locks

_STAGING_TAG = ".export-"


def check_out_dir(out_dir: str, overwrite: bool = False) -> None:
    """Refuses an ``out_dir`` that would mix two models.

    Raises:
      ValueError: ``out_dir`` is a file, a non-empty folder and ``overwrite`` is False, or a folder
        ``overwrite`` cannot replace (not writable); nothing is changed then.
    """
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out: {out_dir!r} exists and is not a folder")
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(f"--out: {out_dir!r} is not empty ({len(os.listdir(out_dir))} entries); "
                         "pass --overwrite to replace the whole folder, or choose a new one")
    if os.path.isdir(out_dir) and overwrite and not os.access(out_dir, os.W_OK):
        raise ValueError(f"--out: {out_dir!r} is not writable, so --overwrite cannot replace it")


def out_dir_lock(out_dir: str) -> str:
    """The lock file of ``out_dir``: ``<parent>/.<name>.lock`` (``out_dir`` need not exist yet)."""
    parent, name = os.path.split(os.path.abspath(out_dir))
    return os.path.join(parent, f".{name}.lock")


def hold_out_dir(out_dir: str) -> contextlib.AbstractContextManager[str]:
    """Holds `out_dir_lock` (`md2tf.locks.hold`): one export writes ``out_dir`` at a time.

    Raises:
      ValueError: another export holds it (naming its PID), or the folder beside ``out_dir`` is
        not writable (naming it).
    """
    return locks.hold(out_dir_lock(out_dir), f"--out={out_dir}",
                      "another export writes there: wait for it to end, or choose another --out")


class Staging:
    """Staging folder ``<parent>/.<name>.export-<pid>-XXXX`` with ``out/`` (the export) and ``work/``.

    `commit` moves ``out/`` to ``out_dir``; leaving the context removes the staging folder whatever
    happened.
    """

    def __init__(self, out_dir: str):
        self.out_dir = os.path.abspath(out_dir)
        self.parent, self.name = os.path.split(self.out_dir)
        self.root = ""

    def __enter__(self) -> Staging:
        os.makedirs(self.parent, exist_ok=True)
        self.remove_stale()
        self.root = tempfile.mkdtemp(prefix=f".{self.name}{_STAGING_TAG}{os.getpid()}-", dir=self.parent)
        self.out = os.path.join(self.root, "out")
        self.work = os.path.join(self.root, "work")
        os.makedirs(self.out)
        os.makedirs(self.work)
        return self

    def remove_stale(self) -> list[str]:
        """Removes the staging folders of ``out_dir`` that killed exports left.

        The caller holds `hold_out_dir`, so no other export of ``out_dir`` runs: every such folder
        is stale (even when its PID now belongs to another process).
        """
        prefix = f".{self.name}{_STAGING_TAG}"  # then <pid>-<mkdtemp's suffix>, no other folder's
        removed = sorted(e for e in os.listdir(self.parent) if e.startswith(prefix)
                         and re.fullmatch(r"\d+-[a-z0-9_]+", e[len(prefix):]))
        for entry in removed:
            shutil.rmtree(os.path.join(self.parent, entry), ignore_errors=True)
        return removed

    def commit(self, overwrite: bool) -> None:
        """Moves ``out/`` to ``out_dir`` by one rename.

        With ``overwrite`` an existing ``out_dir`` first goes into the staging folder. Without it,
        rename(2) itself refuses to replace a non-empty folder or a file, so an ``out_dir`` filled
        since the start check is never replaced, however late that happened.

        Raises:
          ValueError: ``out_dir`` is no longer absent or empty and ``overwrite`` is False, or
            ``out_dir`` or its folder is not writable; ``out_dir`` is untouched then.
        """
        try:
            if overwrite and os.path.lexists(self.out_dir):
                os.rename(self.out_dir, os.path.join(self.root, "replaced"))
            os.rename(self.out, self.out_dir)
        except OSError as e:
            if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise ValueError(f"--out: {self.out_dir!r} was filled by another writer during "
                                 "this export and is kept as it is; pass --overwrite to replace "
                                 "it, or choose a new folder") from e
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EBUSY, errno.EXDEV):
                raise ValueError(f"--out: cannot write {self.out_dir!r} ({e.strerror})") from e
            raise

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
