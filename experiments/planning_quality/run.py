"""Planning-quality variants (warm start, iCEM, adaptive samples, surprise gate), each on/off on the same seeds.

    .venv/bin/python experiments/planning_quality/run.py --env reach --episodes 30 --threads 1 \
        --out experiments/planning_quality
    .venv/bin/python experiments/planning_quality/run.py --variants baseline,warm_start --episodes 5 --out /tmp/pq

Every variant is the checkpoint's planning defaults (planning.json) with a few changes, run closed-loop
by `jepa_ac.evaluate` on the same seeded episodes:

- `baseline`: the defaults (upstream CEM);
- `warm_start`: start each MPC step's CEM from the previous plan shifted by one step;
- `elite_reuse`: iCEM's elite carry-over inside a step (30% of the top-k replace fresh samples);
- `icem`: warm start + elite reuse + shifted elites carried across steps + coloured noise (beta 2;
  white at horizon 1);
- `adaptive_samples`: each iteration samples in proportion to the spread left (at least a quarter);
- `surprise_gate`: skip re-planning while the observed latent is as close to the predicted one as the
  `--gate-quantile` of the baseline's per-step surprises (or `--surprise-gate`), at most 2 steps in a row;
- `hold`: send the zero action when the model predicts holding still ends at least as close to the
  goal as the plan (two extra imagined rollouts per step).

Warm start, elite reuse, the surprise gate and hold are `CEMConfig` options of the library. Coloured
noise and adaptive sample counts measured no gain and did not ship: they live here, as the samplers
`ColouredNoise` and `AdaptiveSamples`, plugged into the planner through its one extension point
(`jepa_ac.planning.Sampler`, `CEMPlanner(..., sampler=)`). A row names them by the `CEMConfig` fields
they once were (`noise_beta`, `min_samples`), so the rows recorded before read the same.

Warm start, elite reuse, iCEM and hold keep the compute (samples x iterations per step); adaptive
samples and the gate trade it for latency, which the table shows as samples evaluated per step and
planning seconds per step. Writes `planning_quality.json`, `planning_quality.md` and
`planning_quality.png` under --out. A run whose env, episodes, seed, checkpoint and base CEM match the
file already there replaces its variants' rows and keeps the others (and the calibrated gate).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.bench.latency import machine_info
from jepa_ac.files import write_atomic, write_json_atomic
from jepa_ac.cli.args import add_model_args, add_planning_args, load_model_from_args, planning_from_args
from jepa_ac.model.array_ops import ArrayOps
from jepa_ac.planning import ActionSpec, CEMConfig, CEMPlanner, Sampler


# -- the samplers that did not ship ------------------------------------------------------------------
class ColouredNoise(Sampler):
    """iCEM's coloured noise: the run's white noise filtered to a 1/f^beta power spectrum along the
    horizon (temporally correlated action sequences; beta 0: white, 2: brown); white at horizon 1."""

    def __init__(self, beta: float = 2.0) -> None:
        if not 0.0 <= beta <= 4.0:
            raise ValueError(f"ColouredNoise.beta must be in [0, 4], got {beta!r}")
        self.beta = beta

    def noise(self, config: CEMConfig, spec: ActionSpec, rng: np.random.Generator) -> np.ndarray:
        return coloured_noise(super().noise(config, spec, rng), self.beta, axis=2)  # [I, S, Hs, F]

    def __repr__(self) -> str:
        return f"ColouredNoise(beta={self.beta})"


def coloured_noise(white: np.ndarray, beta: float, axis: int) -> np.ndarray:
    """Filter white noise to a 1/f^beta power spectrum along `axis`, rescaled to unit variance.

    The amplitude of frequency f is scaled by f^(-beta/2), the zero frequency as the lowest non-zero
    one. A deterministic transform, so identical white noise gives identical coloured noise on every
    backend.
    """
    n = white.shape[axis]
    if beta == 0.0 or n < 2:
        return white
    freqs = np.fft.rfftfreq(n)  # [n // 2 + 1]
    freqs[0] = freqs[1]
    scale = freqs ** (-beta / 2.0)
    shape = [1] * white.ndim
    shape[axis] = scale.size
    spectrum = np.fft.rfft(white.astype(np.float64), axis=axis) * scale.reshape(shape)
    coloured = np.fft.irfft(spectrum, n=n, axis=axis)
    # each frequency bin's variance is known, so normalise by the expected (not sampled) variance
    weights = np.full(scale.size, 2.0)
    weights[0] = 1.0
    if n % 2 == 0:
        weights[-1] = 1.0
    expected_var = float(np.sum(weights * scale**2)) / n
    return (coloured / np.sqrt(expected_var)).astype(np.float32)


class AdaptiveSamples(Sampler):
    """Adaptive sample counts: iteration i > 0 proposes only `S * mean(std_i) / mean(std_0)` of its S
    samples (at least `min_samples`, which must be >= top-k): fewer as the distribution narrows.
    Syncs the std with the host once per iteration."""

    def __init__(self, min_samples: int) -> None:
        if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 2:
            raise ValueError(f"AdaptiveSamples.min_samples must be an int >= 2, got {min_samples!r}")
        self.min_samples = min_samples
        self._spread0: Any = None  # mean of the first iteration's std, this run's reference

    def propose(self, i: int, noise: Any, mean: Any, std: Any, ops: ArrayOps) -> Any:
        spread = ops.to_numpy(std).mean()
        if i == 0:
            self._spread0 = spread
            return super().propose(i, noise, mean, std, ops)
        n = int(np.clip(np.ceil(len(noise) * spread / self._spread0), self.min_samples, len(noise)))
        return super().propose(i, noise[:n], mean, std, ops)

    def __repr__(self) -> str:
        return f"AdaptiveSamples(min_samples={self.min_samples})"


# the variants' changes: CEMConfig fields, and the former CEMConfig fields that are samplers now
SAMPLERS = {"noise_beta": ColouredNoise, "min_samples": AdaptiveSamples}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "warm_start": {"warm_start": True},
    "elite_reuse": {"keep_elites": 0.3},
    "icem": {"warm_start": True, "keep_elites": 0.3, "noise_beta": 2.0},
    "adaptive_samples": {"min_samples": "quarter"},  # resolved against the defaults' sample count
    "surprise_gate": {"surprise_gate": "calibrated"},  # resolved from the baseline's surprises
    "hold": {"hold_unless_better": True},
}


FORMAT = "jepa_ac.bench.planning_quality/1"


def load_previous(path: Path, setup: dict[str, Any]) -> dict[str, Any] | None:
    """The results already at `path` when they were run with the same setup (else None: start afresh)."""
    if not path.is_file():
        return None
    previous = json.loads(path.read_text())
    if previous.get("format") != FORMAT or any(previous.get(k) != v for k, v in setup.items()):
        return None
    return previous


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="experiments/planning_quality/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="reach", help="env id or short name (reach, push, pickplace)")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--seed", type=int, default=0, help="base seed; episode i uses a seed derived from (seed, i)")
    parser.add_argument("--surprise-gate", type=float, default=None, help="gate threshold (default: calibrated)")
    parser.add_argument("--gate-quantile", type=float, default=0.25,
                        help="calibrated gate: this quantile of the baseline's per-step surprises")
    parser.add_argument("--out", type=Path, default=Path("runs/planning_quality"),
                        help="results folder (the recorded results: experiments/planning_quality)")
    parser.add_argument("--no-progress", action="store_true")
    add_model_args(parser, checkpoint_help="world model (default: the shipped jepa_ac/assets/default_model)")
    add_planning_args(parser)
    return parser


def resolve_variant(name: str, args: argparse.Namespace, env_id: str, gate: float | None) -> dict[str, Any]:
    """The CEM field overrides of a variant, with its placeholders filled in."""
    fields = dict(VARIANTS[name])
    if fields.get("min_samples") == "quarter":
        base = planning_from_args(args, env_id, seed=0).cem
        fields["min_samples"] = max(base.topk, math.ceil(base.samples / 4))
    if fields.get("surprise_gate") == "calibrated":
        if gate is None:
            raise ValueError("the surprise_gate variant needs --surprise-gate or a baseline run to calibrate from")
        fields["surprise_gate"] = gate
    return fields


def calibrate_gate(records: list[dict[str, Any]], quantile: float) -> float:
    """The `quantile` of the per-step surprises of planner episodes (steps after the first)."""
    surprises = [s for r in records for s in r["per_step"]["surprise"] if s is not None]
    if not surprises:
        raise ValueError("no surprises recorded to calibrate the gate from")
    return float(np.quantile(surprises, quantile))


def variant_sampler(fields: dict[str, Any]) -> Sampler | None:
    """The sampler a variant's changes ask for (None: the planner's own Gaussian)."""
    named = [(k, v) for k, v in fields.items() if k in SAMPLERS]
    if len(named) > 1:
        raise ValueError(f"one sampler per variant, got {dict(named)}")
    return SAMPLERS[named[0][0]](named[0][1]) if named else None


def run_variant(name: str, fields: dict[str, Any], env_id: str, args: argparse.Namespace, wm: Any) -> tuple[dict, list]:
    from jepa_ac.evaluate import evaluate

    run_args = copy.copy(args)
    run_args.overrides = [*args.overrides, *((f"cem.{k}", v) for k, v in fields.items() if k not in SAMPLERS)]
    sampler = variant_sampler(fields)
    make_planner = functools.partial(CEMPlanner, sampler=sampler) if sampler is not None else None
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    row, records = evaluate(env_id, "planner", args.episodes, args.seed, run_args, wm=wm,
                            progress=not args.no_progress, make_planner=make_planner)
    row.update(variant=name, overrides=fields, wall_s=time.perf_counter() - start,
               load_average=[round(load_start, 2), round(os.getloadavg()[0], 2)])
    return row, records


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    base = next((r for r in rows if r["variant"] == "baseline"), None)
    lines = [
        "# Planning-quality variants",
        "",
        f"Machine: {result['machine']['cpu']} ({result['machine']['cpu_count']} cores), torch threads "
        f"{result['machine']['torch_threads']}, load average at start {result['machine']['load_average']}. "
        f"{result['machine']['date']}.",
        "",
        "Commands: " + "; ".join(f"`{c}`" for c in dict.fromkeys(r.get("command", "?") for r in rows)),
        "",
        f"{result['env_id']}, {result['episodes']} seeded episodes per variant (the same seeds for every variant), "
        f"checkpoint `{result['checkpoint']}`, base CEM {result['base_cem']}. Success is the simulator's; "
        "`samples/step` counts the predictor rollouts CEM evaluated per executed action; `re-planned` is the "
        "fraction of steps that ran CEM, `held` of those that sent the zero action; latency ratios are "
        "against the baseline row. Wall-clock latency depends on what else the CPU was running (`load` is the "
        "1-minute load average at the start and end of each row); `samples/step` is the load-free measure of "
        "compute. The changes are `CEMConfig` fields, except `noise_beta` and `min_samples`: the `ColouredNoise` "
        "and `AdaptiveSamples` samplers of `experiments/planning_quality/run.py`.",
        "",
        "| variant | changes | success | 95% CI | final distance (m) | steps | samples/step | re-planned | held | "
        "plan s/step | latency vs baseline | load |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lo, hi = r["success_rate_ci95"]
        ratio = (f"{r['plan_s_mean'] / base['plan_s_mean']:.2f}x" if base and base["plan_s_mean"] else "n/a")
        changes = ", ".join(f"{k}={v}" for k, v in r["overrides"].items()) or "-"
        lines.append(
            f"| {r['variant']} | {changes} | {r['success_rate']:.2f} | {lo:.2f}-{hi:.2f} | "
            f"{r['mean_final_task_distance']:.3f} | {r['mean_steps']:.1f} | {r['samples_per_step']:.0f} | "
            f"{r['replan_fraction']:.2f} | {_fraction(r.get('hold_fraction'))} | {r['plan_s_mean']:.3f} | {ratio} | "
            f"{'-'.join(map(str, r['load_average'])) if r.get('load_average') else 'n/a'} |")
    if result.get("surprise_gate") is not None:
        lines += ["", f"Surprise gate: {result['surprise_gate']:.4f} (the {result['gate_quantile']:.2f} quantile of "
                      "the baseline's per-step surprises, L1 between the observed and the predicted latent)."]
    return "\n".join(lines) + "\n"


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    names = [r["variant"] for r in rows]
    x = np.arange(len(rows))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    rate = np.array([r["success_rate"] for r in rows])
    ci = np.array([r["success_rate_ci95"] for r in rows])
    ax1.bar(x, rate, color="tab:blue", yerr=[rate - ci[:, 0], ci[:, 1] - rate], capsize=3)
    ax1.set_ylabel("success rate")
    ax1.set_ylim(0, 1)
    ax2.bar(x, [r["plan_s_mean"] for r in rows], color="tab:orange")
    ax2.set_ylabel("planning s / step")
    for ax in (ax1, ax2):
        ax.set_xticks(x, names, rotation=25, ha="right")
    fig.suptitle(f"{result['env_id'].split('/')[-1]}: {result['episodes']} episodes per variant")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    import sys

    from jepa_ac.evaluate import resolve_envs

    args = build_parser().parse_args(argv)
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise SystemExit(f"error: unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.episodes < 1:
        raise SystemExit("error: --episodes must be >= 1")
    (env_id,) = resolve_envs([args.env])
    names.sort(key=list(VARIANTS).index)  # baseline first: the gate calibrates from it
    checkpoint = str(args.checkpoint) if args.checkpoint else "jepa_ac/assets/default_model (shipped)"
    base_cem = {k: v for k, v in planning_from_args(args, env_id, seed=args.seed).to_dict()["cem"].items()
                if k in ("samples", "iterations", "topk", "horizon")}
    same_setup = {"env_id": env_id, "episodes": args.episodes, "seed": args.seed, "checkpoint": checkpoint,
                  "base_cem": base_cem}
    previous = load_previous(args.out / "planning_quality.json", same_setup)
    gate = args.surprise_gate if args.surprise_gate is not None else (previous or {}).get("surprise_gate")
    if "surprise_gate" in names and gate is None and "baseline" not in names:
        raise SystemExit("error: the surprise_gate variant calibrates from the baseline: add it or pass --surprise-gate")
    wm = load_model_from_args(args)
    info = machine_info()
    rows = []
    for name in names:
        fields = resolve_variant(name, args, env_id, gate)
        row, records = run_variant(name, fields, env_id, args, wm)
        if name == "baseline" and args.surprise_gate is None:
            gate = calibrate_gate(records, args.gate_quantile)
        row["command"] = "experiments/planning_quality/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
        rows.append(row)
        print(f"{name}: success {row['successes']}/{row['episodes']}, {row['plan_s_mean']:.3f} s/step, "
              f"{row['samples_per_step']:.0f} samples/step, re-planned {row['replan_fraction']:.2f}", flush=True)
    kept = [r for r in (previous or {}).get("rows", []) if r["variant"] not in names]
    rows = sorted(kept + rows, key=lambda r: list(VARIANTS).index(r["variant"]))
    result = {
        "format": FORMAT, **same_setup, "surprise_gate": gate, "gate_quantile": args.gate_quantile,
        "machine": info, "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "planning_quality.json", result)
    write_atomic(args.out / "planning_quality.md", markdown(result))
    plot(result, args.out / "planning_quality.png")
    print(markdown(result))
    print(f"wrote {args.out}/planning_quality.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
