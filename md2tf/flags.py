"""Command-line flags generated from the config dataclasses; the only library module using absl.flags.

One rule: every field of a config dataclass (``md2tf.config``) is a flag of the same name, with the
field's type, default, help text and choices; ``setting(aliases=...)`` adds the paper's or earlier names
(``--disparity_smoothness`` sets ``LossConfig.smoothness_weight``). An entry point calls
:func:`run_command` with its config class, so it defines exactly its own flags, ``--help`` lists them
grouped by config section (exit status 0), and a bad setting ends the command with one line naming the
flag instead of a traceback. Library code never reads ``FLAGS``. Before TensorFlow is imported,
:func:`quiet_tensorflow` silences TF's own log lines (``--verbosity=1`` or ``MD2TF_TF_LOGS=1`` keep them)
and :func:`use_onednn` asks for TF's oneDNN CPU kernels (:func:`start_tensorflow` does both).

    def main(config: EvalConfig, flag_values) -> int: ...
    if __name__ == "__main__":
        md2tf_flags.run_command(main, EvalConfig, __doc__)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import sys
import textwrap
import types
import typing
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from absl import app, flags

from md2tf import config as cfg
from md2tf import native_stderr

FLAGS = flags.FLAGS
#: Exit status of a configuration, flag-parsing or input-data error.
USAGE_EXIT_STATUS = 2
#: Environment variable: ``1`` keeps TensorFlow's own log lines (C++ banner, saver, converter).
TF_LOGS_ENV = "MD2TF_TF_LOGS"
#: Environment variable read by TF at start-up: ``1`` = oneDNN CPU kernels (see `use_onednn`).
ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"
#: Python warnings raised inside TensorFlow about TensorFlow itself, never about the user's run: the
#: int8 converter calibrates with TF's deprecated interpreter (md2tf's own code uses LiteRT's).
NOISE_WARNINGS = (r"\s*Warning: tf\.lite\.Interpreter is deprecated",)
#: Installed TensorFlow packages whose absl log records below ERROR are TF's, not md2tf's.
_TF_SOURCE = re.compile(r"[/\\](site|dist)-packages[/\\](tensorflow|keras|tf_keras|tensorflow_datasets)"
                        r"[/\\]")


class _TensorFlowRecords(logging.Filter):
    """Drops absl log records below ERROR emitted from TensorFlow's own source files."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not _TF_SOURCE.search(record.pathname or "")


# --- fields -> flags --------------------------------------------------------------------------------


