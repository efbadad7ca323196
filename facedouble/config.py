"""The one config system: typed, validated dataclasses, loaded the same way by every subcommand.

A stage's settings are one dataclass (or a few, e.g. train's model shape and training options) whose
fields are the TOML keys. Every subcommand loads them in this order, later winning:

1. the dataclass defaults,
2. `--config FILE` (TOML; flat keys, or for several dataclasses also one table per section),
3. `--set KEY=VALUE` (repeatable; VALUE is read as TOML, else as a bare string),
4. the stage's own flags (`--crf 20`), which are the same fields under their flag names.

Unknown or retired keys, wrong types and impossible values end in one line naming the key (UsageError,
exit code 2). `facedouble config show STAGE [--config FILE] [flags]` prints the effective settings as
TOML that `--config` reads back. `--help` shows each setting flag's default, taken from the dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from facedouble.errors import UsageError

T = TypeVar("T")

# A dataclass may map retired key names to their new names: `RENAMED_KEYS: ClassVar[dict[str, str]]`.
RENAMED_ATTR = "RENAMED_KEYS"


def _coerce(name: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(name, args[0], value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):  # a table is expected: a crafted file must not pass a string on
            raise UsageError(f"setting '{name}' must be a table, got {value!r:.40}")
        return from_dict(tp, value)
    if tp is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise UsageError(f"setting '{name}' must be true or false, got {value!r}")
    if tp in (int, float, str):
        if isinstance(value, (dict, list, tuple)):
            raise UsageError(f"setting '{name}' must be {tp.__name__}, got {value!r:.40}")
        try:
            if tp is not str and isinstance(value, bool):  # TOML true is not a number
                raise ValueError
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
            raise UsageError(f"setting '{name}' must be {tp.__name__}, got {value!r:.40}") from None
    if origin in (list, tuple) and not isinstance(value, (list, tuple)):
        raise UsageError(f"setting '{name}' must be a list, got {value!r:.40}")
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(tp) or (Any,)
        return origin(_coerce(name, inner, v) for v in value) if inner is not Any else origin(value)
    return value


def field_names(cls: type) -> list[str]:
    """The TOML keys of config dataclass `cls`."""
    return [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]


def _check_keys(classes: Iterable[type], data: dict[str, Any], origin: dict[str, str] | None = None) -> None:
    """One-line UsageError for the first unknown or retired key, naming it and where it came from."""
    classes = list(classes)
    known = {n for c in classes for n in field_names(c)}
    renamed: dict[str, str] = {}
    for c in classes:
        renamed.update(getattr(c, RENAMED_ATTR, {}))
    for key in sorted(set(data) - known):
        where = f" (from {origin[key]})" if origin and key in origin else ""
        what = "/".join(c.__name__ for c in classes)
        if key in renamed:
            raise UsageError(f"setting '{key}'{where} was renamed '{renamed[key]}'")
        raise UsageError(f"unknown setting '{key}'{where} for {what}; known: {', '.join(sorted(known))}")


def from_dict(cls: type[T], data: dict[str, Any], origin: dict[str, str] | None = None) -> T:
    """Build dataclass `cls` from a dict, rejecting unknown keys and coercing types (no validation)."""
    _check_keys([cls], data, origin)
    missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data and f.init  # type: ignore[arg-type]
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise UsageError(f"{cls.__name__} lacks setting(s): {', '.join(missing)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def validated(obj: T) -> T:
    """`obj` after its own `validate()` (if it has one), which raises a one-line error for impossible values."""
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table in TOML file `path`; one-line UsageError when missing or malformed."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from None


def parse_sets(items: Iterable[str]) -> dict[str, Any]:
    """`--set KEY=VALUE` items as a dict; VALUE is parsed as TOML (1, 0.5, true, "x"), else kept as a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value  # bare string
    return out


