"""Abusive clients against the planning server: hostile msgpack, stalled and crowding connections,
a client of another protocol version, and a model that plans NaN. Each case checks that the abuse
is refused quickly with a clear error and that a well-behaved client is still served."""

from __future__ import annotations

import base64
import functools
import json
import os
import resource
import socket
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from jepa_ac.serving.client import PlannerClient, PlannerError
from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread
from jepa_ac.serving.wire import PROTOCOL_VERSION, DecodeLimits, WireError, packb, unpackb

pytestmark = pytest.mark.adversarial

ROOT = Path(__file__).resolve().parents[1]
STATE = np.array([0.45, 0.0, 0.3, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)


class StubPolicy:
    """Returns `action` and `energy` as given (NaN included); `raises` is raised by infer if set."""

    def __init__(self, action=(0.01, 0, 0, 0, 0, 0, 0), energy=1.0, raises: BaseException | None = None) -> None:
        self.action, self.energy, self.raises = np.asarray(action, np.float32), energy, raises

    def reset(self) -> None:
        pass

    def set_goal(self, goal, gripper=None) -> None:
        pass

    def infer(self, obs) -> dict:
        if self.raises is not None:
            raise self.raises
        return {"action": self.action, "energy": self.energy, "timing": {}}

    def metadata(self) -> dict:
        return {"name": "stub"}


def start(policy=StubPolicy, **config) -> ServerThread:
    thread = ServerThread(PlanningServer(policy, ServerConfig(**{"port": 0, **config})))
    thread.start()
    return thread


def frame(size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), 100, dtype=np.uint8)


