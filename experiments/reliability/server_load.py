"""A well-behaved client's planning latency on loopback, quiet and while abusive clients hammer the
same server: stalled half frames, 16 MiB messages of empty maps, floods of bad requests.

The server is `python -m jepa_ac.serve` with the shipped default model (small CEM) in a child
process; the abusive clients run in another child process (niced, from 127.0.0.2-5, so that they
count as other machines); the good client, in this process, keeps one connection from 127.0.0.1
and plans `--requests` steps in each phase: quiet, each kind of abuse alone, all of them at once.
Everything stops by itself (bounded loops, timeouts).

    python experiments/reliability/server_load.py            # writes server_load.json beside this file
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np

from server_attacks import HOST, REPO, STATE, frame, half_frame, nested, tiny_maps

HERE = Path(__file__).resolve().parent
CEM = ["--samples", "32", "--iterations", "2", "--topk", "4"]


def stats(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"n": len(ms), "median_ms": round(float(np.median(ms)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "max_ms": round(float(ms.max()), 1)}


def host_note() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    import websockets

    return {"cpu": model.group(1) if model else platform.processor(),
            "isa": sorted(set(re.findall(r"\b(amx_bf16|avx512_bf16|avx2)\b", cpuinfo))),
            "cpus": len(re.findall(r"^processor\s*:", cpuinfo, re.M)), "python": platform.python_version(),
            "websockets": websockets.__version__, "machine": "shared build machine (other jobs running)"}


# -- the abusive clients (run with --attack in a child process) -------------------------------------------
ABUSE = ("stall", "maps", "flood")


def attack(url: str, kinds: list[str], seconds: float) -> None:
    """Abuse the server at `url` until stdin closes (at most `seconds`), then print what was sent as one JSON line."""
    import os

    from websockets.sync.client import connect

    os.nice(10)  # on a shared machine: measure what the abuse costs the server, less what it costs to produce
    port = int(url.rsplit(":", 1)[1])
    stop_at = time.monotonic() + seconds

    def stop_on_eof() -> None:
        nonlocal stop_at
        sys.stdin.read()
        stop_at = 0.0

    threading.Thread(target=stop_on_eof, daemon=True).start()
    counts = {"stalled_connections": 0, "tiny_map_messages": 0, "bad_requests": 0, "refused_connections": 0}
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            counts[key] += 1

    def staller(source: str) -> None:  # half a frame, wait to be dropped, again
        while time.monotonic() < stop_at:
            try:
                sock = half_frame(port, source)
            except Exception:  # noqa: BLE001 - refused or dropped during the handshake
                count("refused_connections")
                time.sleep(0.2)
                continue
            count("stalled_connections")
            sock.settimeout(0.5)
            while time.monotonic() < stop_at:
                try:
                    if not sock.recv(65536):
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            sock.close()

    def sender(source: str, messages: list[bytes], key: str) -> None:  # one message after another, each answered
        while time.monotonic() < stop_at:
            try:
                sock = socket.create_connection((HOST, port), timeout=10, source_address=(source, 0))
                with connect(url, sock=sock, proxy=None, compression=None, max_size=None) as ws:
                    first = msgpack.unpackb(ws.recv(timeout=10))
                    if "error" in first:
                        count("refused_connections")
                        time.sleep(0.2)
                        continue
                    i = 0
                    while time.monotonic() < stop_at:
                        ws.send(messages[i % len(messages)])
                        ws.recv(timeout=10)
                        count(key)
                        i += 1
            except Exception:  # noqa: BLE001 - dropped: connect again
                time.sleep(0.1)

    bad = [b"\xc1", nested(5000), msgpack.packb({"type": "teleport"}), msgpack.packb([1] * 5000),
           b"\xdd\xff\xff\xff\xff", msgpack.packb({"type": "infer", "image": "x", "state": [0.0] * 7})]
    workers = []
    if "stall" in kinds:
        workers += [threading.Thread(target=staller, args=(source,))
                    for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.3")]
    if "maps" in kinds:
        workers += [threading.Thread(target=sender, args=("127.0.0.4", [tiny_maps(16 * 2**20)], "tiny_map_messages"))]
    if "flood" in kinds:
        workers += [threading.Thread(target=sender, args=("127.0.0.5", bad, "bad_requests")) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 30)
    print(json.dumps(counts), flush=True)


# -- the measurement ----------------------------------------------------------------------------------
def plan_steps(client, n: int) -> list[float]:
    latency = []
    for _ in range(n):
        start = time.perf_counter()
        out = client.infer({"image": frame(64), "state": STATE})
        latency.append(time.perf_counter() - start)
        assert out["action"].shape == (7,)
    return latency


def fresh_connection(url: str, bound: float) -> dict:
    """Seconds until a new good client (127.0.0.1) is served, retrying refusals, and how many were refused."""
    from jepa_ac.serving.client import PlannerClient, PlannerError

    start, refused = time.perf_counter(), 0
    while time.perf_counter() - start < bound:
        try:
            with PlannerClient(url, timeout=30, retries=0) as client:
                client.set_goal(frame(64))
                client.infer({"image": frame(64), "state": STATE})
            return {"served_after_ms": round((time.perf_counter() - start) * 1e3, 1), "refused_first": refused}
        except PlannerError as err:
            if err.code != "too_many_connections":
                raise
            refused += 1
            time.sleep(0.1)
    return {"served_after_ms": None, "refused_first": refused}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--message-timeout", type=float, default=2.0, help="the server's --message-timeout")
    parser.add_argument("--out", type=Path, default=HERE / "server_load.json")
    parser.add_argument("--attack", metavar="URL", help=argparse.SUPPRESS)  # the abusive child process
    parser.add_argument("--kinds", default=",".join(ABUSE), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        attack(args.attack, args.kinds.split(","), args.seconds)
        return

    from jepa_ac.serving.client import PlannerClient

    server_cmd = [sys.executable, "-m", "jepa_ac.serve", "--checkpoint", str(REPO / "jepa_ac/assets/default_model"),
                  "--host", HOST, "--port", "0", *CEM, "--message-timeout", str(args.message_timeout),
                  "--log-level", "ERROR"]
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    attacker = None
    phases: dict[str, dict] = {}
    try:
        line = server.stdout.readline()
        if not line.startswith("listening on ws://"):
            raise SystemExit(f"error: the server did not start: {line!r}")
        url = line.split()[-1]
        with PlannerClient(url, timeout=60) as client:
            client.set_goal(frame(64))
            plan_steps(client, 5)  # warm-up
            for phase in ("quiet", *ABUSE, "all"):
                kinds = [] if phase == "quiet" else list(ABUSE) if phase == "all" else [phase]
                if kinds:
                    attacker = subprocess.Popen([sys.executable, __file__, "--attack", url, "--kinds", ",".join(kinds)],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                text=True, cwd=REPO)
                    time.sleep(3.0)  # let the abuse reach its steady state (every slot it can get taken)
                connections = client.health()["connections"]
                latency = plan_steps(client, args.requests)
                fresh = fresh_connection(url, bound=30)
                phases[phase] = {**stats(latency), "fresh_connection": fresh, "connections": connections}
                if kinds:
                    attacked, _ = attacker.communicate(input="", timeout=120)  # stdin closed: it stops
                    phases[phase]["sent_by_abusers"] = json.loads(attacked.strip().splitlines()[-1])
                    attacker = None
                print(f"{phase}: {phases[phase]}", flush=True)
    finally:
        for proc in (attacker, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)

    report = {
        "what": "round-trip latency of one well-behaved client's infer requests (127.0.0.1, one connection kept), "
                "quiet and while abusive clients run against the same server",
        "server": " ".join(["python -m jepa_ac.serve --checkpoint jepa_ac/assets/default_model", *CEM,
                            "--message-timeout", str(args.message_timeout)]) + " (other limits at their defaults)",
        "abuse": {"stall": "5 clients that send half a frame and stall, reconnecting when dropped (127.0.0.2-3)",
                  "maps": "one client sending 16 MiB messages of empty maps back to back (127.0.0.4)",
                  "flood": "two clients flooding bad requests: invalid msgpack, 5000-deep nesting, 5000-element "
                           "arrays, 4 G declared lengths, bad fields (127.0.0.5)",
                  "all": "the three at once"},
        "abusers": "a child process at nice 10 on the same machine; the server and the good client at normal priority",
        "host": host_note(),
        "phases": phases,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"host: {report['host']['cpu']} {report['host']['isa']}")
    print("| phase | n | median ms | p95 ms | max ms | new client served after ms | abusers sent |\n"
          "|---|---|---|---|---|---|---|")
    for phase, r in phases.items():
        print(f"| {phase} | {r['n']} | {r['median_ms']} | {r['p95_ms']} | {r['max_ms']} | "
              f"{r['fresh_connection']['served_after_ms']} | {r.get('sent_by_abusers', '')} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