def _leaf_fields(config_cls: type, group: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """``(group, field, type)`` for every non-dataclass field, nested configs flattened in order."""
    hints = cfg.field_types(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from _leaf_fields(kind, f.name)
        else:
            yield group or config_cls.__name__, f, kind


def _base_type(kind: Any) -> tuple[Any, bool]:
    """``(type, optional)`` with ``X | None`` unwrapped."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return inner, True
    return kind, False


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def define_flags(config_cls: type, flag_values: flags.FlagValues = FLAGS,
                 module_name: str | None = None) -> None:
    """Defines one flag per field of ``config_cls`` (nested configs included) and its aliases.

    Two fields of the same name in one command would be one flag for two settings: an error.

    Raises:
      ValueError: a field name or alias is defined twice, or a field type has no flag type.
    """
    seen: dict[str, str] = {}
    for group, f, kind in _leaf_fields(config_cls):
        for name in (f.name, *f.metadata.get("aliases", ())):
            if name in seen:
                raise ValueError(f"flag --{name} would set both {seen[name]} and {group}.{f.name}")
            seen[name] = f"{group}.{f.name}"
        base, _ = _base_type(kind)
        default, help_text = _default(f), f.metadata.get("help") or f.name
        choices = f.metadata.get("choices")
        kw = {"flag_values": flag_values, "module_name": module_name or f"md2tf config: {group}"}
        if typing.get_origin(base) is tuple:
            flags.DEFINE_list(f.name, [str(v) for v in default], help_text, **kw)
        elif base is bool:
            flags.DEFINE_boolean(f.name, default, help_text, **kw)
        elif base is int:  # choices of an int field are checked by the config
            flags.DEFINE_integer(f.name, default, help_text, **kw)
        elif base is float:
            flags.DEFINE_float(f.name, default, help_text, **kw)
        elif base is str and choices is not None:
            flags.DEFINE_enum(f.name, default, list(choices), help_text, **kw)
        elif base is str:
            flags.DEFINE_string(f.name, default, help_text, **kw)
        else:
            raise ValueError(f"no flag type for {group}.{f.name}: {kind}")
        for alias in f.metadata.get("aliases", ()):
            flags.DEFINE_alias(alias, f.name, flag_values=flag_values, module_name=kw["module_name"])


def _convert(name: str, kind: Any, value: Any) -> Any:
    """A parsed flag value -> the field's type (list flags -> tuples of the element type)."""
    base, _ = _base_type(kind)
    if typing.get_origin(base) is tuple and value is not None:
        (element, *_rest) = typing.get_args(base)
        try:
            return tuple(element(v) for v in value)
        except ValueError as e:
            raise cfg.ConfigError(f"--{name} must be a comma-separated list of {element.__name__} values, "
                                  f"got {','.join(value)}") from e
    return value


def config_from_flags(config_cls: type, flag_values: flags.FlagValues = FLAGS) -> Any:
    """Builds a validated ``config_cls`` from parsed flags defined by :func:`define_flags`.

    Raises:
      md2tf.config.ConfigError: a value is invalid; the message names the flag.
    """
    hints = cfg.field_types(config_cls)
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = config_from_flags(kind, flag_values)
        else:
            kwargs[f.name] = _convert(f.name, kind, flag_values[f.name].value)
    return config_cls(**kwargs)


def flag_names(config_cls: type) -> list[str]:
    """Every flag name (fields and aliases) that :func:`define_flags` defines for ``config_cls``."""
    return [name for _, f, _ in _leaf_fields(config_cls)
            for name in (f.name, *f.metadata.get("aliases", ()))]


# --- quiet by default -----------------------------------------------------------------------------


def quiet_tensorflow(verbosity: int = 0, environ: dict[str, str] | None = None) -> bool:
    """Silences TensorFlow's log lines so a command prints only md2tf's own (call before TF starts).

    TF's C++ logs (the CPU-feature banner, SavedModel loader and converter chatter) need
    ``TF_CPP_MIN_LOG_LEVEL`` before ``import tensorflow``; an explicit value is kept. Its Python
    logger and the absl records TF's own files write (``Sharding callback duration``, signature
    renaming notes) keep errors only, and `NOISE_WARNINGS` are ignored. md2tf's own lines (progress, results, warnings) are unaffected.

    Args:
      verbosity: absl's ``--verbosity``; >= 1 (debug) keeps TF's logs.
      environ: the environment to read and update (default ``os.environ``).

    Returns:
      True when TF's logs were silenced, False when ``MD2TF_TF_LOGS=1`` or ``verbosity >= 1``.
    """
    environ = os.environ if environ is None else environ
    if environ.get(TF_LOGS_ENV, "0").strip() not in ("", "0") or verbosity >= 1:
        return False
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++: errors only
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _TensorFlowRecords) for f in absl_logger.filters):
        absl_logger.addFilter(_TensorFlowRecords())
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=UserWarning)
    return True


def use_onednn(environ: dict[str, str] | None = None, deterministic: bool = False,
               machine: str | None = None) -> bool:
    """Asks TF for its oneDNN CPU kernels on x86 unless ``TF_ENABLE_ONEDNN_OPTS`` is set (call before TF starts).

    TF 2.21 turns oneDNN on by default only on x86 CPUs with AVX512-VNNI/BF16, AVX-VNNI or AMX; on
    plain AVX2 parts (many AMD EPYC and laptop CPUs) its convolutions and matmuls fall back to Eigen,
    whose convolution filter gradients run at under half the speed. Measured on a 2-core AVX2 EPYC
    (``docs/benchmarks.md``): the M training step at 192x640 is 1.28-1.45x faster with oneDNN, a
    float32 matmul 1.9x. Other architectures keep TF's default (unmeasured there).

    Args:
      environ: the environment to read and update (default ``os.environ``). An explicit
        ``TF_ENABLE_ONEDNN_OPTS`` is kept (``0`` for an A/B against Eigen).
      deterministic: the run asks for bitwise reproducibility (``--deterministic``): TF's op
        determinism does not cover oneDNN's kernels, so Eigen's are asked for instead.
      machine: ``platform.machine()`` (tests).

    Returns:
      Whether oneDNN is requested for a TF started after this call (TF also needs a oneDNN build).
    """
    environ = os.environ if environ is None else environ
    machine = platform.machine() if machine is None else machine
    if deterministic:
        environ.setdefault(ONEDNN_ENV, "0")
    elif machine.lower() in ("x86_64", "amd64"):
        environ.setdefault(ONEDNN_ENV, "1")
    return environ.get(ONEDNN_ENV, "").strip().lower() in ("1", "true")


