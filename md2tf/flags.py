"""Every command-line flag of md2tf, defined once. The only library module that imports absl.flags.

Entry points call one ``define_*_flags()`` under ``if __name__ == "__main__"`` and convert the parsed
flags into frozen configs (``md2tf.config``) right away; library code never reads ``FLAGS``.
"""

from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS


def _define_once(define, name: str, *args, **kwargs) -> None:
    """Defines a flag unless an earlier ``define_*_flags`` call already did (shared flags)."""
    if name not in FLAGS:
        define(name, *args, **kwargs)


# --- training (issue 5) -------------------------------------------------------------------------


# --- evaluation (issue 6) -----------------------------------------------------------------------


# --- export / predict (issue 7) -----------------------------------------------------------------
