"""How precisely a world model's energy picks the action that was taken, against the true next frames.

    python -m jepa_ac.bench action_inference --env push --states 40 --out experiments/action_inference
    python -m jepa_ac.bench action_inference --checkpoint runs/a/final --compare runs/b/final --states 20

States come from seeded episodes of the env's scripted expert (action noise `--expert-noise`, stopped
after a random number of steps). At each state a random translation `o` (uniform in
+-`--max-offset` m along x and y) is executed and the frame it produces becomes the goal; the
simulation then goes back to the state (`env.snapshot()` / `restore()`).

Any other env (`--env module:EnvId`, docs/own_env.md) runs through its `EnvAdapter`: states come
from uniform random planned moves within its planning bounds (it has no expert), moves are executed
as the adapter sends them (command fit, repeat), and a MuJoCo env is put back with its own state
(`jepa_ac.robot.env_adapter.snapshot`). Its frames are rendered at the training data's size unless
`--image-size` is given.

    python -m jepa_ac.bench action_inference --env my_hooks:FetchReach-v4 --checkpoint runs/fetch/final --states 20 Over a grid of candidate
x/y actions (+-`--grid-extent` m, `--grid-step` apart) two actions minimise the L1 energy to that
goal:

- `predicted`: the model's one-step rollout energy, which is what CEM minimises when planning;
- `true`: the energy of the frame each candidate really produces (encoder only: a perfect predictor;
  measured once per distinct encoder).

The error is |argmin - o| in cm. `true` bounds what a better predictor can reach with this encoder;
`predicted / true` says how much of the planner's imprecision is the predictor's. Rows for the
states where the TCP is within `--near` m of the object (contact matters there) are reported apart.
Writes `action_inference.json` and `action_inference.md` under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.bench.latency import machine_info
from jepa_ac.files import write_atomic, write_json_atomic
from jepa_ac.world_model.precision import dtype_name, host_isa

FORMAT = "jepa_ac.bench.action_inference/1"
OBJECT_BODY = {"push": "block", "pickplace": "cube"}


def build_parser() -> argparse.ArgumentParser:
    from jepa_ac.cli.args import add_env_hook_args, add_model_args
    from jepa_ac.cli.overrides import add_settings_args

    parser = argparse.ArgumentParser(prog="python -m jepa_ac.bench action_inference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="push",
                        help="env id or short name (reach, push, pickplace), or any env as module:EnvId")
    parser.add_argument("--states", type=int, default=40, help="number of (state, goal) pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs="*", type=Path, default=[],
                        help="more jepa_ac checkpoint folders, evaluated on the same states")
    parser.add_argument("--max-offset", type=float, default=0.05, help="the executed x/y translation's bound (m)")
    parser.add_argument("--grid-extent", type=float, default=0.06, help="candidate actions span +- this (m)")
    parser.add_argument("--grid-step", type=float, default=0.01, help="candidate spacing (m)")
    parser.add_argument("--expert-noise", type=float, default=0.3)
    parser.add_argument("--min-steps", type=int, default=8, help="expert steps before a state is taken, at least")
    parser.add_argument("--max-steps", type=int, default=30, help="... and at most")
    parser.add_argument("--near", type=float, default=0.08, help="TCP-object xy distance of the 'near' rows (m)")
    parser.add_argument("--no-true", action="store_true", help="skip the true-frame reference (faster)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="rendered frame size (the model resizes; default 128, or the training data's for any "
                             "other env)")
    add_settings_args(parser, "any other env: planning settings, YAML or JSON (default: planning.json beside the "
                              "checkpoint, else derived from its control.json)", "--planning")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/action_inference"))
    add_model_args(parser, checkpoint_help="world model (default: the shipped jepa_ac/assets/default_model)")
    add_env_hook_args(parser)
    return parser


def candidate_actions(extent: float, step: float) -> np.ndarray:
    """[K, 7] translations on an x/y grid (z, rotation and gripper 0), row-major over (x, y)."""
    n = int(round(extent / step))
    axis = np.arange(-n, n + 1) * step
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    actions = np.zeros((gx.size, 7), np.float32)
    actions[:, 0], actions[:, 1] = gx.ravel(), gy.ravel()
    return actions


def sample_states(env: Any, count: int, seed: int, noise: float, steps: tuple[int, int],
                  max_offset: float) -> list[dict[str, Any]]:
    """`count` (snapshot, frame, state, executed offset, goal frame, TCP-object distance) cases."""
    from jepa_ac.envs.experts import make_expert

    u = env.unwrapped
    body = OBJECT_BODY.get(u.task_name)
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        expert = make_expert(env, noise=noise, seed=int(rng.integers(2**31)))
        for _ in range(int(rng.integers(steps[0], steps[1] + 1))):
            obs, *_ = env.step(expert.act(obs))
        offset = np.zeros(7, np.float32)
        offset[:2] = rng.uniform(-max_offset, max_offset, 2)
        snap = u.snapshot()
        goal = frame_after(env, snap, offset)
        tcp = obs["state"][:2].astype(np.float64)
        near = float(np.linalg.norm(tcp - u.object_pose(body)[0][:2])) if body else float("nan")
        cases.append({"snapshot": snap, "frame": obs["image"], "state": obs["state"], "offset": offset,
                      "goal": goal, "tcp_object_xy": near})
    return cases


def sample_adapter_states(env: Any, adapter: Any, spec: Any, count: int, seed: int, steps: tuple[int, int],
                          max_offset: float) -> list[dict[str, Any]]:
    """`sample_states` for an env behind an `EnvAdapter`: random planned moves within `spec`'s bounds."""
    from jepa_ac.control.closed_loop import RandomPolicy
    from jepa_ac.robot.env_adapter import snapshot

    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        policy = RandomPolicy(spec, seed=int(rng.integers(2**31)))
        for _ in range(int(rng.integers(steps[0], steps[1] + 1))):
            frame, state = adapter.observe(obs, info, env)
            obs, _, _, _, info, _ = adapter.step(env, policy.infer({"image": frame, "state": state})["action"], obs)
        frame, state = adapter.observe(obs, info, env)
        offset = np.zeros(7, np.float32)
        offset[:2] = rng.uniform(-max_offset, max_offset, 2)
        case = {"snapshot": snapshot(env), "obs": obs, "frame": frame, "state": state.astype(np.float32),
                "offset": offset, "tcp_object_xy": float("nan")}
        case["goal"] = adapter_frame_after(env, adapter, case, offset)
        cases.append(case)
    return cases


