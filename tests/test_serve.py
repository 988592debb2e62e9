"""Planning server + client: wire codec, protocol, bad inputs, isolation between clients, reconnects,
and the same actions through the server as in-process (tiny real model; MuJoCo episode)."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from jepa_ac.serving.client import PlannerClient, PlannerConnectionError, PlannerError, PlannerTimeout
from jepa_ac.robot.safety import SafetyConfig, SafetyLayer
from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread
from jepa_ac.serve import build_parser
from jepa_ac.serving.wire import PROTOCOL_VERSION, WireError, packb, unpackb

ROOT = Path(__file__).resolve().parents[1]
STATE = np.array([0.45, 0.0, 0.3, np.pi, 0.0, 0.0, 0.0], dtype=np.float32)
BOOM = 13  # a frame whose first pixel is 13 makes FakePolicy raise


class FakePolicy:
    """Deterministic stand-in for PlanningPolicy: the action depends on goal, frame, state and call count."""

    def __init__(self, delay: float = 0.0, action: np.ndarray | None = None) -> None:
        self.delay, self.fixed = delay, action
        self.goal_mean: float | None = None
        self.goal_gripper: float | None = None
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        self.goal_mean, self.goal_gripper = float(goal.mean()), gripper

    def infer(self, obs: dict) -> dict:
        if obs["image"][0, 0, 0] == BOOM:
            raise RuntimeError("planner exploded")
        time.sleep(self.delay)
        self.calls += 1
        if self.fixed is not None:
            action = self.fixed
        else:
            action = np.array([self.goal_mean / 2550, float(obs["image"].mean()) / 2550, 0.01 * obs["state"][0],
                               0, 0, 0, 0.001 * self.calls], dtype=np.float32)
        return {"action": action, "energy": float(self.calls), "timing": {"plan_s": self.delay, "total_s": self.delay}}

    def metadata(self) -> dict:
        return {"name": "fake", "delay": self.delay, "path": Path("/x")}


def start(policy=FakePolicy, safety=None, **config) -> ServerThread:
    thread = ServerThread(PlanningServer(policy, ServerConfig(**{"port": 0, **config}), safety))
    thread.start()
    return thread


def frame(value: int = 100, size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), value, dtype=np.uint8)


def raw_connect(url: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = connect(url, additional_headers=headers, proxy=None, compression=None, max_size=None).__enter__()
    return ws, unpackb(ws.recv(timeout=5))


def ask(ws, data) -> dict:
    ws.send(data)
    return unpackb(ws.recv(timeout=5))


@pytest.fixture(scope="module")
def server():
    thread = start(max_message_bytes=64 * 1024, max_image_side=96)
    yield thread
    thread.stop()


@pytest.fixture
def watcher(server):
    """A well-behaved client connected throughout; it must keep being served."""
    client = PlannerClient(server.server.url, timeout=5)
    client.set_goal(frame(50))
    yield client
    out = client.infer({"image": frame(), "state": STATE})
    assert out["action"].shape == (7,) and client.health()["status"] == "ok"
    client.close()


# -- wire ------------------------------------------------------------------------------------------
def test_wire_round_trip_dtypes_and_nesting():
    message = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3), "u8": np.zeros((0, 4, 3), np.uint8),
        "be": np.arange(3, dtype=">i4"), "b": np.array([True, False]), "c": np.array(1 + 2j),
        "scalar": np.float64(2.5), "nested": [{"x": np.int16(-3)}, "s", None, b"raw"],
        "strided": np.arange(12, dtype=np.float64).reshape(3, 4)[:, ::2],
    }
    back = unpackb(packb(message))
    for key in ("f32", "u8", "be", "b", "c", "strided"):
        assert back[key].dtype == message[key].dtype and back[key].shape == message[key].shape
        np.testing.assert_array_equal(back[key], message[key])
    assert back["scalar"] == 2.5 and back["nested"] == [{"x": -3}, "s", None, b"raw"]
    back["f32"][0, 0] = 9.0  # writable


def test_wire_refuses_unsafe_or_malformed():
    with pytest.raises(WireError, match="not allowed"):
        packb({"a": np.array([object()], dtype=object)})
    with pytest.raises(TypeError, match="cannot send set"):
        packb({"a": {1, 2}})

    def encoded(**fields):
        return msgpack.packb({"__ndarray__": b"\0" * 8, "dtype": "<f4", "shape": [2], **fields})

    assert unpackb(encoded()).shape == (2,)
    for fields, match in [
        ({"dtype": "|O"}, "not allowed"), ({"dtype": "|V8"}, "not allowed"), ({"dtype": "<U2"}, "not allowed"),
        ({"dtype": "float99"}, "unknown array dtype"), ({"shape": [3]}, "needs 12 bytes, got 8"),
        ({"shape": [-2]}, "non-negative ints"), ({"shape": "2"}, "non-negative ints"), ({"extra": 1}, "exactly the keys"),
    ]:
        with pytest.raises(WireError, match=match):
            unpackb(encoded(**fields))
    for junk in (b"\xc1", b"\x92\x01", packb([1]) + b"\x00", "text"):
        with pytest.raises(WireError):
            unpackb(junk)


# -- protocol --------------------------------------------------------------------------------------
def test_metadata_goal_infer_and_request_ids(server):
    with PlannerClient(server.server.url) as client:
        meta = client.metadata()
        assert meta["protocol"] == PROTOCOL_VERSION and meta["policy"] == {"name": "fake", "delay": 0.0, "path": "/x"}
        assert meta["max_message_bytes"] == 64 * 1024
        with pytest.raises(PlannerError, match="no_goal"):
            client.infer({"image": frame(), "state": STATE})
        client.set_goal(frame(51))
        out = client.infer({"image": frame(102), "state": STATE})
        np.testing.assert_allclose(out["action"], [0.02, 0.04, 0.0045, 0, 0, 0, 0.001], rtol=1e-6)
        assert out["energy"] == 1.0 and out["clips"] == []
        assert {"plan_s", "queue_s", "infer_s", "server_s", "round_trip_s"} <= set(out["timing"])
        assert out["timing"]["round_trip_s"] >= out["timing"]["server_s"] >= out["timing"]["infer_s"]
        client.reset()
        assert client.infer({"image": frame(102), "state": STATE})["energy"] == 1.0  # call count reset
    ws, _ = raw_connect(server.server.url)
    with ws:
        assert ask(ws, packb({"type": "health", "id": 7}))["id"] == 7
        assert ask(ws, packb({"type": "infer", "id": "q1"}))["id"] == "q1"  # errors echo the id too


def test_goal_is_per_connection(server):
    with PlannerClient(server.server.url) as a, PlannerClient(server.server.url) as b:
        a.set_goal(frame(10))
        assert a.infer({"image": frame(), "state": STATE})["action"].shape == (7,)
        with pytest.raises(PlannerError, match="no_goal"):
            b.infer({"image": frame(), "state": STATE})


def bad_requests():
    good = {"image": frame(), "state": STATE}
    return [
        (b"\xc1\x00garbage", "bad_message"),
        (msgpack.packb([1, 2, 3]), "bad_message"),
        (packb({"image": frame()}), "unknown_type"),
        (packb({"type": "teleport"}), "unknown_type"),
        (packb({"type": "health", "id": [1]}), "bad_message"),
        (msgpack.packb({"type": "set_goal", "image": {"__ndarray__": b"x", "dtype": "|O", "shape": [1]}}), "bad_message"),
        (packb({"type": "set_goal", "image": frame().astype(np.float32)}), "bad_input"),
        (packb({"type": "set_goal", "image": np.zeros((64, 64, 4), np.uint8)}), "bad_input"),
        (packb({"type": "set_goal", "image": frame(size=97)}), "bad_input"),  # over max_image_side=96
        (packb({"type": "set_goal", "image": "goal.png"}), "bad_input"),
        (packb({"type": "set_goal"}), "bad_input"),
        (packb({"type": "set_goal", "image": frame(), "gripper": 2.0}), "bad_input"),
        (packb({"type": "set_goal", "image": frame(), "gripper": "closed"}), "bad_input"),
        (packb({"type": "infer", **good, "state": np.zeros(6, np.float32)}), "bad_input"),
        (packb({"type": "infer", **good, "state": np.full(7, np.nan, np.float32)}), "bad_input"),
        (packb({"type": "infer", **good, "state": "home"}), "bad_input"),
        (packb({"type": "infer", **good, "image": frame()[..., 0]}), "bad_input"),
        (packb({"type": "infer", "image": frame(BOOM), "state": STATE}), "policy_error"),
        (packb({"type": "set_goal", "image": frame(size=150)}), "message_too_large"),  # 67.5 kB > 64 KiB
        ("not binary", "bad_message"),
    ]


@pytest.mark.parametrize("data,code", bad_requests())
def test_bad_requests_answered_and_server_keeps_serving(server, watcher, data, code):
    ws, _ = raw_connect(server.server.url)
    with ws:
        ask(ws, packb({"type": "set_goal", "image": frame()}))
        reply = ask(ws, data)
        assert set(reply) == {"error"} and reply["error"]["code"] == code, reply
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
        # the same connection still works after the error
        assert ask(ws, packb({"type": "health"}))["status"] == "ok"


def test_message_over_hard_limit_closes_only_that_connection(server, watcher):
    ws, _ = raw_connect(server.server.url)
    ws.send(packb({"type": "set_goal", "image": frame(size=300)}))  # 270 kB > 2 x 64 KiB
    with pytest.raises(ConnectionClosed) as info:
        ws.recv(timeout=5)
    assert info.value.rcvd.code == 1009
    with PlannerClient(server.server.url) as client:  # the client refuses before sending
        with pytest.raises(PlannerError, match="message_too_large"):
            client.set_goal(frame(size=96 * 3))


def test_token_checked_on_connect():
    thread = start(token="s3cret")
    try:
        url = thread.server.url
        with pytest.raises(PlannerError, match="unauthorized"):
            PlannerClient(url, token="wrong", retries=3, backoff_s=5.0)  # no retries: fails at once
        ws, first = raw_connect(url)
        assert first["error"]["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
        assert info.value.rcvd.code == 1008
        with PlannerClient(url, token="s3cret") as client:
            assert client.health()["status"] == "ok"
    finally:
        thread.stop()


def test_max_connections():
    thread = start(max_connections=1)
    try:
        with PlannerClient(thread.server.url) as first:
            with pytest.raises(PlannerError, match="too_many_connections"):
                PlannerClient(thread.server.url)
            assert first.health()["connections"] == 1
    finally:
        thread.stop()


def test_slow_planning_does_not_stall_health_and_disconnect_mid_request():
    thread = start(functools.partial(FakePolicy, delay=0.6))
    try:
        url = thread.server.url
        # a client that sends a slow request and vanishes before the reply
        ws, _ = raw_connect(url)
        ask(ws, packb({"type": "set_goal", "image": frame()}))
        ws.send(packb({"type": "infer", "image": frame(), "state": STATE}))
        time.sleep(0.05)
        ws.close()
        # another client's slow request is in flight in a thread; health answers meanwhile
        busy = PlannerClient(url, timeout=5)
        busy.set_goal(frame())
        results = {}
        worker = threading.Thread(target=lambda: results.update(busy.infer({"image": frame(), "state": STATE})))
        worker.start()
        time.sleep(0.1)
        with PlannerClient(url) as probe:
            start_t = time.perf_counter()
            health = probe.health()
            assert time.perf_counter() - start_t < 0.3
            assert health["pending"] >= 1
        worker.join(10)
        assert results["action"].shape == (7,)
        # the queue held two 0.6 s calls at most (the vanished client's was skipped or finished)
        assert results["timing"]["queue_s"] < 1.0
        busy.close()
    finally:
        thread.stop()


def test_client_timeout_then_reconnect():
    thread = start(functools.partial(FakePolicy, delay=0.5))
    try:
        client = PlannerClient(thread.server.url, timeout=0.2)
        client.set_goal(frame())
        with pytest.raises(PlannerTimeout, match="within 0.2 s"):
            client.infer({"image": frame(), "state": STATE})
        client.timeout = 5.0
        out = client.infer({"image": frame(), "state": STATE})  # new connection, goal sent again
        assert out["action"].shape == (7,)
        client.close()
    finally:
        thread.stop()


def test_reconnect_after_server_restart_and_bounded_give_up():
    first = start()
    port = first.server.port
    client = PlannerClient(first.server.url, retries=2, backoff_s=0.05)
    client.set_goal(frame(51), gripper=1.0)
    assert [s.policy.goal_gripper for s in first.server._sessions.values()] == [1.0]
    first.stop()
    second = start(port=port)
    try:
        out = client.infer({"image": frame(102), "state": STATE})  # goal re-sent to the new server
        np.testing.assert_allclose(out["action"][0], 0.02, rtol=1e-6)
        assert client.reconnects == 1
        assert [s.policy.goal_gripper for s in second.server._sessions.values()] == [1.0]  # with its gripper
    finally:
        second.stop()
    start_t = time.perf_counter()
    with pytest.raises(PlannerConnectionError, match=r"could not connect .* after 3 attempts"):
        client.infer({"image": frame(), "state": STATE})
    assert time.perf_counter() - start_t < 5


def test_server_side_safety_clips_and_refuses():
    big = np.array([0.5, 0, 0, 0, 0, 0, 0], np.float32)
    thread = start(functools.partial(FakePolicy, action=big), safety=SafetyLayer(SafetyConfig()))
    try:
        with PlannerClient(thread.server.url) as client:
            assert client.metadata()["safety"]["max_translation"] == 0.1
            client.set_goal(frame())
            out = client.infer({"image": frame(), "state": STATE})
            assert out["action"][0] == pytest.approx(0.1) and any("translation" in c for c in out["clips"])
    finally:
        thread.stop()
    thread = start(functools.partial(FakePolicy, action=np.full(7, np.nan, np.float32)),
                   safety=SafetyLayer(SafetyConfig()))
    try:
        with PlannerClient(thread.server.url) as client:
            client.set_goal(frame())
            # refused before the safety layer sees it: NaN is a broken model, not an action to clip
            with pytest.raises(PlannerError, match="non_finite"):
                client.infer({"image": frame(), "state": STATE})
    finally:
        thread.stop()


def test_client_imports_without_torch_or_mlx():
    code = ("import sys; sys.modules['torch'] = None; sys.modules['mlx'] = None\n"
            "import jepa_ac.serving.client, jepa_ac.robot, jepa_ac.serving.wire\n"
            "assert sys.modules['torch'] is None\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_cli_help_and_argument_errors(capsys):
    parser = build_parser()
    help_text = parser.format_help()
    assert "python -m jepa_ac.serve" in help_text and "--token" in help_text and "--mpc" in help_text
    from jepa_ac.serve import main

    with pytest.raises(ValueError, match="CEMConfig.samples must be a positive int"):
        main(["--port", "1", "--samples", "0"])  # every task's settings are checked before the model loads
    with pytest.raises(ValueError, match="does not name this model's views front\\+side"):
        main(["--port", "1", "--exterior-view", "side"])  # the shipped model's views, checked before serving
    with pytest.raises(ValueError, match="no ensemble member 'tall'; its members: \\['seed0', 'wide'\\]"):
        main(["--port", "1", "--exterior-view", "front", "--cem", "predictor=tall"])  # and its predictors
    with pytest.raises(ValueError, match="port must be an int"):
        ServerConfig(port=70000)


# -- the real planner through the server -----------------------------------------------------------
TINY_CEM = dict(samples=32, iterations=2, topk=4, horizon=1, seed=0)


def planning_factory(wm):
    from jepa_ac.planning import CEMConfig
    from jepa_ac.serving.server import make_planning_policy_factory

    return make_planning_policy_factory(wm, CEMConfig(**TINY_CEM))


def test_real_planner_same_actions_through_server(tiny_wm):
    make = planning_factory(tiny_wm)
    rng = np.random.default_rng(0)
    goal = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frames = rng.integers(0, 256, (3, 80, 96, 3), dtype=np.uint8)  # non-square: resized by the planner
    local = make()
    local.set_goal(goal)
    expected = [local.infer({"image": f, "state": STATE}) for f in frames]
    thread = ServerThread(PlanningServer(make, ServerConfig(port=0)))
    with thread as url, PlannerClient(url) as client:
        meta = client.metadata()["policy"]
        assert meta["cem"]["samples"] == 32 and meta["image_size"] == 64
        client.set_goal(goal)
        got = [client.infer({"image": f, "state": STATE}) for f in frames]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g["action"], np.asarray(e["action"], np.float32))
        assert g["energy"] == pytest.approx(e["energy"], rel=1e-6)
        assert g["planner"] == e["planner"]  # re-planned, samples evaluated, surprise, held
    assert got[0]["planner"]["surprise"] is None and got[1]["planner"]["surprise"] > 0


def test_mujoco_episode_same_actions_in_process_and_through_server(tiny_wm):
    gymnasium = pytest.importorskip("gymnasium")
    pytest.importorskip("mujoco")
    import jepa_ac.envs  # noqa: F401 - registers the ids
    from jepa_ac.robot import GymRobot, SafetyLayer, run_episode

    make = planning_factory(tiny_wm)
    safety = SafetyLayer(SafetyConfig())

    def episode(policy):
        robot = GymRobot(gymnasium.make("jepa_ac/FrankaReach-v0", image_size=64))
        robot.reset(seed=3)
        result = run_episode(robot, policy, robot.goal_image(), max_steps=4, safety=safety)
        robot.env.close()
        return result

    local = episode(make())
    with ServerThread(PlanningServer(make, ServerConfig(port=0))) as url, PlannerClient(url) as client:
        remote = episode(client)
    assert local.status == remote.status == "max_steps" and len(local.steps) == 4
    np.testing.assert_array_equal(remote.requested, local.requested.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(remote.actions, local.actions, atol=1e-7)
    np.testing.assert_allclose(np.stack([s.state for s in remote.steps]), np.stack([s.state for s in local.steps]))
    assert np.abs(local.actions[:, :3]).max() > 0  # the planner actually moved the arm


def test_bench_runs_the_cli_server_and_writes_results(tmp_path):
    from jepa_ac.robot import bench_wire

    report = bench_wire.main(["--checkpoint", str(ROOT / "tests/fixtures/vjepa2_ac_tiny.pt"),
                              "--arch", str(ROOT / "tests/fixtures/vjepa2_ac_tiny.json"), "--samples", "8",
                              "--iterations", "1", "--topk", "2", "--sizes", "32x48", "--requests", "2",
                              "--warmup", "0", "--out", str(tmp_path)])
    (row,) = report["results"]
    assert row["size"] == "32x48" and row["request_bytes"] > 32 * 48 * 3
    assert row["round_trip_ms"]["median"] >= row["planning_ms"]["median"] > 0
    assert row["overhead_ms"]["median"] > 0
    assert "| 32x48 |" in (tmp_path / "wire_latency.md").read_text()
    assert (tmp_path / "wire_latency.json").is_file()
