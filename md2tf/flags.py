"""Command-line flags generated from the config dataclasses; the only library module using absl.flags.

One rule (`md2tf.config.flag_name`): every field of a config dataclass (``md2tf.config``) is a flag,
with the field's type, default, help text and choices, named after the field; a config nested below
the command's sub-configs adds the field names that nest it as a prefix (``--height`` for
``ExperimentConfig.data.height``, ``--synthetic_drives`` for ``ExperimentConfig.data.synthetic.drives``,
``--drives`` for the generator's ``GenerateConfig.world.drives``). ``setting(aliases=...)`` adds the
paper's or earlier names by the same rule (``--disparity_smoothness`` sets
``LossConfig.smoothness_weight``), ``setting(unprefixed_aliases=...)`` names taken as written. An
entry point calls :func:`run_command` with its config class, so it defines exactly its own flags,
``--help`` lists them grouped by config section (exit status 0), and a bad setting ends the command
with one line naming the flag as that command spells it instead of a traceback. Library code never
reads ``FLAGS``. After parsing, `run_command` starts TensorFlow with `md2tf.tf_start.start_tensorflow`
(quiet, oneDNN kernels).

    def main(config: EvalConfig, flag_values) -> int: ...
    if __name__ == "__main__":
        md2tf_flags.run_command(main, EvalConfig, __doc__)
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from absl import app, flags

from md2tf import config as cfg
from md2tf.tf_start import start_tensorflow

FLAGS = flags.FLAGS
#: Exit status of a configuration, flag-parsing or input-data error.
USAGE_EXIT_STATUS = 2
# --- fields -> flags --------------------------------------------------------------------------------


class Leaf(NamedTuple):
    """One non-config field of a command's config, and its flags.

    Attributes:
      path: the field names leading from the command's config to the field's config (`cfg.flag_name`).
      field: the dataclass field.
      kind: its resolved type.
      flag: the flag's name (`cfg.flag_name`).
      aliases: other flag names setting it: its aliases named by the same rule, then its unprefixed
        aliases.
    """

    path: tuple[str, ...]
    field: dataclasses.Field
    kind: Any
    flag: str
    aliases: tuple[str, ...]

    @property
    def group(self) -> str:
        """The ``--help`` section: the dotted path of the field's config (``data.synthetic``)."""
        return ".".join(self.path)


