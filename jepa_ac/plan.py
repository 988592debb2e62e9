"""Plan robot actions towards a goal image with a world model.

One planning step from a frame + state to a goal image:

    python -m jepa_ac.plan --checkpoint CKPT --frame now.png --state 0.5 0 0.3 3.14 0 0 0 --goal goal.png

One step on a recorded trajectory (frame 0 -> goal frame 1, compared with the recorded action):

    python -m jepa_ac.plan --checkpoint tests/fixtures/vjepa2_ac_tiny.pt \
        --arch tests/fixtures/vjepa2_ac_tiny.json --traj tests/fixtures/franka_example_traj.npz

Upstream `.pt` files need their architecture: `--encoder vit_giant --predictor vit_ac_giant`, or
`--arch FILE.json` holding `{"encoder": {...}, "predictor": {...}}` upstream constructor args.
Results are printed and written to `--out` as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.plan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    model = parser.add_argument_group("model")
    model.add_argument("--checkpoint", required=True, help="upstream .pt, HF folder or jepa_ac folder")
    model.add_argument("--encoder", help="encoder preset for upstream .pt files (e.g. vit_giant)")
    model.add_argument("--predictor", help="predictor preset for upstream .pt files (e.g. vit_ac_giant)")
    model.add_argument("--arch", type=Path, help="JSON with 'encoder'/'predictor' upstream constructor args")
    model.add_argument("--backend", default="torch", choices=["torch", "mlx"])
    model.add_argument("--device", default=None)
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--frame", type=Path, help="current camera image")
    inputs.add_argument("--state", type=float, nargs=7, metavar="S", help="x y z roll pitch yaw gripper")
    inputs.add_argument("--goal", type=Path, help="goal image")
    inputs.add_argument("--traj", type=Path, help="npz with observations [1,T,H,W,3] and states [1,T,7]")
    cem = parser.add_argument_group("CEM")
    cem.add_argument("--samples", type=int, default=800)
    cem.add_argument("--iterations", type=int, default=10)
    cem.add_argument("--topk", type=int, default=10)
    cem.add_argument("--horizon", type=int, default=1)
    cem.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/plan"), help="output folder")
    return parser


def load_model(args: argparse.Namespace):
    import jepa_ac

    encoder, predictor = args.encoder, args.predictor
    if args.arch is not None:
        arch = json.loads(args.arch.read_text())
        encoder, predictor = arch.get("encoder", encoder), arch.get("predictor", predictor)
    return jepa_ac.load_world_model(args.checkpoint, encoder=encoder, predictor=predictor,
                                    backend=args.backend, device=args.device)


def read_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(frame, state, goal, recorded action or None) from --traj or --frame/--state/--goal."""
    from jepa_ac.pose import action_between
    from jepa_ac.preprocess import load_image

    if args.traj is not None:
        with np.load(args.traj) as data:
            frames, states = data["observations"][0], data["states"][0].astype(np.float32)
        return frames[0], states[0], frames[-1], action_between(states[0], states[-1])
    missing = [name for name in ("frame", "state", "goal") if getattr(args, name) is None]
    if missing:
        raise SystemExit(f"error: pass --traj, or all of --frame --state --goal (missing: {', '.join(missing)})")
    return load_image(args.frame), np.asarray(args.state, np.float32), load_image(args.goal), None


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    from jepa_ac.planning import CEMConfig, CEMPlanner

    frame, state, goal, recorded = read_inputs(args)
    wm = load_model(args)
    config = CEMConfig(samples=args.samples, iterations=args.iterations, topk=args.topk, horizon=args.horizon,
                       seed=args.seed)
    planner = CEMPlanner(wm, config)
    start = time.perf_counter()
    planner.set_goal(goal)
    result = planner.plan_sequence(frame, state)
    seconds = time.perf_counter() - start
    report = {
        "action": result.actions[0].tolist(),
        "plan": result.actions.tolist(),
        "best_energy_per_iteration": result.elite_costs[:, 0].tolist(),
        "planning_seconds": seconds,
        "backend": args.backend,
        "cem": config.__dict__,
    }
    if recorded is not None:
        report["recorded_action"] = np.asarray(recorded).tolist()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.json").write_text(json.dumps(report, indent=2) + "\n")
    np.set_printoptions(precision=4, suppress=True)
    print(f"action   {result.actions[0]}")
    if recorded is not None:
        print(f"recorded {np.asarray(recorded)}")
    print(f"energy {result.elite_costs[0, 0]:.4f} -> {result.elite_costs[-1, 0]:.4f} over {config.iterations} "
          f"iterations; {seconds:.2f} s ({args.backend}); wrote {args.out / 'plan.json'}")
    return report


if __name__ == "__main__":
    main()