def start_tensorflow(verbosity: int = 0, deterministic: bool = False) -> None:
    """How every md2tf command and script starts TF: `use_onednn`, `quiet_tensorflow`, then, when it
    silenced TF, the import with its start-up lines held back (`native_stderr.STARTUP_NOISE`).

    Args:
      verbosity: absl's ``--verbosity`` (>= 1 keeps TF's log lines).
      deterministic: the run's ``--deterministic`` (see `use_onednn`).
    """
    use_onednn(deterministic=deterministic)
    if quiet_tensorflow(verbosity):
        native_stderr.start_tensorflow_quietly()


# --- --help and the entry-point runner --------------------------------------------------------------


def help_text(config_cls: type, doc: str, flag_values: flags.FlagValues = FLAGS) -> str:
    """The command's ``--help``: its docstring, then its flags grouped by config section."""
    lines = [textwrap.dedent(doc or "").strip(), ""]
    group_now = None
    for group, f, _ in _leaf_fields(config_cls):
        if group != group_now:
            lines += ["", f"{group} flags:"]
            group_now = group
        flag = flag_values[f.name]
        default = flag.default_as_str or "''"
        aliases = f.metadata.get("aliases", ())
        names = f"--{f.name}" + "".join(f", --{a}" for a in aliases)
        choices = f.metadata.get("choices")
        enum = isinstance(flag, flags.EnumFlag)  # absl already prefixes "<a|b>: "
        extra = f" One of: {', '.join(map(str, choices))}." if choices and not enum else ""
        body = textwrap.fill(f"{flag.help}{extra} (default: {default})", width=96,
                             initial_indent="      ", subsequent_indent="      ")
        lines += [f"  {names}", body]
    lines += ["", "  --flagfile: read flags from a file (one --name=value per line; the last wins)."]
    return "\n".join(lines)


class _HelpFlag(flags.BooleanFlag):
    """``--help`` / ``-?``: prints the command's grouped flags and exits with status 0."""

    def __init__(self, render: Callable[[], str]):
        super().__init__("help", False, "show this help", short_name="?", allow_hide_cpp=True)
        self._render = render

    def parse(self, argument: Any) -> None:
        if self._parse(argument):
            print(self._render())
            sys.exit(0)


def run_command(main: Callable[[Any, flags.FlagValues], int | None], config_cls: type, doc: str,
                argv: list[str] | None = None) -> None:
    """Defines ``config_cls``'s flags, parses the command line and calls ``main(config, FLAGS)``.

    A ``ValueError`` (``ConfigError`` included) or ``FileNotFoundError`` raised while building the
    config or by ``main`` is a problem with the user's settings or data: the command ends with
    ``error: <message>`` on stderr and exit status 2 (``MD2TF_TRACEBACK=1`` shows the traceback).
    Other exceptions are bugs and keep their traceback. ``main`` returns the exit status (None = 0).
    Flag parsing errors (an unknown flag or a bad value, on the command line or in a flagfile,
    which the message then names: `parse_error_message`) and stray arguments end the same way.
    TensorFlow starts first, with its own log lines silenced and oneDNN asked for (`start_tensorflow`,
    after ``--verbosity`` and ``--deterministic`` are parsed).
    """
    define_flags(config_cls, FLAGS)
    app.define_help_flags()
    for name in ("help", "?", "helpshort"):
        if name in FLAGS:
            delattr(FLAGS, name)
    flags.DEFINE_flag(_HelpFlag(lambda: help_text(config_cls, doc, FLAGS)), FLAGS)

    def _parse(args: list[str]) -> list[str]:
        try:
            return FLAGS(args)
        except flags.Error as e:  # absl would print "FATAL Flags parsing error" and exit 1
            print(f"error: {parse_error_message(e, args[1:])}", file=sys.stderr, flush=True)
            sys.exit(USAGE_EXIT_STATUS)

    def _main(args: list[str]) -> int:
        if len(args) > 1:
            print(f"error: {_unexpected(args[1:])}", file=sys.stderr, flush=True)
            return USAGE_EXIT_STATUS
        start_tensorflow(FLAGS["verbosity"].value if "verbosity" in FLAGS else 0,
                         deterministic="deterministic" in FLAGS and bool(FLAGS["deterministic"].value))
        return _invoke(main, config_cls, FLAGS)

    app.run(_main, argv=argv, flags_parser=_parse)


