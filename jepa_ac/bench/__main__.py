"""Run a benchmark by name: `python -m jepa_ac.bench <name> [options]`.

    python -m jepa_ac.bench parity --out experiments/parity
    python -m jepa_ac.bench parity --help

Subcommands are the modules of `jepa_ac.bench` (e.g. `parity.py`); each defines
`main(argv) -> int`. Adding `latency.py` with a `main` adds `python -m jepa_ac.bench latency`.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

PACKAGE = Path(__file__).parent


def subcommands() -> dict[str, str]:
    """name -> one-line summary (the module docstring's first line), read without importing."""
    found = {}
    for info in pkgutil.iter_modules([str(PACKAGE)]):
        if info.name.startswith("_"):
            continue
        source = (PACKAGE / f"{info.name}.py").read_text() if (PACKAGE / f"{info.name}.py").exists() else ""
        doc = ast.get_docstring(ast.parse(source)) if source else None
        found[info.name] = (doc or "").strip().split("\n")[0]
    return dict(sorted(found.items()))


def usage() -> str:
    lines = [__doc__.strip().split("\n")[0], "", "usage: python -m jepa_ac.bench <name> [options]", "", "benchmarks:"]
    lines += [f"  {name:<12} {summary}" for name, summary in subcommands().items()]
    lines += ["", "`python -m jepa_ac.bench <name> --help` lists a benchmark's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    known = subcommands()
    if name not in known:
        print(f"error: unknown benchmark {name!r}; choose one of {sorted(known)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"jepa_ac.bench.{name}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
