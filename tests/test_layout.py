"""The package layout follows the flow: commands at the root, library code in sub-packages, and no
library module imports a command."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "jepa_ac"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _commands() -> set[str]:
    """`python -m jepa_ac.<name>` modules: the root's modules, the bench package, every __main__."""
    roots = {_module_name(p) for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    bench = {_module_name(p) for p in (PACKAGE / "bench").glob("*.py")}
    mains = {_module_name(p) for p in PACKAGE.rglob("__main__.py")}
    return roots | bench | mains


def _imports(path: Path) -> set[str]:
    """Every jepa_ac module `path` imports (a `from pkg import name` counts pkg.name when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("jepa_ac")}


def test_the_package_root_holds_only_commands():
    library_at_root = [p.name for p in PACKAGE.glob("*.py")
                       if p.name != "__init__.py" and 'if __name__ == "__main__":' not in p.read_text()]
    assert library_at_root == [], f"library modules belong in a sub-package: {library_at_root}"


def test_no_library_module_imports_a_command():
    commands = _commands()
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        if name in commands:
            continue
        offenders += [f"{name} imports {target}" for target in sorted(_imports(path) & commands)]
    assert offenders == [], "\n".join(offenders)


def test_the_guard_sees_an_import_of_a_command(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from jepa_ac.evaluate import evaluate\n    from jepa_ac import collect\n")
    assert {"jepa_ac.evaluate", "jepa_ac.collect"} <= _imports(probe) & _commands()
