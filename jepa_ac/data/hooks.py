"""User hooks named "module:function" on the command line or in spec files."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable


def load_hook(spec: str, what: str) -> Callable[..., Any]:
    """The callable named by "module:attr" (attr may be dotted), imported; errors start with `what`
    (the flag or field that named it, e.g. "--state")."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what} {spec!r}: expected module:function, e.g. my_hooks:{what.lstrip('-')}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what} {spec!r}: cannot import {module_name!r} ({err})") from None
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{what} {spec!r}: {attr} is not callable")
    return target


def takes_env(fn: Callable[..., Any]) -> bool:
    """Whether a hook takes two positional arguments (obs, env) rather than one (obs)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