def frame_after(env: Any, snapshot: dict[str, Any], action: np.ndarray) -> np.ndarray:
    """The frame `action` produces from `snapshot`; the env is left back at the snapshot."""
    env.unwrapped.restore(snapshot)
    frame = env.step(action)[0]["image"]
    env.unwrapped.restore(snapshot)
    return frame


def adapter_frame_after(env: Any, adapter: Any, case: dict[str, Any], action: np.ndarray) -> np.ndarray:
    """`frame_after` through an `EnvAdapter`: the planned move sent as the adapter sends it."""
    from jepa_ac.robot.env_adapter import restore

    restore(env, case["snapshot"])
    obs, _, _, _, info, _ = adapter.step(env, action, case["obs"])
    frame = adapter.observe(obs, info, env)[0]
    restore(env, case["snapshot"])
    return frame


def true_energies(env: Any, wm: Any, case: dict[str, Any], candidates: np.ndarray, z_goal: Any,
                  adapter: Any = None) -> np.ndarray:
    """[K] energy of the frame each candidate action really produces from the case's state."""
    frames = np.stack([frame_after(env, case["snapshot"], action) if adapter is None
                       else adapter_frame_after(env, adapter, case, action) for action in candidates])
    z = wm.encode_frames(frames)  # [K, N, D] (one frame each)
    return wm.ops.to_numpy(wm.energy(z, z_goal))