def load_toml(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """`cls` from a TOML file (optional) plus `overrides` (None values ignored), validated."""
    data = read_toml(path) if path is not None else {}
    origin = dict.fromkeys(data, str(path))
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validated(from_dict(cls, data, origin))


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict view of a config dataclass (for JSON)."""
    return dataclasses.asdict(obj)


# -- the command line ---------------------------------------------------------------------------------

def add_config_args(parser: argparse.ArgumentParser, stage: str) -> None:
    """`--config FILE` and `--set KEY=VALUE`, the same in every subcommand."""
    parser.add_argument("--config", metavar="FILE",
                        help=f"TOML file with {stage} settings (flags override it; see `facedouble config show "
                        f"{stage}`)")
    parser.add_argument("--set", dest="set_values", action="append", default=[], metavar="KEY=VALUE",
                        help=f"any {stage} setting by its TOML key, e.g. --set KEY=VALUE (repeatable; flags "
                        "override it)")


def _gather(args: argparse.Namespace, classes: Iterable[type],
            sections: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, str]]:
    """Merged settings from --config, --set and flags, and where each key came from."""
    classes, sections = list(classes), set(sections)
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    path = getattr(args, "config", None)
    if path:
        for key, value in read_toml(path).items():
            if key in sections and isinstance(value, dict):  # [model] / [train] tables of `config show`
                data.update(value)
                origin.update(dict.fromkeys(value, str(path)))
            else:
                data[key] = value
                origin[key] = str(path)
    sets = parse_sets(getattr(args, "set_values", None) or [])
    data.update(sets)
    origin.update(dict.fromkeys(sets, "--set"))
    for name in (n for c in classes for n in field_names(c)):
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
            origin[name] = "--" + name.replace("_", "-")
    _check_keys(classes, data, origin)
    return data, origin


def settings_from_args(args: argparse.Namespace, classes: Iterable[type],
                       sections: Iterable[str] = ()) -> dict[str, Any]:
    """The settings given on this command line (TOML, --set, flags), checked against `classes`' keys."""
    return _gather(args, classes, sections)[0]


def config_from_args(cls: type[T], args: argparse.Namespace, **fixed: Any) -> T:
    """Config `cls` from this command line (defaults < --config < --set < flags < `fixed`), validated."""
    data, origin = _gather(args, [cls])
    data.update({k: v for k, v in fixed.items() if v is not None})
    return validated(from_dict(cls, data, origin))


_DEFAULT_RE = re.compile(r"\s*\(default:?\s[^()]*\)\s*$")


def _shown(value: Any) -> str:
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).replace("%", "%%")


def show_defaults(parser: argparse.ArgumentParser, *configs: Any) -> None:
    """Make every setting flag's --help end in its real default, read from the config instances `configs`.

    A help text that explains its default in prose ("auto (default) = ...") is left alone; a trailing
    "(default X)" is replaced, so the help cannot drift from the dataclass.
    """
    defaults = {k: v for c in configs for k, v in to_dict(c).items()}
    for action in parser._actions:  # noqa: SLF001 - argparse has no public accessor
        if action.dest not in defaults or action.help == argparse.SUPPRESS or not action.option_strings:
            continue
        text = _DEFAULT_RE.sub("", action.help or "")
        if "default" in text:
            continue
        action.help = (text + " " if text else "") + f"(default {_shown(defaults[action.dest])})"


def to_toml(sections: dict[str, Any]) -> str:
    """TOML text of config dataclasses: {"": cfg} gives flat keys, {"model": m, "train": t} one table each.

    Unset (None) values become comments, so the text reads back through `--config` unchanged."""
    out: list[str] = []
    for section, obj in sections.items():
        if section:
            out.append(f"\n[{section}]")
        for key, value in to_dict(obj).items():
            out.append(f"# {key} = (unset: auto)" if value is None else f"{key} = {_toml_value(value)}")
    return "\n".join(out).strip() + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


@dataclasses.dataclass(frozen=True)
class StageConfig:
    """What `facedouble config show STAGE` needs from a stage's cli module (its `CONFIG`)."""

    name: str
    add_flags: Callable[[argparse.ArgumentParser], None]  # the stage's setting flags, as in the stage command
    effective: Callable[[argparse.Namespace], dict[str, Any]]  # {section ("" = flat): config instance}
    help: str = ""


class _RetiredFlag(argparse.Action):
    """An old flag spelling: one line naming the new one, then exit code 2 (usage)."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", note: str = "", **kwargs: Any):
        kwargs.pop("help", None)
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs="?", help=argparse.SUPPRESS, **kwargs)
        self.new, self.note = new, note

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import sys

        note = f" ({self.note})" if self.note else ""
        print(f"{parser.prog}: error: {option_string} was renamed {self.new}{note}", file=sys.stderr)
        raise SystemExit(2)


def retire_flag(parser: argparse.ArgumentParser, old: str, new: str, note: str = "") -> None:
    """Make `old` (a renamed flag) fail with a one-line hint naming `new`; hidden from --help."""
    parser.add_argument(old, action=_RetiredFlag, new=new, note=note)


def add_workspace_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "") -> None:
    """`--workspace DIR`, the same default in every command ($FACEDOUBLE_WORKSPACE, else ./facedouble-workspace)."""
    parser.add_argument("--workspace", metavar="DIR",
                        help="workspace folder: consent records, certs/, studio state" + (f"; {what}" if what else "")
                        + " (default $FACEDOUBLE_WORKSPACE, else ./facedouble-workspace)")
