"""Benchmarks, one subcommand per module in this package (`python -m jepa_ac.bench <name>`).

A subcommand is a module `jepa_ac/bench/<name>.py` whose docstring's first line is its summary
and which defines `main(argv: list[str]) -> int`; `__main__` finds it by name.
"""
