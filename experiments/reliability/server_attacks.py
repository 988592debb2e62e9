"""Abusive clients of the planning server, each run against a server started in this process (or the
`python -m jepa_ac.serve` CLI in a child process) on 127.0.0.1 with a free port.

An attack exits 0 when the server behaved: it refused the abuse quickly with a clear error (or
dropped the abusive connection in time) and a well-behaved client was still served. Otherwise it
prints what went wrong to stderr and exits 1. `cases_server.py` runs each in a fresh process
through `harness.py`; `server_load.py` reuses the abusive clients.

    python experiments/reliability/server_attacks.py many_tiny_maps
    python experiments/reliability/server_attacks.py --list

Loopback only: every socket here connects to 127.0.0.1 (from 127.0.0.x source addresses, which
Linux routes over the loopback interface, to act as several client machines).
"""

from __future__ import annotations

import argparse
import base64
import functools
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import msgpack
import numpy as np

from jepa_ac.serving.client import PlannerClient, PlannerError
from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread
from jepa_ac.serving.wire import PROTOCOL_VERSION, packb, unpackb

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
STATE = np.array([0.45, 0.0, 0.3, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)


class Misbehaved(Exception):
    """The server did not handle an attack as it should."""


def expect(condition: bool, problem: str) -> None:
    if not condition:
        raise Misbehaved(problem)


class StubPolicy:
    """A stand-in planner: `delay` seconds per step, a fixed action and energy (NaN allowed)."""

    def __init__(self, delay: float = 0.005, action=(0.01, 0, 0, 0, 0, 0, 0), energy: float = 1.0) -> None:
        self.delay, self.action, self.energy = delay, np.asarray(action, np.float32), energy

    def reset(self) -> None:
        pass

    def set_goal(self, goal, gripper=None) -> None:
        pass

    def infer(self, obs) -> dict:
        time.sleep(self.delay)
        return {"action": self.action, "energy": self.energy, "timing": {"plan_s": self.delay}}

    def metadata(self) -> dict:
        return {"name": "stub", "delay": self.delay}


def start_server(policy: Callable = StubPolicy, **config) -> ServerThread:
    thread = ServerThread(PlanningServer(policy, ServerConfig(**{"host": HOST, "port": 0, **config})))
    thread.start()
    return thread


def frame(size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 100, dtype=np.uint8)


def good_round_trip(url: str, steps: int = 1) -> float:
    """Seconds for a fresh well-behaved client to connect, set a goal and plan `steps` steps."""
    start = time.perf_counter()
    with PlannerClient(url, timeout=10, retries=0) as client:
        client.set_goal(frame())
        for _ in range(steps):
            out = client.infer({"image": frame(), "state": STATE})
            expect(out["action"].shape == (7,) and np.all(np.isfinite(out["action"])), f"bad action {out}")
    return time.perf_counter() - start


def served_within(url: str, bound: float) -> float:
    """Seconds until a good client is served, retrying refusals ("too_many_connections"); at most `bound`."""
    start = time.perf_counter()
    while True:
        try:
            good_round_trip(url)
            return time.perf_counter() - start
        except PlannerError as err:
            expect(err.code == "too_many_connections", f"good client refused: {err}")
            expect(time.perf_counter() - start < bound, f"a good client was not served within {bound} s")
            time.sleep(0.05)


# -- raw sockets ----------------------------------------------------------------------------------
def tcp(port: int, source: str = HOST, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so that the receive window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect((HOST, port))
    return sock


def upgraded(port: int, source: str = HOST, rcvbuf: int | None = None) -> socket.socket:
    """A raw socket past the websocket handshake; the server's first frame is left unread."""
    sock = tcp(port, source, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: the server's first frame may follow at once
        chunk = sock.recv(1)
        expect(bool(chunk), f"the server closed the connection during the handshake: {response[:80]!r}")
        response += chunk
    expect(response.startswith(b"HTTP/1.1 101"), f"handshake refused: {response[:80]!r}")
    return sock


def frame_header(length: int, opcode: int = 2, fin: bool = True) -> bytes:
    """A client frame header (masked with a zero key, so the payload goes as it is)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = bytes([first, 0x80 | length])
    elif length < 2**16:
        head = bytes([first, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, 0x80 | 127]) + length.to_bytes(8, "big")
    return head + b"\0\0\0\0"


def half_frame(port: int, source: str = HOST) -> socket.socket:
    """A connection that declares a 1000-byte frame, sends 10 bytes of it and stalls."""
    sock = upgraded(port, source)
    sock.sendall(frame_header(1000) + b"x" * 10)
    return sock


def closed_with(sock: socket.socket, within: float) -> tuple[float, list[dict]]:
    """Wait until the server closes `sock`: (seconds waited, the msgpack replies it sent)."""
    start, data = time.perf_counter(), b""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise Misbehaved(f"the server kept an abusive connection open for more than {within} s") from None
    finally:
        sock.close()
    replies = []
    while len(data) >= 2:  # server frames are unmasked
        opcode, length, begin = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, begin = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, begin = int.from_bytes(data[2:10], "big"), 10
        if begin + length > len(data):
            break
        if opcode == 2:
            replies.append(unpackb(data[begin:begin + length]))
        data = data[begin + length:]
    return time.perf_counter() - start, replies


def ask_raw(url: str, data: bytes, timeout: float = 30.0) -> tuple[dict, float]:
    """(reply, seconds) for one raw binary message on a fresh websocket connection."""
    from websockets.sync.client import connect

    with connect(url, proxy=None, compression=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=5))  # metadata
        start = time.perf_counter()
        ws.send(data)
        return unpackb(ws.recv(timeout=timeout)), time.perf_counter() - start


def expect_refused(url: str, data: bytes, code: str, says: str, within: float = 1.0) -> None:
    reply, seconds = ask_raw(url, data)
    error = reply.get("error") or {}
    expect(error.get("code") == code and says in str(error.get("message")),
           f"expected {code!r} saying {says!r}, got {str(reply)[:300]}")
    expect(seconds < within, f"refusing took {seconds:.2f} s (> {within} s)")


def tiny_maps(total_bytes: int) -> bytes:
    """One msgpack array of empty maps filling `total_bytes`: a million dicts per MB when decoded naively."""
    n = total_bytes - 5
    return b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n


def nested(depth: int) -> bytes:
    return b"\x82\xa4type\xa6health\xa1x" + b"\x91" * depth + b"\xc0"  # {"type": "health", "x": [[...[nil]...]]}


class Prober:
    """A good client that plans steps in a background thread and records each step's latency."""

    def __init__(self, url: str, period: float = 0.01) -> None:
        self.url, self.period, self.latency, self.error = url, period, [], None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with PlannerClient(self.url, timeout=10, retries=0) as client:
                client.set_goal(frame())
                while not self._stop.is_set():
                    start = time.perf_counter()
                    client.infer({"image": frame(), "state": STATE})
                    self.latency.append(time.perf_counter() - start)
                    time.sleep(self.period)
        except Exception as err:  # noqa: BLE001 - reported by stop()
            self.error = err

    def __enter__(self) -> "Prober":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)

    def check(self, bound: float) -> None:
        expect(self.error is None, f"the good client failed: {type(self.error).__name__}: {self.error}")
        expect(len(self.latency) > 0, "the good client got no reply at all")
        expect(max(self.latency) < bound, f"the good client waited {max(self.latency):.2f} s for a step (> {bound} s)")


# -- attacks --------------------------------------------------------------------------------------
ATTACKS: dict[str, Callable[[], str]] = {}


def attack(fn: Callable[[], str]) -> Callable[[], str]:
    ATTACKS[fn.__name__] = fn
    return fn


@attack
def many_tiny_maps() -> str:
    server = start_server()  # the default 16 MiB message limit
    try:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with Prober(server.server.url) as prober:
            time.sleep(0.1)
            expect_refused(server.server.url, tiny_maps(server.server.config.max_message_bytes), "bad_message",
                           "objects", within=2.0)
            time.sleep(0.1)
        prober.check(bound=1.0)
        grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
        expect(grew < 300, f"peak memory grew by {grew:.0f} MB")
        return f"16 MiB of empty maps refused; peak memory +{grew:.0f} MB; good client max {max(prober.latency) * 1e3:.0f} ms"
    finally:
        server.stop()


@attack
def million_nils() -> str:
    server = start_server()
    try:
        expect_refused(server.server.url, msgpack.packb({"type": "health", "x": [[None] * 1000] * 1000}),
                       "bad_message", "objects")
        expect_refused(server.server.url, msgpack.packb({"type": "health", "x": [1.5] * 100_000}),
                       "bad_message", "objects")
        good_round_trip(server.server.url)
        return "a million nils and 100k floats refused"
    finally:
        server.stop()


@attack
def deep_nesting() -> str:
    server = start_server()
    try:
        for depth in (20, 1000, 100_000):
            expect_refused(server.server.url, nested(depth), "bad_message", "deeper than")
        good_round_trip(server.server.url)
        return "nesting 20, 1000 and 100000 deep refused"
    finally:
        server.stop()


@attack
def huge_declared_lengths() -> str:
    server = start_server()
    try:
        url = server.server.url
        for data in (b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\x81\xa4type\xc6\xff\xff\xff\xf0",
                     b"\x81\xa4type\xdb\x7f\xff\xff\xff", b"\x81\xa4type\xdc\xff\xff" + b"\xc0" * 100):
            expect_refused(url, data, "bad_message", "declares")
        image = {"__ndarray__": b"", "dtype": "|u1", "shape": [2**33, 2**31, 3]}  # int64 product wraps to 0
        expect_refused(url, msgpack.packb({"type": "set_goal", "image": image}), "bad_message", "needs")
        good_round_trip(url)
        return "array/map/bin/str headers declaring up to 4 G and a wrapping array shape refused"
    finally:
        server.stop()


@attack
def odd_msgpack() -> str:
    server = start_server()
    try:
        url = server.server.url
        for data, says in ((msgpack.packb({"type": "health", "t": msgpack.Timestamp(0)}), "extension"),
                           (msgpack.packb({"type": "health", "x": msgpack.ExtType(5, b"\0" * 100)}), "extension"),
                           (b"\xc1", "invalid msgpack type byte"), (packb({"type": "health"}) + b"\0", "extra data"),
                           (b"\x81\xa4type\xa2\xff\xfe", "not valid msgpack"), (msgpack.packb({1: 2}), "not valid"),
                           (msgpack.packb({"type": "y" * 100_000}), "string of 100000 bytes")):
            expect_refused(url, data, "bad_message", says)
        good_round_trip(url)
        return "extension types, invalid bytes, trailing data, bad UTF-8, int keys, long strings refused"
    finally:
        server.stop()


@attack
def half_frame_stall() -> str:
    # every slot of a default-sized server held by clients that sent half a frame, from 4 addresses
    server = start_server(message_timeout_s=1.0)
    try:
        port, url = server.server.port, server.server.url
        stallers = [half_frame(port, f"127.0.0.{2 + i % 4}") for i in range(8)]
        time.sleep(0.1)
        waited = served_within(url, bound=1.0 + 2.0)
        for sock in stallers:
            _, replies = closed_with(sock, within=5.0)
            expect(any((r.get("error") or {}).get("code") == "message_timeout" for r in replies),
                   f"a staller got no message_timeout error: {replies}")
        return f"8 stalled half frames held every slot; a good client was served after {waited:.2f} s"
    finally:
        server.stop()


@attack
def fragmented_stall() -> str:
    server = start_server(message_timeout_s=1.0)
    try:
        sock = upgraded(server.server.port)
        sock.sendall(frame_header(5, fin=False) + b"\x82\xa4ty")  # a complete first fragment, no FIN, then nothing
        waited, replies = closed_with(sock, within=6.0)
        expect(any((r.get("error") or {}).get("code") == "message_timeout" for r in replies), f"replies: {replies}")
        good_round_trip(server.server.url)
        return f"an unfinished fragmented message was dropped after {waited:.1f} s"
    finally:
        server.stop()


@attack
def slow_drip() -> str:
    server = start_server(message_timeout_s=1.0)
    try:
        sock = upgraded(server.server.port)
        message = packb({"type": "health"}) * 20
        data = frame_header(len(message)) + message
        start = time.perf_counter()
        try:
            for byte in data:  # one byte every 50 ms: the message would take ~10 s
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:
            pass  # dropped
        dropped_after = time.perf_counter() - start
        expect(dropped_after < 5.0, f"a 1-byte-per-50-ms sender was kept for {dropped_after:.1f} s")
        sock.close()
        good_round_trip(server.server.url)
        return f"a slow-drip sender was dropped after {dropped_after:.1f} s"
    finally:
        server.stop()


@attack
def one_address_crowd() -> str:
    server = start_server(message_timeout_s=30.0)
    try:
        port, url = server.server.port, server.server.url
        per = server.server.config.max_connections_per_address
        held, refused = [], 0
        for _ in range(20):
            sock = upgraded(port, "127.0.0.2")
            sock.settimeout(0.5)
            try:
                first = sock.recv(65536)
            except socket.timeout:
                first = b""
            if b"too_many_connections" in first:
                refused += 1
                sock.close()
            else:
                held.append(sock)
        expect(len(held) <= per, f"one address holds {len(held)} connections (> {per})")
        waited = good_round_trip(url)
        for sock in held:
            sock.close()
        return f"20 connections from one address: {len(held)} held, {refused} refused; a good client served in {waited:.2f} s"
    finally:
        server.stop()


@attack
def bare_tcp_flood() -> str:
    server = start_server(handshake_timeout_s=1.0)
    try:
        port, url = server.server.port, server.server.url
        socks = [tcp(port, "127.0.0.3") for _ in range(50)]  # never send the HTTP upgrade
        time.sleep(0.3)
        held = server.server._tcp.get("127.0.0.3", 0)
        cap = 2 * server.server.config.max_connections_per_address
        expect(held <= cap, f"the server holds {held} bare TCP connections from one address (> {cap})")
        good_round_trip(url)
        for sock in socks:
            closed_with(sock, within=5.0)  # the rest time out of the handshake
        return f"50 bare TCP connections from one address: {held} held until the handshake timeout, the rest dropped"
    finally:
        server.stop()


@attack
def idle_connection() -> str:
    server = start_server(idle_timeout_s=1.0)
    try:
        sock = upgraded(server.server.port)
        waited, replies = closed_with(sock, within=6.0)
        expect(replies and (replies[-1].get("error") or {}).get("code") == "idle_timeout", f"replies: {replies}")
        good_round_trip(server.server.url)
        return f"an idle connection was closed after {waited:.1f} s with idle_timeout"
    finally:
        server.stop()


@attack
def never_reads() -> str:
    server = start_server(message_timeout_s=1.0)
    try:
        sock = upgraded(server.server.port, rcvbuf=4096)
        sock.settimeout(2.0)
        request = packb({"type": "metadata"})
        try:
            for _ in range(20000):
                sock.sendall(frame_header(len(request)) + request)
        except OSError:
            pass
        deadline = time.perf_counter() + 6
        while server.server._sessions and time.perf_counter() < deadline:
            time.sleep(0.05)
        expect(not server.server._sessions, "a client that never reads its replies still holds its slot after 6 s")
        sock.close()
        good_round_trip(server.server.url)
        return "a client that never reads its replies was dropped"
    finally:
        server.stop()


@attack
def bad_request_flood() -> str:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logging.getLogger("jepa_ac.serve").addHandler(handler)
    server = start_server()
    try:
        url = server.server.url
        bad = [b"\xc1", nested(50), msgpack.packb({"type": "teleport"}), msgpack.packb([1, 2]),
               packb({"type": "infer", "image": frame(), "state": np.full(7, np.nan, np.float32)})]

        def flood() -> None:
            from websockets.sync.client import connect

            with connect(url, proxy=None, compression=None) as ws:
                ws.recv(timeout=5)
                for i in range(400):
                    ws.send(bad[i % len(bad)])
                    ws.recv(timeout=10)

        with Prober(url) as prober:
            floods = [threading.Thread(target=flood) for _ in range(3)]
            for t in floods:
                t.start()
            for t in floods:
                t.join(60)
        prober.check(bound=1.0)
        expect(server.server.errors >= 1200, f"only {server.server.errors} errors answered")
        expect(len(records) < 50, f"{len(records)} warnings logged for 1200 bad requests")
        return f"1200 bad requests answered, {len(records)} warnings logged; good client max {max(prober.latency) * 1e3:.0f} ms"
    finally:
        server.stop()


@attack
def oversize_frame_header() -> str:
    server = start_server()
    try:
        sock = upgraded(server.server.port)
        sock.sendall(frame_header(2**62))  # declares 4 EiB
        waited, _ = closed_with(sock, within=3.0)
        good_round_trip(server.server.url)
        return f"a frame declaring 2^62 bytes was closed after {waited:.2f} s"
    finally:
        server.stop()


@attack
def protocol_mismatch() -> str:
    class FutureServer(PlanningServer):
        def _metadata(self, session) -> dict:
            return {**super()._metadata(session), "protocol": PROTOCOL_VERSION + 1}

    with ServerThread(FutureServer(StubPolicy, ServerConfig(host=HOST, port=0))) as url:
        start = time.perf_counter()
        try:
            PlannerClient(url, retries=3, backoff_s=2.0)
        except PlannerError as err:
            expect(err.code == "protocol_mismatch" and f"protocol {PROTOCOL_VERSION + 1}" in err.message
                   and f"protocol {PROTOCOL_VERSION}" in err.message,
                   f"unclear refusal: {err}")
            expect(time.perf_counter() - start < 2.0, "the client retried a protocol mismatch")
            return f"refused: {err.message}"
        raise Misbehaved(f"the client accepted a server of protocol {PROTOCOL_VERSION + 1}")


@attack
def nan_action_policy() -> str:
    cases = [(functools.partial(StubPolicy, action=[0.01, np.nan, 0, 0, 0, 0, 0]), "action"),
             (functools.partial(StubPolicy, energy=float("inf")), "energy")]
    for policy, says in cases:
        with ServerThread(PlanningServer(policy, ServerConfig(host=HOST, port=0))) as url, PlannerClient(url) as client:
            client.set_goal(frame())
            try:
                out = client.infer({"image": frame(), "state": STATE})
                raise Misbehaved(f"a non-finite {says} came back as an action: {out}")
            except PlannerError as err:
                expect(err.code == "non_finite" and says in err.message, f"unclear refusal: {err}")
            expect(client.health()["status"] == "ok", "the server stopped answering")
    return "NaN action and inf energy answered with non_finite"


@attack
def nan_weights_model() -> str:
    import torch

    import jepa_ac
    from jepa_ac.planning import CEMConfig
    from jepa_ac.serving.server import make_planning_policy_factory

    wm = jepa_ac.load_world_model(REPO / "jepa_ac/assets/default_model", device="cpu")
    with torch.no_grad():
        for p in wm.backend.modules["predictor"].parameters():
            p.fill_(float("nan"))
    make = make_planning_policy_factory(wm, CEMConfig(samples=16, iterations=1, topk=4, horizon=1, seed=0))
    with ServerThread(PlanningServer(make, ServerConfig(host=HOST, port=0))) as url, PlannerClient(url) as client:
        client.set_goal(frame(64))
        try:
            out = client.infer({"image": frame(64), "state": STATE})
            raise Misbehaved(f"a NaN-weight model's plan came back as an action: {out}")
        except PlannerError as err:
            expect(err.code == "non_finite" and "energy" in err.message, f"unclear refusal: {err}")
            refusal = err.message
        expect(client.health()["status"] == "ok", "the server stopped answering")
        return f"refused: {refusal[:100]}"


@attack
def openpi_arrays() -> str:
    def openpi(array: np.ndarray) -> dict:  # openpi-client 0.1.2's msgpack_numpy.pack_array
        return {b"__ndarray__": True, b"data": array.tobytes(), b"dtype": array.dtype.str, b"shape": array.shape}

    server = start_server()
    try:
        url = server.server.url
        reply, _ = ask_raw(url, msgpack.packb({"type": "set_goal", "image": openpi(frame())}))
        expect("error" not in reply, f"an openpi-encoded goal was refused: {reply}")
        pickle = {b"__ndarray__": True, b"data": b"\x80\x04\x95", b"dtype": "|O", b"shape": [1]}
        expect_refused(url, msgpack.packb({"type": "set_goal", "image": pickle}), "bad_message", "not allowed")
        return "openpi arrays accepted, an object-dtype one refused"
    finally:
        server.stop()


@attack
def cli_under_attack() -> str:
    """The shipped default model behind `python -m jepa_ac.serve`, attacked, then asked to plan."""
    cmd = [sys.executable, "-m", "jepa_ac.serve", "--checkpoint", str(REPO / "jepa_ac/assets/default_model"),
           "--port", "0", "--samples", "16", "--iterations", "1", "--topk", "4", "--message-timeout", "1",
           "--log-level", "ERROR"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        expect(line.startswith("listening on ws://127.0.0.1:"), f"the CLI did not start: {line!r} {proc.stderr.read()[-500:] if proc.poll() is not None else ''}")
        url = line.split()[-1]
        port = int(url.rsplit(":", 1)[1])
        stallers = [half_frame(port, f"127.0.0.{2 + i % 4}") for i in range(6)]
        expect_refused(url, tiny_maps(16 * 2**20), "bad_message", "objects", within=2.0)
        expect_refused(url, nested(5000), "bad_message", "deeper than")
        with PlannerClient(url, timeout=60) as client:
            client.set_goal(frame(64))
            out = client.infer({"image": frame(64), "state": STATE})
            expect(np.all(np.isfinite(out["action"])) and np.isfinite(out["energy"]), f"bad plan {out}")
        for sock in stallers:
            closed_with(sock, within=6.0)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    expect(proc.returncode == 0 and "planning server stopped" in out, f"the CLI did not stop cleanly: {err[-500:]}")
    expect("Traceback" not in err, f"the CLI logged a traceback: {err[-800:]}")
    return "the CLI refused hostile messages, dropped stallers, planned a finite action and stopped cleanly"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("attack", nargs="?", choices=sorted(ATTACKS))
    parser.add_argument("--list", action="store_true", help="print the attacks' names")
    args = parser.parse_args(argv)
    if args.list or args.attack is None:
        print("\n".join(sorted(ATTACKS)))
        return
    try:
        print(ATTACKS[args.attack]())
    except Misbehaved as err:
        print(f"server misbehaved: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
