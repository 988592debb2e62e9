r"""Planning server: the closed-loop controller (world model + CEM planner + goal schedule) behind a
websocket, for robot-side clients: a robot gets exactly the planning that `plan` and `evaluate` run.

Serve the shipped default model with its own planning.json on loopback (port 8765):

    python -m jepa_ac.serve

A real upstream checkpoint, reachable from the robot's network, with a shared token and limits:

    JEPA_AC_TOKEN=secret python -m jepa_ac.serve --checkpoint vjepa2-ac-vitg.pt \
        --encoder vit_giant --predictor vit_ac_giant --config my_planning.json --host 0.0.0.0 \
        --safety jepa_ac/robot/safety_default.yaml

The planning settings are the checkpoint's `planning.json` (or `--config FILE`) with the same
overrides as `plan` and `evaluate` (`--set cem.samples=64 ...`, or its shortcuts `--samples`, `--cem F=V`, ...);
a client picks a task's settings by the name its robot uses (`reset` with `"task": "push"`: an
`env_overrides` key or its short name).

Measure the wire's latency overhead (writes runs/bench/wire/wire_latency.{json,md}; `--out DIR` elsewhere):

    python -m jepa_ac.serve --bench

The protocol and the limits against abusive clients: `jepa_ac.serving.server`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from pathlib import Path

from jepa_ac.cli.args import add_model_args, add_planning_args, apply_flags, base_planning, load_model_from_args
from jepa_ac.robot.safety import SafetyLayer, load_safety_config
from jepa_ac.serving.server import TOKEN_ENV, ControllerFactory, PlanningServer, ServerConfig, serve_until_signal


# -- command line ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser, checkpoint_help="upstream .pt, HF folder or jepa_ac folder "
                                           "(default: the shipped jepa_ac/assets/default_model)")
    add_planning_args(parser)
    parser.add_argument("--seed", type=int, default=0, help="CEM seed (a client's reset may give another)")
    net = parser.add_argument_group("server")
    defaults = ServerConfig()
    net.add_argument("--host", default=defaults.host, help="bind address (default loopback only)")
    net.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    net.add_argument("--token", help=f"shared token clients must send (or set ${TOKEN_ENV}; the env var "
                                      "keeps it out of the process list)")
    net.add_argument("--safety", type=Path, help="YAML safety limits applied to every returned action")
    net.add_argument("--max-message-mb", type=float, default=defaults.max_message_bytes / 2**20)
    net.add_argument("--max-image-side", type=int, default=defaults.max_image_side)
    net.add_argument("--max-connections", type=int, default=defaults.max_connections)
    net.add_argument("--max-connections-per-address", type=int, default=defaults.max_connections_per_address)
    net.add_argument("--message-timeout", type=float, default=defaults.message_timeout_s,
                     help="seconds a started message may take to arrive whole, and a reply to be taken")
    net.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s,
                     help="close a connection that sends no request for this many seconds (0: never)")
    parser.add_argument("--bench", action="store_true",
                        help="run the wire latency benchmark (see python -m jepa_ac.robot.bench_wire --help)")
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.bench:
        from jepa_ac.robot import bench_wire

        bench_wire.main(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    try:
        config = ServerConfig(host=args.host, port=args.port, token=token,
                              max_message_bytes=int(math.ceil(args.max_message_mb * 2**20)),
                              max_image_side=args.max_image_side, max_connections=args.max_connections,
                              max_connections_per_address=args.max_connections_per_address,
                              message_timeout_s=args.message_timeout, idle_timeout_s=args.idle_timeout or None)
    except ValueError as err:
        parser.error(str(err))
    safety = SafetyLayer(load_safety_config(args.safety)) if args.safety else None
    defaults = base_planning(args)
    for task in [None, *defaults.task_names()]:  # every task's settings with the flags: bad ones stop here
        apply_flags(defaults.for_task(task), args, args.seed)
    wm = load_model_from_args(args)
    factory = ControllerFactory(wm, defaults, overrides=lambda d: apply_flags(d, args, args.seed))
    for task in [None, *defaults.task_names()]:  # what a connection builds, built once now: a task whose views or
        factory(task)                             # predictor the model lacks is an error at start
    server = PlanningServer(factory, config, safety)
    asyncio.run(serve_until_signal(server))


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