def evaluate_model(wm: Any, env: Any, cases: list[dict[str, Any]], candidates: np.ndarray, with_true: bool,
                   known_true: list[float] | None = None, adapter: Any = None) -> dict[str, Any]:
    """Per-case argmin errors (cm) of the predicted and (optionally) true energies, and timings.
    `known_true`: the true errors already measured with the same encoder on these cases (reused)."""
    ops = wm.ops
    per_case = []
    start = time.perf_counter()
    for i, case in enumerate(cases):
        z, z_goal = wm.encode(case["frame"][None]), wm.encode(case["goal"][None])  # [1, N, D]
        state = ops.asarray(np.asarray(case["state"], np.float32)[None])  # [1, 7]
        predicted = ops.to_numpy(wm.rollout_energy(z, state, ops.asarray(candidates[:, None]), z_goal))  # [K]
        offset = case["offset"][:2]
        record = {"predicted_error_cm": 100 * float(np.linalg.norm(candidates[np.argmin(predicted), :2] - offset)),
                  "tcp_object_xy": case["tcp_object_xy"]}
        if with_true and known_true is not None:
            record["true_error_cm"] = known_true[i]
        elif with_true:
            true = true_energies(env, wm, case, candidates, z_goal, adapter)
            record["true_error_cm"] = 100 * float(np.linalg.norm(candidates[np.argmin(true), :2] - offset))
        per_case.append(record)
    return {"per_case": per_case, "wall_s": time.perf_counter() - start}


def summarise(per_case: list[dict[str, Any]], near: float) -> dict[str, Any]:
    """Mean / median errors over all cases and over those near the object; predicted / true ratio."""
    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"cases": len(rows)}
        for key in ("predicted_error_cm", "true_error_cm"):
            values = [r[key] for r in rows if key in r]
            if values:
                out[key.replace("_error_cm", "_mean_cm")] = float(np.mean(values))
                out[key.replace("_error_cm", "_median_cm")] = float(np.median(values))
        if out.get("true_mean_cm"):
            out["predicted_vs_true"] = out["predicted_mean_cm"] / out["true_mean_cm"]
        return out

    close = [r for r in per_case if r["tcp_object_xy"] < near]
    return {"all": stats(per_case), "near_object": stats(close) if close else {"cases": 0}}