def good_client_round_trip(url: str) -> float:
    """Seconds for a fresh well-behaved client to connect, set a goal and plan one step."""
    start_t = time.perf_counter()
    with PlannerClient(url, timeout=5, retries=0) as client:
        client.set_goal(frame())
        assert client.infer({"image": frame(), "state": STATE})["action"].shape == (7,)
    return time.perf_counter() - start_t


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll `condition()` (the server's handler tasks may lag behind our sockets on a busy machine)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "timed out waiting for the server"
        time.sleep(0.01)


def ask(url: str, data: bytes) -> tuple[dict, float]:
    """(reply, seconds) for one raw message on a fresh connection."""
    with connect(url, proxy=None, compression=None, max_size=None) as ws:
        unpackb(ws.recv(timeout=5))  # metadata
        start_t = time.perf_counter()
        ws.send(data)
        reply = unpackb(ws.recv(timeout=30))
        return reply, time.perf_counter() - start_t


# -- raw sockets: what a websocket library would never send ------------------------------------------
def tcp(port: int, source: str = "127.0.0.1", rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection to the server from `source` (any 127.x.y.z address is loopback on Linux)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so that the receive window stays small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def upgraded(port: int, source: str = "127.0.0.1", rcvbuf: int | None = None) -> socket.socket:
    """A raw socket past the websocket handshake (the server's metadata is left unread)."""
    sock = tcp(port, source, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: the server's first frame may follow at once
        chunk = sock.recv(1)
        assert chunk, "the server closed the connection during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response[:100]
    return sock


def half_frame(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection that declares a 1000-byte binary frame, sends 10 bytes of it and stalls."""
    sock = upgraded(port, source)
    sock.sendall(bytes([0x82, 0x80 | 126]) + (1000).to_bytes(2, "big") + b"\0\0\0\0" + b"x" * 10)
    return sock


def closed_with(sock: socket.socket, within: float) -> tuple[float, list[dict]]:
    """Wait until the server closes `sock`: (seconds waited, the msgpack replies it sent meanwhile)."""
    start_t, data = time.perf_counter(), b""
    sock.settimeout(within)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail(f"the server kept a stalled connection open for more than {within} s")
    finally:
        sock.close()
    replies = []
    while len(data) >= 2:  # server frames: unmasked, short
        opcode, length, start = data[0] & 0x0F, data[1] & 0x7F, 2
        if length == 126:
            length, start = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, start = int.from_bytes(data[2:10], "big"), 10
        if start + length > len(data):
            break
        if opcode == 2:
            replies.append(unpackb(data[start:start + length]))
        data = data[start + length:]
    return time.perf_counter() - start_t, replies


# -- hostile msgpack ----------------------------------------------------------------------------------
def test_many_tiny_maps_refused_in_milliseconds_with_bounded_memory():
    """8 MiB of empty maps: msgpack alone builds 8 million dicts (seconds, ~0.6 GB) in the event loop."""
    thread = start(max_message_bytes=8 * 2**20)
    try:
        n = 8 * 2**20 - 16
        hostile = b"\xdd" + n.to_bytes(4, "big") + b"\x80" * n
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        probe_latency = []

        def probe() -> None:  # another client's health checks while the hostile message is handled
            with PlannerClient(thread.server.url, timeout=5) as client:
                for _ in range(20):
                    t = time.perf_counter()
                    client.health()
                    probe_latency.append(time.perf_counter() - t)
                    time.sleep(0.01)

        prober = threading.Thread(target=probe)
        prober.start()
        reply, seconds = ask(thread.server.url, hostile)
        prober.join(10)
        grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert reply["error"]["code"] == "bad_message" and "objects" in reply["error"]["message"], reply
        assert seconds < 1.0, f"refusing took {seconds:.2f} s"
        assert grew_mb < 200, f"peak memory grew by {grew_mb:.0f} MB"
        assert len(probe_latency) == 20 and max(probe_latency) < 1.0, probe_latency
        assert good_client_round_trip(thread.server.url) < 2.0
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def server():
    thread = start(max_message_bytes=2**20)
    yield thread
    thread.stop()


def nested(depth: int) -> bytes:
    return b"\x82\xa4type\xa6health\xa1x" + b"\x91" * depth + b"\xc0"  # {"type": "health", "x": [[...[nil]...]]}


@pytest.mark.parametrize("data,says", [
    (nested(100), "deeper than 16"),
    (nested(100_000), "deeper than 16"),  # msgpack's own limit (1024) answers "StackError: " and nothing else
    (msgpack.packb({"type": "health", "x": [[None] * 1000] * 1000}), "objects"),  # 1 MB, a million nils
    (msgpack.packb({"type": "health", "x": [{}] * 5000}), "objects"),
])
def test_deep_or_wide_messages_refused(server, data, says):
    reply, seconds = ask(server.server.url, data)
    assert reply["error"]["code"] == "bad_message" and says in reply["error"]["message"], reply
    assert seconds < 1.0
    assert good_client_round_trip(server.server.url) < 2.0


@pytest.mark.parametrize("data,says", [
    (b"\xdd\xff\xff\xff\xff", "declares 4294967295 entries but only 0 bytes follow"),  # array32
    (b"\xdf\xff\xff\xff\xff", "declares 4294967295 entries but only 0 bytes follow"),  # map32
    (b"\x81\xa4type\xc6\xff\xff\xff\xf0", "declares 4294967280 bytes but only 0 follow"),  # bin32
    (b"\x81\xa4type\xdb\x7f\xff\xff\xff", "declares 2147483647 bytes"),  # str32
    (b"\x81\xa4type\xdc\xff\xff" + b"\xc0" * 2000, "declares 65535 entries but only 2000 bytes follow"),
    (msgpack.packb({"type": "set_goal", "image": {"__ndarray__": b"", "dtype": "|u1", "shape": [2**33, 2**31, 3]}}),
     "needs 55340232221128654848 bytes, got 0"),  # the int64 product wraps to 0 = the byte count
    (msgpack.packb({"type": "x" * 70_000}), "string of 70000 bytes"),
    (msgpack.packb({"type": "health", "t": msgpack.Timestamp(0)}), "extension types"),
])
def test_huge_declared_lengths_refused_with_what_was_declared(server, data, says):
    reply, seconds = ask(server.server.url, data)
    assert reply["error"]["code"] == "bad_message" and says in reply["error"]["message"], reply
    assert seconds < 1.0
    assert good_client_round_trip(server.server.url) < 2.0


def test_openpi_msgpack_numpy_arrays_accepted_and_checked(server):
    def openpi(array: np.ndarray) -> dict:  # openpi-client 0.1.2's msgpack_numpy.pack_array
        return {b"__ndarray__": True, b"data": array.tobytes(), b"dtype": array.dtype.str, b"shape": array.shape}

    with connect(server.server.url, proxy=None, compression=None) as ws:
        unpackb(ws.recv(timeout=5))
        for request in ({"type": "set_goal", "image": openpi(frame())},
                        {"type": "infer", "image": openpi(frame()), "state": openpi(STATE)}):
            ws.send(msgpack.packb(request))
            reply = unpackb(ws.recv(timeout=5))
            assert "error" not in reply, reply
        assert reply["action"].shape == (7,)
        bad = {b"__ndarray__": True, b"data": b"\x80\x03N.", b"dtype": "|O", b"shape": [1]}  # a pickle
        ws.send(msgpack.packb({"type": "set_goal", "image": bad}))
        reply = unpackb(ws.recv(timeout=5))
        assert reply["error"]["code"] == "bad_message" and "not allowed" in reply["error"]["message"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_wire_error(data):
    try:
        unpackb(data, DecodeLimits(max_objects=64, max_depth=4, max_str_bytes=16))
    except WireError:
        pass


plain = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False)
                     | st.text(max_size=8) | st.binary(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                     max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_the_header_walk_accepts_what_packb_writes(value):
    assert unpackb(packb(value)) == value


# -- stalled and crowding connections -----------------------------------------------------------------
def test_stalled_half_frames_cannot_starve_a_good_client():
    """Every slot held by a client that sent half a frame: each is dropped after message_timeout_s
    with an error reply, and a good client is served within that bound."""
    thread = start(max_connections=4, max_connections_per_address=2, message_timeout_s=0.5)
    try:
        port, url = thread.server.port, thread.server.url
        stallers = [half_frame(port, source) for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3")]
        stalled_at = time.perf_counter()
        wait_until(lambda: len(thread.server._sessions) == 4, timeout=0.4)
        with pytest.raises(PlannerError, match="too_many_connections"):
            PlannerClient(url, retries=0)
        while True:  # what a robot would do: try again shortly
            try:
                good_client_round_trip(url)
                break
            except PlannerError as err:
                assert err.code == "too_many_connections"
                assert time.perf_counter() - stalled_at < 3.0, "stalled clients held every slot for 3 s"
                time.sleep(0.05)
        assert time.perf_counter() - stalled_at < 0.5 + 1.0
        for sock in stallers:
            _, replies = closed_with(sock, within=3.0)
            assert any(r.get("error", {}).get("code") == "message_timeout" for r in replies), replies
    finally:
        thread.stop()


def test_one_address_cannot_take_every_slot():
    thread = start(max_connections=6, max_connections_per_address=2, message_timeout_s=30, handshake_timeout_s=30)
    try:
        port, url = thread.server.port, thread.server.url
        held = [upgraded(port, "127.0.0.2") for _ in range(2)]  # idle, within the per-address budget
        wait_until(lambda: len(thread.server._sessions) == 2)
        third = upgraded(port, "127.0.0.2")
        _, replies = closed_with(third, within=5.0)
        assert replies and replies[0]["error"]["code"] == "too_many_connections"
        assert "from one address (127.0.0.2)" in replies[0]["error"]["message"]
        # bare TCP connections that never start a handshake: twice the budget, then dropped unanswered
        wait_until(lambda: thread.server._tcp.get("127.0.0.2") == 2)
        bare = [tcp(port, "127.0.0.2") for _ in range(2)]
        wait_until(lambda: thread.server._tcp.get("127.0.0.2") == 4)
        extra = tcp(port, "127.0.0.2")
        waited, _ = closed_with(extra, within=2.0)
        assert waited < 1.0
        assert good_client_round_trip(url) < 2.0  # another address is served at once
        for sock in held + bare:
            sock.close()
    finally:
        thread.stop()


def test_silent_handshakes_and_idle_connections_are_closed():
    thread = start(handshake_timeout_s=0.5, idle_timeout_s=0.5)
    try:
        port = thread.server.port
        silent = tcp(port)  # never sends the HTTP upgrade
        idle = upgraded(port)  # takes the metadata, then sends nothing
        time.sleep(1.0)
        with PlannerClient(thread.server.url) as client:
            assert client.health()["connections"] == 1  # the idle one's slot is free
        waited, _ = closed_with(silent, within=3.0)
        # the idle one was sent the error and a close frame; it does not answer the close, so the
        # server drops the TCP connection after its close timeout (2 s)
        waited, replies = closed_with(idle, within=3.0)
        assert replies[-1]["error"]["code"] == "idle_timeout", replies
        assert good_client_round_trip(thread.server.url) < 2.0
    finally:
        thread.stop()


def test_client_that_never_reads_is_dropped(caplog):
    thread = start(message_timeout_s=0.5)
    try:
        sock = upgraded(thread.server.port, rcvbuf=4096)
        sock.settimeout(2.0)
        wait_until(lambda: len(thread.server._sessions) == 1)
        request = packb({"type": "metadata"})
        frame_bytes = bytes([0x82, 0x80 | len(request)]) + b"\0\0\0\0" + request
        try:  # replies it never reads: the socket buffers fill and the server's send stalls
            for _ in range(20000):
                sock.sendall(frame_bytes)
        except OSError:
            pass  # our own send stalled (the server stopped reading) or the server dropped us
        wait_until(lambda: not thread.server._sessions, timeout=5.0)
        assert "took no reply" in caplog.text
        sock.close()
        assert good_client_round_trip(thread.server.url) < 2.0
    finally:
        thread.stop()


# -- protocol version ---------------------------------------------------------------------------------
class OtherVersionServer(PlanningServer):
    def __init__(self, version, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.version = version

    def _metadata(self, session) -> dict:
        meta = super()._metadata(session)
        if self.version is None:
            del meta["protocol"]
        else:
            meta["protocol"] = self.version
        return meta


@pytest.mark.parametrize("version,says", [(PROTOCOL_VERSION + 1, f"speaks planning protocol {PROTOCOL_VERSION + 1}, "
                                                                 f"this client speaks protocol {PROTOCOL_VERSION}"),
                                          (None, "speaks planning protocol None"), (True, "protocol True")])
def test_client_refuses_another_protocol_version(version, says):
    with ServerThread(OtherVersionServer(version, StubPolicy, ServerConfig(port=0))) as url:
        start_t = time.perf_counter()
        with pytest.raises(PlannerError, match="protocol_mismatch") as info:
            PlannerClient(url, retries=3, backoff_s=5.0)  # not retried
        assert says in str(info.value)
        assert time.perf_counter() - start_t < 2.0


# -- non-finite policy output -------------------------------------------------------------------------
@pytest.mark.parametrize("policy,says", [
    (functools.partial(StubPolicy, energy=float("nan")), "non-finite energy (nan)"),
    (functools.partial(StubPolicy, action=[0.01, np.nan, 0, 0, 0, 0, 0]), "non-finite action [0.01, nan"),
    (functools.partial(StubPolicy, energy=float("inf"), action=[np.inf] * 7), "energy (inf) and action [inf"),
    (functools.partial(StubPolicy, raises=FloatingPointError("overflow in matmul")), "overflow in matmul"),
])
def test_non_finite_policy_output_is_an_error_never_an_action(policy, says):
    with ServerThread(PlanningServer(policy, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        client.set_goal(frame())
        with pytest.raises(PlannerError, match="non_finite") as info:
            client.infer({"image": frame(), "state": STATE})
        assert says in str(info.value)
        assert client.health()["status"] == "ok"


def test_model_with_nan_weights_served_answers_non_finite():
    torch = pytest.importorskip("torch")
    import jepa_ac
    from jepa_ac.planning import CEMConfig
    from jepa_ac.serving.server import make_planning_policy_factory

    arch = json.loads((ROOT / "tests/fixtures/vjepa2_ac_tiny.json").read_text())
    wm = jepa_ac.load_world_model(ROOT / "tests/fixtures/vjepa2_ac_tiny.pt", encoder=arch["encoder"],
                                  predictor=arch["predictor"], device="cpu")
    with torch.no_grad():
        for p in wm.backend.modules["predictor"].parameters():
            p.fill_(float("nan"))
    make = make_planning_policy_factory(wm, CEMConfig(samples=16, iterations=2, topk=4, horizon=1, seed=0))
    with ServerThread(PlanningServer(make, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        client.set_goal(frame(64))
        with pytest.raises(PlannerError, match="non_finite") as info:
            client.infer({"image": frame(64), "state": STATE})
        assert "energy" in str(info.value)