def call_command(main: Callable[[Any, flags.FlagValues], int | None], config_cls: type,
                 argv: list[str]) -> int:
    """Runs an entry point in-process (tests, scripts): fresh flag values, no ``sys.exit``.

    Args:
      main, config_cls: as for `run_command`.
      argv: the command-line arguments without the program name.

    Returns:
      The exit status `run_command` would end with.
    """
    values = flags.FlagValues()
    define_flags(config_cls, values)
    try:
        rest = values(["md2tf", *argv])
    except flags.Error as e:
        print(f"error: {parse_error_message(e, argv)}", file=sys.stderr, flush=True)
        return USAGE_EXIT_STATUS
    if len(rest) > 1:
        print(f"error: {_unexpected(rest[1:])}", file=sys.stderr, flush=True)
        return USAGE_EXIT_STATUS
    return _invoke(main, config_cls, values)


def _unexpected(args: list[str]) -> str:
    return f"unexpected arguments: {' '.join(args)} (flags are written --name=value)"


def parse_error_message(error: flags.Error, args: list[str]) -> str:
    """One line for a flag parsing error, naming the flagfile that holds the offending flag.

    absl expands ``--flagfile`` before parsing, so its errors (``Unknown command line flag 'x'``,
    ``flag --x=y: invalid literal ...``) do not say which file the flag came from.

    Args:
      error: what ``FlagValues.__call__`` raised.
      args: the command-line arguments without the program name.

    Returns:
      ``<flagfile>: unknown flag --x`` (``unknown flag --x`` when given on the command line), or
      absl's message with the flagfile in front.
    """
    text = str(error)
    if isinstance(error, flags.UnrecognizedFlagError):
        pattern = re.compile(rf"--?(no)?{re.escape(error.flagname)}(=.*)?")
        suggestions = _SUGGESTION.search(text)
        message = f"unknown flag --{error.flagname}" + (
            f" (did you mean {', '.join('--' + s for s in suggestions.group(1).split(', '))}?)"
            if suggestions else "")
        origin = _flagfile_of(args, pattern.fullmatch)
    elif isinstance(error, flags.CantOpenFlagFileError):
        return "--flagfile: cannot open " + one_line(error).removeprefix(
            "ERROR:: Unable to open flagfile: ")
    else:  # absl: "flag --name=value: why"
        message = one_line(error)
        origin = _flagfile_of(args, lambda arg: text.startswith(f"flag --{arg.lstrip('-')}: "))
    return f"{origin}: {message}" if origin else message


_SUGGESTION = re.compile(r"Did you mean: (.*?) \?$")


def _flagfile_of(args: list[str], matches: Callable[[str], object]) -> str | None:
    """The flagfile of the first argument that ``matches``; None = on the command line or not found."""
    return next((origin for origin, arg in _expanded(args) if matches(arg)), None)


def _expanded(args: list[str], origin: str | None = None,
              depth: int = 0) -> Iterator[tuple[str | None, str]]:
    """``(flagfile or None, argument)`` for every argument, flagfiles expanded in place as absl does."""
    rest = iter(args)
    for arg in rest:
        if arg in ("--flagfile", "-flagfile"):
            path = next(rest, "")
        elif arg.startswith(("--flagfile=", "-flagfile=")):
            path = arg.split("=", 1)[1]
        else:
            yield origin, arg
            continue
        if not path or depth > 20:  # absl skips circular includes; this bounds the walk likewise
            continue
        try:
            with open(os.path.expanduser(path)) as f:
                lines = [line.strip() for line in f
                         if line.strip() and not line.startswith(("#", "//"))]
        except OSError:
            continue
        yield from _expanded(lines, path, depth + 1)


def _invoke(main, config_cls: type, flag_values: flags.FlagValues) -> int:
    """Builds the config and calls ``main``; user errors become one line and exit status 2."""
    try:
        config = config_from_flags(config_cls, flag_values)
        return main(config, flag_values) or 0
    except (ValueError, FileNotFoundError) as e:  # ConfigError is a ValueError
        if os.environ.get("MD2TF_TRACEBACK"):
            raise
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        return USAGE_EXIT_STATUS


def one_line(error: BaseException) -> str:
    """The error's message with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(error).split()) or type(error).__name__