def markdown(result: dict[str, Any]) -> str:
    setup = result["setup"]
    lines = [
        "# Action inference: does the energy pick the action that was taken?",
        "",
        f"Machine: {result['machine']['cpu']} ({result['machine']['cpu_count']} cores, ISA "
        f"{result['machine'].get('isa', {}).get('row', '?')}), {result['machine']['date']}; networks in "
        f"{', '.join(sorted({r.get('dtype', 'float32') for r in result['rows']}))}. Command: `{result['command']}`",
        "",
        f"{setup['env_id']}: {setup['states']} states from "
        + (f"the scripted expert (noise {setup['expert_noise']}, " if not setup.get("adapter") else
           "uniform random planned moves (")
        + f"{setup['min_steps']}-{setup['max_steps']} steps in), each with a random executed x/y translation of up "
        f"to {100 * setup['max_offset']:.0f} cm whose frame is the goal. Candidates: a "
        f"{setup['grid_size']}x{setup['grid_size']} grid, +-{100 * setup['grid_extent']:.0f} cm, "
        f"{100 * setup['grid_step']:.0f} cm apart (~{38.3 * setup['grid_step']:.1f} cm, the mean distance to the "
        "nearest grid point, is the grid's own error floor). Error = |argmin - executed| in cm. `predicted`: the "
        "model's one-step rollout energy (what CEM minimises); `true`: the energy of the frame each candidate "
        f"really produces (encoder only, a perfect predictor). `near`: the TCP within {100 * setup['near']:.0f} cm of the object.",
        "",
        "| model | cases | predicted error, mean / median (cm) | true error, mean / median (cm) | predicted / true | "
        "near: cases | near: predicted mean (cm) | near: true mean (cm) |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        a, n = row["summary"]["all"], row["summary"]["near_object"]
        true = (f"{a['true_mean_cm']:.2f} / {a['true_median_cm']:.2f}" if "true_mean_cm" in a else "n/a")
        ratio = f"{a['predicted_vs_true']:.1f}x" if "predicted_vs_true" in a else "n/a"
        lines.append(
            f"| `{row['checkpoint']}` | {a['cases']} | {a['predicted_mean_cm']:.2f} / {a['predicted_median_cm']:.2f} | "
            f"{true} | {ratio} | {n['cases']} | {_cm(n.get('predicted_mean_cm'))} | {_cm(n.get('true_mean_cm'))} |")
    return "\n".join(lines) + "\n"


def _cm(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    import jepa_ac
    from jepa_ac.control.closed_loop import make_env
    from jepa_ac.cli.args import env_from_args, is_franka_env, load_model_from_args, planning_dtype
    from jepa_ac.evaluate import resolve_envs
    from jepa_ac.planning.defaults import EnvOptions

    args = build_parser().parse_args(argv)
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    if args.states < 1:
        raise SystemExit("error: --states must be >= 1")
    if not 0 < args.grid_step <= args.grid_extent or args.max_offset <= 0 or not 0 <= args.min_steps <= args.max_steps:
        raise SystemExit("error: need 0 < --grid-step <= --grid-extent, --max-offset > 0 and "
                         "0 <= --min-steps <= --max-steps")
    (env_id,) = resolve_envs([args.env])
    candidates = candidate_actions(args.grid_extent, args.grid_step)
    adapter = None
    if is_franka_env(env_id):
        args.image_size = args.image_size or 128
        env = make_env(env_id, EnvOptions(image_size=args.image_size))
        cases = sample_states(env, args.states, args.seed, args.expert_noise, (args.min_steps, args.max_steps),
                              args.max_offset)
    else:  # --max-steps here counts random moves, not an MPC budget
        if args.image_size:
            args.overrides = [*args.overrides, ("env.image_size", args.image_size)]
        defaults, adapter = env_from_args(args, env_id, args.seed)
        args.image_size = adapter.image_size
        env = adapter.make_env(step_budget=10**6)  # the moves tried from each state must not hit a time limit
        cases = sample_adapter_states(env, adapter, defaults.action, args.states, args.seed,
                                      (args.min_steps, args.max_steps), args.max_offset)
    models = [(str(args.checkpoint) if args.checkpoint else "jepa_ac/assets/default_model", None)]
    models += [(str(path), path) for path in args.compare]
    rows, true_by_encoder = [], {}
    for name, path in models:
        try:
            wm = load_model_from_args(args) if path is None else jepa_ac.load_world_model(
                path, backend=args.backend, device=args.device, dtype=planning_dtype(args))
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"error: {err}") from None
        encoder = wm.encoder_hash()  # models sharing an encoder share the true-frame reference
        run = evaluate_model(wm, env, cases, candidates, with_true=not args.no_true,
                             known_true=true_by_encoder.get(encoder), adapter=adapter)
        if not args.no_true:
            true_by_encoder[encoder] = [r["true_error_cm"] for r in run["per_case"]]
        rows.append({"checkpoint": name, "encoder_sha256": encoder, "dtype": dtype_name(wm.backend.dtype),
                     "isa": host_isa()["row"], "summary": summarise(run["per_case"], args.near),
                     **run})
        print(f"{name}: {json.dumps(rows[-1]['summary']['all'])}", flush=True)
    env.close()
    setup = {"env_id": env_id, "states": args.states, "seed": args.seed, "expert_noise": args.expert_noise,
             "min_steps": args.min_steps, "max_steps": args.max_steps, "max_offset": args.max_offset,
             "grid_extent": args.grid_extent, "grid_step": args.grid_step, "grid_size": int(np.sqrt(len(candidates))),
             "near": args.near, "image_size": args.image_size}
    if adapter is not None:
        setup["adapter"] = adapter.describe()
    command = "python -m jepa_ac.bench action_inference " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {"format": FORMAT, "setup": setup, "command": command, "machine": machine_info(), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "action_inference.json", result)
    write_atomic(args.out / "action_inference.md", markdown(result))
    print(markdown(result))
    print(f"wrote {args.out}/action_inference.{{json,md}}")
    return 0
