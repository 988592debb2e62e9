"""One settings syntax for every command that has settings: a file, then `--set KEY=VALUE` overrides.

    python -m jepa_ac.plan --config planning.json --set cem.samples=64 mpc.max_steps=30
    python -m jepa_ac.train_predictor --config run.yaml --set lr=3e-4 predictor.depth=6

`--config FILE` is the command's settings file, YAML or JSON (planning commands: a planning.json,
also accepted as `--planning`; trainers: the run's config). `--set` takes dotted keys into it, each
checked against the settings dataclass (an unknown key is an error that names it and the known
ones); a value is read as a YAML scalar (`64`, `3e-4`, `true`, `null`, `{depth: 6}`), except for a
string field, which takes the text as written. The commands' specific flags are shortcuts that
`Set` turns into the same assignments (`--samples 64` is `--set cem.samples=64`, `--cem F=V` is
`--set cem.F=V`, a trainer's `--lr 3e-4` is `--set lr=3e-4`), applied in command-line order.

    parser.add_argument("--samples", action=Set, key="cem.samples")   # a shortcut for one key
    parser.add_argument("--cem", action=Set, prefix="cem.", nargs="+")  # for the keys under cem.
    values = apply_settings(values, args.overrides, TrainPredictorConfig)
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import yaml


class _SafeLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (plain YAML types only: a `!!python/...` tag is an error, never an object),
    reading `3e-4` as the number YAML 1.2 says it is (YAML 1.1: a string)."""


_SafeLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


def _read_yaml(text: str) -> Any:
    """YAML text as plain data; the loader is a `yaml.SafeLoader` (see `_SafeLoader`), so no file runs code."""
    return yaml.load(text, Loader=_SafeLoader)


def _scalar(text: str) -> Any:
    """A `--set` value: a YAML scalar or flow collection; the text itself if it is empty or not YAML."""
    try:
        return _read_yaml(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def load_settings(path: str | Path) -> dict[str, Any]:
    """A settings file (.json: JSON, else YAML) as a dict; a clear error if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"settings file not found: {path}")
    try:  # JSON read as JSON: PyYAML refuses some valid JSON (tab indents)
        data = json.loads(path.read_text()) if path.suffix == ".json" else _read_yaml(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


# -- the command line -----------------------------------------------------------------------------


class Set(argparse.Action):
    """`--set KEY=VALUE ...`, or a shortcut flag for it: `key=` one key (`--samples 64`; with `nargs=0`,
    `const` is the value), or `prefix=` keys under one section (`--cem samples=64`). `convert` maps a
    shortcut's text first (`--patience 0` -> null). Every one appends (KEY, VALUE text) to `args.overrides`."""

    def __init__(self, option_strings: list[str], dest: str, key: str | None = None, prefix: str = "",
                 convert: typing.Callable[[str], str] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("metavar", "KEY=VALUE" if key is None else "VALUE")
        super().__init__(option_strings, "overrides", default=[], **kwargs)
        self.key, self.prefix, self.convert = key, prefix, convert

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if self.key is not None:
            text = self.const if self.nargs == 0 else values
            items = [(self.key, self.convert(text) if self.convert else text)]
        else:
            items = []
            for item in values:
                key, sep, text = item.partition("=")
                if not sep or not key.strip():
                    parser.error(f"{option_string}: expected KEY=VALUE, got {item!r}")
                items.append((self.prefix + key.strip(), text))
        namespace.overrides = [*(getattr(namespace, "overrides", None) or []), *items]


def add_settings_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_help: str,
                      *aliases: str) -> None:
    """`--config FILE` (and `aliases`, e.g. --planning) and `--set KEY=VALUE ...`."""
    parser.add_argument("--config", *aliases, type=Path, metavar="FILE", help=config_help)
    parser.add_argument("--set", action=Set, nargs="+",
                        help="override settings by dotted key, values as YAML; later ones win (planning: "
                             "cem.samples=64 mpc.max_steps=30; training: lr=3e-4 predictor.depth=6)")


# -- applying -------------------------------------------------------------------------------------


def apply_settings(values: dict[str, Any], items: Iterable[tuple[str, Any]], schema: type | dict[str, type],
                   source: str = "command line") -> dict[str, Any]:
    """`values` (a nested dict; not changed) with each (dotted key, value) of `items` set in order.
    Every name is checked against `schema` (a dataclass, or names -> dataclasses): a field, then the
    fields of a dataclass-typed field; a dict-typed field takes any key. A str value is read as a YAML
    scalar unless its field is a `str`. Errors name `source` and the key."""
    out = copy.deepcopy(values)
    for key, value in items:
        names, node, cls = key.split("."), out, schema
        for i, name in enumerate(names):
            where, hint = ".".join(names[:i + 1]), None
            if cls is not None:
                fields = cls if isinstance(cls, dict) else _fields(cls)
                if name not in fields:
                    under = f" under {'.'.join(names[:i])}" if i else ""
                    raise ValueError(f"{source}: unknown key {where!r}; known keys{under}: {', '.join(fields)}")
                hint = fields[name]
            if i == len(names) - 1:
                node[name] = _typed(_scalar(value) if isinstance(value, str) and hint is not str else value,
                                    hint, where, source)
                if dataclasses.is_dataclass(hint) and not isinstance(node[name], dict):
                    raise ValueError(f"{source}: {where!r} is a group of keys: set {where}.KEY=VALUE")
            else:
                child = node.setdefault(name, {})
                if not isinstance(child, dict) or (hint is not None and not _takes_keys(hint)):
                    raise ValueError(f"{source}: {where!r} is one value, not a group of keys; set {where}=VALUE")
                node, cls = child, hint if dataclasses.is_dataclass(hint) else None
    return out


_PLAIN_TYPES = {bool: "true or false", int: "an integer", float: "a number", str: "a text"}


def _typed(value: Any, hint: Any, where: str, source: str) -> Any:
    """`value` checked against a plain field type (bool, int, float, str, or one of them or None):
    `--resume maybe` is an error, not a truthy string; 1 / 0 are accepted for a bool field."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1
    kind = args[0] if optional else hint
    if kind not in _PLAIN_TYPES or (optional and value is None):
        return value
    if kind is bool and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool),
          str: isinstance(value, str)}[kind]
    if not ok:
        expected = _PLAIN_TYPES[kind] + (" or null" if optional else "")
        raise ValueError(f"{source}: {where} must be {expected}, got {value!r}")
    return float(value) if kind is float else value


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _takes_keys(hint: Any) -> bool:
    """A dataclass or a mapping type (or a union holding one)."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) or hint is dict or origin in (dict, collections.abc.Mapping):
        return True
    return origin in (typing.Union, types.UnionType) and any(_takes_keys(arg) for arg in typing.get_args(hint))
