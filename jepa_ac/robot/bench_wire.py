"""Latency the planning server's wire adds: client round trip minus the planner's own time.

Starts `python -m jepa_ac.serve` in a subprocess on a free loopback port (as a real deployment
runs it: separate processes), connects a `PlannerClient`, and for each frame size sends `infer`
requests. Per request it records the client round trip, the server's time in the policy call
(`infer_s`) and in the whole request (`server_s`), and reports

    overhead = round trip - infer_s          (what the wire costs the control loop)
    server   = server_s - infer_s            (decode, validation, encode on the server)
    link     = round trip - server_s         (client encode/decode + socket both ways)

Run from the repository root (defaults use the tiny test checkpoint):

    python -m jepa_ac.robot.bench_wire --requests 30
    python -m jepa_ac.serve --bench --sizes 64x64 720x1280 --out experiments/serve

Writes `wire_latency.json` and `wire_latency.md` to `--out`.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from jepa_ac.files import write_atomic, write_json_atomic
from jepa_ac.serving.client import PlannerClient
from jepa_ac.serving.wire import packb, unpackb


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.robot.bench_wire", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="tests/fixtures/vjepa2_ac_tiny.pt")
    parser.add_argument("--arch", default="tests/fixtures/vjepa2_ac_tiny.json",
                        help="architecture JSON for an upstream .pt ('' for none)")
    parser.add_argument("--encoder", help="encoder preset instead of --arch")
    parser.add_argument("--predictor", help="predictor preset instead of --arch")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--topk", type=int, default=8)
    parser.add_argument("--sizes", nargs="+", default=["64x64", "256x256", "720x1280"], metavar="HxW",
                        help="frame sizes to send")
    parser.add_argument("--requests", type=int, default=30, help="timed infer requests per size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/wire"))
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    return parser


def parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: size {text!r} is not HxW (e.g. 256x256)") from None
    if h < 2 or w < 2:
        raise SystemExit(f"error: size {text!r} must be at least 2x2")
    return h, w


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "jepa_ac.serve", "--checkpoint", args.checkpoint, "--port", "0",
               "--samples", str(args.samples), "--iterations", str(args.iterations), "--topk", str(args.topk),
               "--log-level", "WARNING"]
    if args.arch:
        command += ["--arch", args.arch]
    for flag in ("encoder", "predictor"):
        if getattr(args, flag):
            command += [f"--{flag}", getattr(args, flag)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=None, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + args.startup_timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                raise SystemExit(f"error: the server exited with code {proc.returncode} before listening") from None
            continue
        if line.startswith("listening on "):
            return proc, line.split()[-1]
    proc.terminate()
    raise SystemExit(f"error: the server did not start within {args.startup_timeout} s")


def codec_seconds(message: dict[str, Any], repeats: int = 20) -> float:
    """Median seconds to pack and unpack `message` once, in this process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        unpackb(packb(message))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stats_ms(values: list[float]) -> dict[str, float]:
    a = np.asarray(values) * 1e3
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)), "max": float(a.max())}


def bench_size(client: PlannerClient, size: tuple[int, int], args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    state = np.array([0.45, 0.0, 0.3, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)
    client.set_goal(image)
    rows = []
    for i in range(args.warmup + args.requests):
        out = client.infer({"image": image, "state": state})
        if i >= args.warmup:
            rows.append(out["timing"])
    round_trip = [t["round_trip_s"] for t in rows]
    infer = [t["infer_s"] for t in rows]
    server = [t["server_s"] for t in rows]
    request = {"type": "infer", "image": image, "state": state}
    return {
        "size": f"{size[0]}x{size[1]}",
        "request_bytes": len(packb(request)),
        "requests": args.requests,
        "round_trip_ms": stats_ms(round_trip),
        "planning_ms": stats_ms(infer),
        "overhead_ms": stats_ms([r - p for r, p in zip(round_trip, infer)]),
        "server_overhead_ms": stats_ms([s - p for s, p in zip(server, infer)]),
        "link_ms": stats_ms([r - s for r, s in zip(round_trip, server)]),
        "codec_ms": codec_seconds(request) * 1e3,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Planning server wire latency",
        "",
        f"{report['machine']}; server and client are separate processes on loopback; "
        f"model `{Path(report['checkpoint']).name}`, CEM {report['cem']}. "
        f"{report['results'][0]['requests']} timed requests per size (after {report['warmup']} warm-up).",
        "Overhead = client round trip - planner time inside the server (median / p90, ms).",
        "",
        "| frame | request | round trip | planning | **overhead** | server side | link + client | codec only |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['size']} | {r['request_bytes'] / 1024:.0f} KiB | {r['round_trip_ms']['median']:.2f} "
            f"| {r['planning_ms']['median']:.2f} | **{r['overhead_ms']['median']:.2f} / {r['overhead_ms']['p90']:.2f}** "
            f"| {r['server_overhead_ms']['median']:.2f} | {r['link_ms']['median']:.2f} | {r['codec_ms']:.2f} |"
        )
    lines += ["", "Reproduce: `" + report["command"] + "`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes]
    if args.requests < 1 or args.warmup < 0:
        raise SystemExit("error: --requests must be >= 1 and --warmup >= 0")
    proc, url = start_server(args)
    try:
        with PlannerClient(url, timeout=600) as client:
            results = []
            for size in sizes:
                results.append(bench_size(client, size, args))
                r = results[-1]
                print(f"{r['size']:>10}: round trip {r['round_trip_ms']['median']:.2f} ms, planning "
                      f"{r['planning_ms']['median']:.2f} ms, overhead {r['overhead_ms']['median']:.2f} ms "
                      f"(p90 {r['overhead_ms']['p90']:.2f})", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    report = {
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "checkpoint": args.checkpoint,
        "cem": {"samples": args.samples, "iterations": args.iterations, "topk": args.topk},
        "warmup": args.warmup,
        "command": "python -m jepa_ac.robot.bench_wire " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results,
    }
    write_json_atomic(args.out / "wire_latency.json", report)
    write_atomic(args.out / "wire_latency.md", markdown(report))
    print(f"wrote {args.out / 'wire_latency.json'} and {args.out / 'wire_latency.md'}")
    return report


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
