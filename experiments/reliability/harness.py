"""Adversarial cases run as a user would run them: each in a fresh process, classified by outcome.

Every `cases_*.py` beside this file defines `CASES: list[Case]`. A case prepares its crafted
inputs in a folder of its own, runs one command there (a CLI, or a short Python script that calls
the API or talks to a server) and says what a correct package does: refuse with a clear error
(`expect="error"`) or go on with a safe result (`expect="ok"`, checked by `verify`).

Outcomes (one per case):
  clean error     non-zero exit, a message, no traceback           (good when expect="error")
  handled         exit 0 and `verify` found nothing wrong           (good when expect="ok")
  traceback       a Python traceback on stderr
  crash           killed by a signal
  hang            still running at the case's timeout
  security        a crafted file ran code (it left `PWNED` in the case folder) or verify said so
  silent wrong    exit 0 where an error was due, or a result that verify rejects

Usage:
    python experiments/reliability/harness.py                 # every case, table to results.md
    python experiments/reliability/harness.py --only server   # cases whose file or name has 'server'
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Literal

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SENTINEL = "PWNED"  # a crafted payload that runs writes this file into its case folder
OUTCOMES = ("clean error", "handled", "traceback", "crash", "hang", "security", "silent wrong")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    category: str  # the class: code execution, safety limits, non-finite, config, cli, server, resume/data
    argv: list[str]  # run in the case folder; "{python}" -> this interpreter, "{dir}" -> the case folder
    prepare: Callable[[Path], None] | None = None  # writes the crafted inputs into the case folder
    expect: Literal["error", "ok"] = "error"
    # Called after an exit 0 (and after any exit for security checks): a problem ("security: ..." or
    # any other text, a silent wrong result) or None.
    verify: Callable[[Path, subprocess.CompletedProcess], str | None] | None = None
    timeout: float = 180.0


@dataclasses.dataclass
class Result:
    name: str
    category: str
    outcome: str
    seconds: float
    detail: str


def classify(case: Case, folder: Path, proc: subprocess.CompletedProcess | None, seconds: float) -> Result:
    def result(outcome: str, detail: str) -> Result:
        return Result(case.name, case.category, outcome, round(seconds, 2), detail.strip()[-400:])

    if (folder / SENTINEL).exists():
        return result("security", "a crafted file ran code: " + (folder / SENTINEL).read_text()[:200])
    if proc is None:
        return result("hang", f"still running after {case.timeout:.0f} s")
    stderr = proc.stderr or ""
    problem = case.verify(folder, proc) if case.verify is not None else None
    if problem and problem.startswith("security"):
        return result("security", problem)
    if proc.returncode < 0:
        return result("crash", f"signal {-proc.returncode}")
    if "Traceback (most recent call last)" in stderr:
        return result("traceback", stderr.strip().splitlines()[-1] if stderr.strip() else "")
    if proc.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else "(no message)"
        if case.expect == "ok":
            return result("silent wrong", f"refused a case that should go on: {last}")
        return result("clean error" if stderr.strip() else "silent wrong", last)
    if case.expect == "error":
        return result("silent wrong", "exit 0 where an error was due: " + (proc.stdout or "")[-200:])
    if problem:
        return result("silent wrong", problem)
    return result("handled", (proc.stdout or "").strip().splitlines()[-1] if (proc.stdout or "").strip() else "")


def run_case(case: Case, root: Path) -> Result:
    folder = root / case.name
    folder.mkdir(parents=True)
    if case.prepare is not None:
        case.prepare(folder)
    argv = [a.replace("{python}", sys.executable).replace("{dir}", str(folder)) for a in case.argv]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=case.timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        proc = None
    return classify(case, folder, proc, time.perf_counter() - start)


def load_cases(only: str | None) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(HERE.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        cases += [c for c in module.CASES if only is None or only in path.stem or only in c.name]
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise SystemExit(f"error: duplicate case names: {sorted({n for n in names if names.count(n) > 1})}")
    return cases


def table(results: list[Result]) -> str:
    cats = sorted({r.category for r in results})
    head = "| class | cases | " + " | ".join(OUTCOMES) + " |\n|---|---|" + "---|" * len(OUTCOMES) + "\n"
    rows = []
    for cat in cats + ["all"]:
        sel = [r for r in results if cat in ("all", r.category)]
        counts = [sum(r.outcome == o for r in sel) for o in OUTCOMES]
        label = f"**{cat}**" if cat == "all" else cat
        rows.append(f"| {label} | {len(sel)} | " + " | ".join(str(c) for c in counts) + " |")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="run the cases whose file or name contains this")
    p.add_argument("--out", default=str(HERE), help="folder for results.json and results.md")
    args = p.parse_args(argv)
    cases = load_cases(args.only)
    results = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        for i, case in enumerate(cases):
            r = run_case(case, Path(tmp))
            results.append(r)
            print(f"[{i + 1}/{len(cases)}] {r.outcome:12s} {case.category:16s} {case.name}: {r.detail[-120:]}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"cases": [dataclasses.asdict(r) for r in results]}, indent=2) + "\n")
    lines = [f"| {r.category} | {r.name} | {r.outcome} | {r.detail.splitlines()[-1][:140] if r.detail else ''} |"
             for r in results]
    md = ("# Adversarial cases\n\n" + table(results) + "\n| class | case | outcome | last line |\n|---|---|---|---|\n"
          + "\n".join(l.replace("\n", " ") for l in lines) + "\n")
    (out / "results.md").write_text(md)
    print(table(results))


if __name__ == "__main__":
    main()