def _leaf_fields(config_cls: type, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every non-config field of ``config_cls``, nested configs flattened in declaration order."""
    hints = cfg.field_types(config_cls)
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            yield from _leaf_fields(kind, (*path, f.name))
        else:
            aliases = tuple(cfg.flag_name(path, a) for a in f.metadata.get("aliases", ()))
            yield Leaf(path, f, kind, cfg.flag_name(path, f.name),
                       aliases + tuple(f.metadata.get("unprefixed_aliases", ())))


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

    Flags are named by `cfg.flag_name`: ``--height`` for ``ExperimentConfig.data.height``,
    ``--synthetic_drives`` for ``ExperimentConfig.data.synthetic.drives``. Two fields with one
    flag name in one command would be one flag for two settings: an error.

    Raises:
      ValueError: a flag name or alias is defined twice, or a field type has no flag type.
    """
    seen: dict[str, str] = {}
    for leaf in _leaf_fields(config_cls):
        f, setting_name = leaf.field, ".".join((*leaf.path, leaf.field.name))
        for name in (leaf.flag, *leaf.aliases):
            if name in seen:
                raise ValueError(f"flag --{name} would set both {seen[name]} and {setting_name}")
            seen[name] = setting_name
        base, _ = _base_type(leaf.kind)
        default, help_text = _default(f), f.metadata.get("help") or f.name
        choices = f.metadata.get("choices")
        kw = {"flag_values": flag_values,
              "module_name": module_name or f"md2tf config: {leaf.group or config_cls.__name__}"}
        if typing.get_origin(base) is tuple:
            flags.DEFINE_list(leaf.flag, [str(v) for v in default], help_text, **kw)
        elif base is bool:
            flags.DEFINE_boolean(leaf.flag, default, help_text, **kw)
        elif base is int:  # choices of an int field are checked by the config
            flags.DEFINE_integer(leaf.flag, default, help_text, **kw)
        elif base is float:
            flags.DEFINE_float(leaf.flag, default, help_text, **kw)
        elif base is str and choices is not None:
            flags.DEFINE_enum(leaf.flag, default, list(choices), help_text, **kw)
        elif base is str:
            flags.DEFINE_string(leaf.flag, default, help_text, **kw)
        else:
            raise ValueError(f"no flag type for {setting_name}: {leaf.kind}")
        for alias in leaf.aliases:
            flags.DEFINE_alias(alias, leaf.flag, flag_values=flag_values, module_name=kw["module_name"])


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


def config_from_flags(config_cls: type, flag_values: flags.FlagValues = FLAGS,
                      path: tuple[str, ...] = ()) -> Any:
    """Builds a validated ``config_cls`` from parsed flags defined by :func:`define_flags`.

    Args:
      config_cls: the command's config class.
      flag_values: the parsed flags.
      path: where ``config_cls`` is nested in the command's config (`cfg.flag_name`; recursion).

    Raises:
      md2tf.config.ConfigError: a value is invalid; the message names the flag as the command
        spells it (`_renamed`).
    """
    hints = cfg.field_types(config_cls)
    kwargs = {}
    for f in dataclasses.fields(config_cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            kwargs[f.name] = config_from_flags(kind, flag_values, (*path, f.name))
        else:
            name = cfg.flag_name(path, f.name)
            kwargs[f.name] = _convert(name, kind, flag_values[name].value)
    try:
        return config_cls(**kwargs)
    except cfg.ConfigError as e:
        renamed = _renamed(str(e), config_cls, path)
        if renamed == str(e):
            raise
        raise cfg.ConfigError(renamed) from e


def _renamed(message: str, config_cls: type, path: tuple[str, ...]) -> str:
    """``message`` with the flags of ``config_cls``'s own fields named as this command names them.

    A config's checks name its fields' flags by the field names (``--drives``), their names where
    the config is a command's config or a direct sub-config; nested deeper, the flags carry a
    prefix (`cfg.flag_name`: ``--synthetic_drives``), and so does the message.
    """
    hints = cfg.field_types(config_cls)
    names = [name for f in dataclasses.fields(config_cls) if not dataclasses.is_dataclass(hints[f.name])
             for name in (f.name, *f.metadata.get("aliases", ()))]
    if not path[1:] or not names:
        return message
    pattern = re.compile(rf"--(no)?({'|'.join(map(re.escape, names))})\b")
    return pattern.sub(lambda m: f"--{m.group(1) or ''}{cfg.flag_name(path, m.group(2))}", message)


def flag_names(config_cls: type) -> list[str]:
    """Every flag name (fields and aliases) that :func:`define_flags` defines for ``config_cls``."""
    return [name for leaf in _leaf_fields(config_cls) for name in (leaf.flag, *leaf.aliases)]


# --- --help and the entry-point runner --------------------------------------------------------------


def help_text(config_cls: type, doc: str, flag_values: flags.FlagValues = FLAGS) -> str:
    """The command's ``--help``: its docstring, then its flags grouped by config section."""
    lines = [textwrap.dedent(doc or "").strip(), ""]
    group_now = None
    for leaf in _leaf_fields(config_cls):
        group = leaf.group or config_cls.__name__
        if group != group_now:
            lines += ["", f"{group} flags:"]
            group_now = group
        flag = flag_values[leaf.flag]
        default = flag.default_as_str or "''"
        names = ", ".join(f"--{n}" for n in (leaf.flag, *leaf.aliases))
        choices = leaf.field.metadata.get("choices")
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
