r"""Planning server: the closed-loop controller (world model + CEM planner + goal schedule) behind a
websocket, for robot-side clients: a robot gets exactly the planning that `plan` and `evaluate` run.

The command is `python -m jepa_ac.serve` (see its --help).

Protocol 2 (msgpack, numpy arrays as `jepa_ac.serving.wire` maps; every request may carry an `id` that the
reply echoes). On connect the server sends `{"type": "metadata", ...}` (model, planning settings,
tasks, limits). Requests:
- `{"type": "reset", "task": name or absent, "seed": int or absent}` -> `{"type": "reset", "task",
  "planning": the task's settings}`: a fresh controller for the task (planner reseeded).
- `{"type": "set_goal", "image": uint8 [H,W,3], "gripper": closedness or absent}` or
  `{"type": "set_goal", "images": [uint8 [H,W,3], ...], "grippers": [closedness or None, ...]}`:
  one goal, or sub-goal images then the goal (at most MAX_GOALS).
- `{"type": "infer", "image": uint8 [H,W,3], "state": float [7]}` -> `{"type": "infer", "action":
  float32 [7] (None once done), "energy", "distance" (observed latent distance to the current goal),
  "goal_index", "num_goals", "settling", "done", "stop_reason", "timing", "clips", "planner"}`.
- `{"type": "observe", "image", "state"}` -> the same without planning (the frame after the last action).
- `{"type": "health"}`, `{"type": "metadata"}`.
Any failure is answered with `{"error": {"code": ..., "message": ...}}` and the server keeps
serving. Each connection has its own controller (goals, schedule, warm start); the model is shared
and all model calls run one at a time in a worker thread, so the event loop (health checks, other
clients' messages) never waits on planning. The token, if set, is checked on connect from the
header `Authorization: Bearer <token>` (constant-time compare).

Limits against abusive clients (`ServerConfig`): a request's msgpack is walked before it is built
and refused past `max_message_objects` objects or `max_message_depth` levels (`jepa_ac.serving.wire`), so
decoding costs at most a few milliseconds in the event loop; a message that has started arriving
must be complete within `message_timeout_s`, a reply must be taken within it too, and a connection
that sends nothing for `idle_timeout_s` is closed (each with an error reply when the client can
still read one); at most `max_connections` connections, `max_connections_per_address` of them
from one address (and twice that many TCP connections, handshakes included, before any is dropped
unanswered). A policy output with NaN or inf (energy, action, plan) is answered with the error
`non_finite`, never sent as an action.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import itertools
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.server import ServerProtocol

from jepa_ac.model.pose import ACTION_NAMES, check_shape, check_states
from jepa_ac.planning.planner import NonFiniteError
from jepa_ac.robot.protocol import Policy
from jepa_ac.robot.safety import SafetyLayer, SafetyStop
from jepa_ac.serving.wire import PROTOCOL_VERSION, DecodeLimits, WireError, packb, unpackb

logger = logging.getLogger(__name__)

TOKEN_ENV = "JEPA_AC_TOKEN"
ERROR_CODES = (
    "bad_message",  # not msgpack, not a map, text frame, malformed array
    "unknown_type",  # missing or unknown "type"
    "bad_input",  # wrong dtype/shape/values, missing field
    "no_goal",  # infer before set_goal
    "message_too_large",
    "unauthorized",
    "too_many_connections",
    "unsafe_action",  # the server's safety layer refused the planned action
    "policy_error",  # the planner raised
    "non_finite",  # the planner's energy, action or plan holds NaN or inf (e.g. a model with NaN weights)
    "message_timeout",  # a message started arriving and was not complete within message_timeout_s
    "idle_timeout",  # no request within idle_timeout_s
    "internal_error",
)
REQUEST_TYPES = ("reset", "set_goal", "infer", "observe", "health", "metadata")
MAX_GOALS = 32  # sub-goals + the goal in one set_goal
CONTROLLER_FIELDS = ("distance", "distance_goal_index", "goal_index", "num_goals", "settling", "done", "stop_reason")
MAX_REQUEST_STR_BYTES = 65536  # requests carry short strings (type, keys, dtype, id); images travel as bin
CLOSE_TIMEOUT_S = 2.0  # wait this long for a client's answer to our close frame, then drop the TCP connection
LOGGED_ERRORS = 5  # per connection at WARNING; later ones at DEBUG, so a flood of bad requests cannot flood the log


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the server listens. Loopback only unless `host` says otherwise."""

    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port
    token: str | None = None
    max_message_bytes: int = 16 * 2**20
    max_image_side: int = 2048
    max_connections: int = 8
    max_connections_per_address: int = 4
    max_message_objects: int = 1024  # maps, arrays, strings and numbers in one request (an infer holds ~20)
    max_message_depth: int = 16  # nesting of maps and arrays in one request (an infer has 3)
    handshake_timeout_s: float = 10.0  # the websocket opening handshake (HTTP upgrade)
    message_timeout_s: float = 10.0  # a message that started arriving must be complete within this
    idle_timeout_s: float | None = 600.0  # close a connection that sends no request for this long; None: never

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"ServerConfig.host must be a non-empty string, got {self.host!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"ServerConfig.port must be an int in [0, 65535], got {self.port!r}")
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 1):
            raise ValueError("ServerConfig.token must be a non-empty string or None")
        for name, low in (("max_message_bytes", 1024), ("max_image_side", 2), ("max_connections", 1),
                          ("max_connections_per_address", 1), ("max_message_objects", 16), ("max_message_depth", 3)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"ServerConfig.{name} must be an int >= {low}, got {value!r}")
        for name in ("handshake_timeout_s", "message_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            if name == "idle_timeout_s" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"ServerConfig.{name} must be a number of seconds > 0"
                                 f"{' or None' if name == 'idle_timeout_s' else ''}, got {value!r}")

    def decode_limits(self) -> DecodeLimits:
        """What one request may hold (`jepa_ac.serving.wire.unpackb` refuses the rest before building it)."""
        return DecodeLimits(max_bytes=self.max_message_bytes, max_objects=self.max_message_objects,
                            max_depth=self.max_message_depth, max_str_bytes=MAX_REQUEST_STR_BYTES)


class RequestError(Exception):
    """A request the server answers with `{"error": {"code", "message"}}`."""

    def __init__(self, code: str, message: str) -> None:
        assert code in ERROR_CODES, code
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def error_reply(code: str, message: str, request_id: Any = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"error": {"code": code, "message": message}}
    if request_id is not None:
        reply["id"] = request_id
    return reply


def check_image(value: Any, name: str, max_side: int) -> np.ndarray:
    """A uint8 RGB image [H, W, 3] with 2 <= H, W <= max_side, or `RequestError`."""
    if not isinstance(value, np.ndarray):
        raise RequestError("bad_input", f"{name!r} must be a uint8 array [H, W, 3], got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise RequestError("bad_input", f"{name!r} must have dtype uint8, got {value.dtype}")
    if value.ndim != 3 or value.shape[-1] != 3:
        raise RequestError("bad_input", f"{name!r} must have shape [H, W, 3], got {list(value.shape)}")
    if not (2 <= value.shape[0] <= max_side and 2 <= value.shape[1] <= max_side):
        raise RequestError("bad_input", f"{name!r} of shape {list(value.shape)} is outside 2..{max_side} pixels per side")
    return value


def check_gripper_input(value: Any) -> float | None:
    """A goal's gripper closedness: None (absent) or a number in [0, 1], or `RequestError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise RequestError("bad_input", f"'gripper' must be a closedness in [0, 1] (0 open, 1 closed) or absent, "
                                        f"got {value!r:.100}")
    return float(value)


def check_goals(request: dict[str, Any], max_side: int) -> tuple[np.ndarray | list[np.ndarray], Any]:
    """set_goal's goal(s) and gripper(s): one `image` (+ `gripper`), or `images` (+ `grippers`, one per
    image, None entries planned), or `RequestError`."""
    if "images" not in request:
        return check_image(request.get("image"), "image", max_side), check_gripper_input(request.get("gripper"))
    images = request["images"]
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_GOALS:
        raise RequestError("bad_input", f"'images' must be a list of 1..{MAX_GOALS} goal images (sub-goals, then the goal)")
    goals = [check_image(image, f"images[{k}]", max_side) for k, image in enumerate(images)]
    grippers = request.get("grippers")
    if grippers is None:
        return goals, None
    if not isinstance(grippers, list) or len(grippers) != len(goals):
        raise RequestError("bad_input", f"'grippers' must be a list with one closedness (or None) per image "
                                        f"({len(goals)}), got {grippers!r:.100}")
    return goals, [check_gripper_input(g) for g in grippers]


def check_state_input(value: Any) -> np.ndarray:
    """A finite, physically plausible state [7] (float32; `jepa_ac.model.pose.check_states`), or `RequestError`."""
    if isinstance(value, list):
        value = np.asarray(value) if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) else None
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise RequestError("bad_input", "'state' must be a float array [7] = [x, y, z, roll, pitch, yaw, gripper]")
    try:  # NaN/inf and absurd values, before the float32 cast: 1e39 would become inf; a gripper width in mm is a wiring error
        state = check_states(check_shape(value, "'state'"), "'state'")
    except ValueError as err:
        raise RequestError("bad_input", f"{err}; check the robot's units and wiring") from None
    return state.astype(np.float32)


def _plain(value: Any) -> Any:
    """Metadata made of msgpack-friendly types (unknown objects become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.ndarray)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


class _Abandoned(Exception):
    """The connection closed before its queued model call started."""


class _Connection(ServerConnection):
    """A websockets connection that notes when a message started arriving and is not complete yet,
    and that counts itself against its address's TCP budget from the moment it is accepted."""

    def __init__(self, *args: Any, owner: "PlanningServer", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.address = "?"
        self.partial_since: float | None = None  # monotonic time the unfinished message began to arrive

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        if not self.owner._admit_tcp(self.address):
            transport.abort()  # no handshake, no reply: this address already holds too many sockets

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._release_tcp(self.address)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # websockets keeps the bytes of an unfinished frame in its reader's buffer and flags an
        # unfinished fragmented message; either means a message has started and is not complete
        reader = getattr(self.protocol, "reader", None)
        started = bool(getattr(reader, "buffer", b"")) or bool(getattr(self.protocol, "expect_continuation_frame", False))
        if not started:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = time.monotonic()


class _Session:
    def __init__(self, conn_id: int, ws: _Connection) -> None:
        self.id = conn_id
        self.ws = ws
        self.address = ws.address
        self.policy: Policy | None = None
        self.task: str | None = None  # the task whose settings the policy was built with (None: the default)
        self.metadata: dict[str, Any] = {}
        self.has_goal = False
        self.errors = 0
        self.last_active = time.monotonic()  # the last request received or reply sent
        self.busy = False  # a request is being answered
        self.sending_since: float | None = None

    def alive(self) -> bool:
        return self.ws.state is State.OPEN

    def overdue(self, now: float, config: ServerConfig) -> tuple[str, str] | None:
        """(error code, message) if this connection broke a time limit, else None."""
        if self.sending_since is not None and now - self.sending_since > config.message_timeout_s:
            return "message_timeout", (f"the client took no reply for {now - self.sending_since:.1f} s "
                                       f"(message_timeout_s = {config.message_timeout_s:g})")
        partial = self.ws.partial_since
        # the clock runs only while the server waits for the message: while it answers an earlier one,
        # websockets may stop reading the socket (queue full) and leave a frame half read
        waited = None if partial is None or self.busy else now - max(partial, self.last_active)
        if waited is not None and waited > config.message_timeout_s:
            return "message_timeout", (f"a message started arriving {waited:.1f} s ago and is still incomplete; "
                                       f"a message must arrive whole within {config.message_timeout_s:g} s")
        idle = config.idle_timeout_s
        if idle is not None and not self.busy and partial is None and now - self.last_active > idle:
            return "idle_timeout", f"no request for {now - self.last_active:.1f} s; idle connections close after {idle:g} s"
        return None


class PlanningServer:
    """Serves `make_policy()` policies (one per connection, sharing one model) over websockets.

    `make_policy` is called for each new connection, e.g. a `ControllerFactory` (the closed-loop
    controller with the model's planning settings; `make_policy(task)` for a task's) or
    `lambda: PlanningPolicy(CEMPlanner(wm, config))`; it runs outside the model thread, so it must
    only build the policy, not run the model. `safety`, if given, filters every planned
    action against the observed state before it is returned (the robot side filters again).
    """

    def __init__(self, make_policy: Callable[[], Policy], config: ServerConfig | None = None,
                 safety: SafetyLayer | None = None) -> None:
        self.make_policy = make_policy
        self.config = config or ServerConfig()
        self.safety = safety
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jepa_ac-planner")
        self._ids = itertools.count(1)
        self._sessions: dict[int, _Session] = {}
        self._server: Any = None
        self._watchdog: asyncio.Task | None = None
        self._drops: set[asyncio.Task] = set()
        self._tcp: dict[str, int] = {}  # open TCP connections per client address, handshakes included
        self._limits = self.config.decode_limits()
        self._started = time.monotonic()
        self._pending = 0
        self.requests = 0
        self.errors = 0
        self.port: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"ws://{host}:{self.port}"

    async def start(self) -> None:
        cfg = self.config
        if cfg.token is None and cfg.host not in ("127.0.0.1", "localhost", "::1"):
            logger.warning("serving on %s without a token: anyone who can reach this port can drive the planner",
                           cfg.host)
        self._server = await serve(
            self._handle, cfg.host, cfg.port,
            # messages up to 2x the limit are read and answered with "message_too_large";
            # beyond that websockets closes the connection with code 1009
            max_size=2 * cfg.max_message_bytes, max_queue=2, compression=None,
            open_timeout=cfg.handshake_timeout_s, close_timeout=CLOSE_TIMEOUT_S,
            create_connection=functools.partial(_Connection, owner=self),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._started = time.monotonic()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        if not isinstance(getattr(getattr(ServerProtocol(), "reader", None), "buffer", None), bytearray):
            logger.warning("this websockets version hides half-received frames: message_timeout_s applies to "
                           "fragmented messages and replies only; a half-sent frame is closed by idle_timeout_s")
        logger.info("planning server listening on %s", self.url)

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def serve_forever(self, stop: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            await (stop or asyncio.Event()).wait()
        finally:
            await self.stop()

    # -- connections ----------------------------------------------------------------------------
    def _admit_tcp(self, address: str) -> bool:
        count = self._tcp[address] = self._tcp.get(address, 0) + 1
        cap = 2 * self.config.max_connections_per_address
        if count > cap:  # logged once per burst: the rest of a flood at DEBUG
            logger.log(logging.WARNING if count == cap + 1 else logging.DEBUG,
                       "dropping new TCP connections from %s: it holds %d, the most one address may hold "
                       "(handshakes included)", address, cap)
            return False
        return True

    def _release_tcp(self, address: str) -> None:
        count = self._tcp.get(address, 0) - 1
        if count > 0:
            self._tcp[address] = count
        else:
            self._tcp.pop(address, None)

    async def _watch(self) -> None:
        """Every tick, drop the connections that stall a message or a reply or sit idle too long."""
        cfg = self.config
        timeouts = [cfg.message_timeout_s] + ([cfg.idle_timeout_s] if cfg.idle_timeout_s is not None else [])
        tick = min(1.0, max(0.01, min(timeouts) / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                problem = session.overdue(now, cfg)
                if problem is not None:
                    self._sessions.pop(session.id, None)  # its slot is free at once, the close may take a while
                    task = asyncio.get_running_loop().create_task(self._drop(session, *problem))
                    self._drops.add(task)
                    task.add_done_callback(self._drops.discard)

    async def _drop(self, session: _Session, code: str, message: str) -> None:
        logger.warning("connection %d from %s dropped: %s", session.id, session.address, message)
        ws = session.ws
        try:
            if session.sending_since is None:  # a client that does not read would not take the error either
                await asyncio.wait_for(ws.send(packb(error_reply(code, message))), CLOSE_TIMEOUT_S)
                await ws.close(1008, code)  # websockets aborts the TCP connection after CLOSE_TIMEOUT_S
                return
        except (asyncio.TimeoutError, ConnectionClosed):
            pass
        ws.transport.abort()

    def _authorized(self, ws: ServerConnection) -> bool:
        if self.config.token is None:
            return True
        given = ws.request.headers.get("Authorization", "") if ws.request is not None else ""
        return hmac.compare_digest(given.encode(), f"Bearer {self.config.token}".encode())

    async def _handle(self, ws: ServerConnection) -> None:
        conn_id = next(self._ids)
        peer = ws.remote_address
        if not self._authorized(ws):
            logger.warning("connection %d from %s: wrong or missing token", conn_id, peer)
            await self._refuse(ws, "unauthorized", "missing or wrong token; send 'Authorization: Bearer <token>'", 1008)
            return
        if len(self._sessions) >= self.config.max_connections:
            logger.warning("connection %d from %s refused: %d connections open", conn_id, peer, len(self._sessions))
            await self._refuse(ws, "too_many_connections",
                               f"the server takes at most {self.config.max_connections} connections", 1013)
            return
        address = ws.address
        if sum(s.address == address for s in self._sessions.values()) >= self.config.max_connections_per_address:
            logger.warning("connection %d from %s refused: that address holds %d connections", conn_id, peer,
                           self.config.max_connections_per_address)
            await self._refuse(ws, "too_many_connections", f"the server takes at most "
                               f"{self.config.max_connections_per_address} connections from one address ({address})", 1013)
            return
        session = _Session(conn_id, ws)
        self._sessions[conn_id] = session
        logger.info("connection %d from %s opened", conn_id, peer)
        try:
            # not in the model thread: a new client must not wait for other clients' planning
            await asyncio.get_running_loop().run_in_executor(None, self._open_session, session)
            await self._send(session, packb({"type": "metadata", **self._metadata(session)}))
            async for message in ws:
                session.busy, session.last_active = True, time.monotonic()
                await self._send(session, await self._reply(session, message))
                session.busy = False
        except ConnectionClosed as err:
            logger.info("connection %d closed: %s", conn_id, err)
        except _Abandoned:
            logger.info("connection %d closed before its queued request started", conn_id)
        except Exception:  # noqa: BLE001 - one broken connection must not take the server down
            logger.exception("connection %d failed", conn_id)
        finally:
            self._sessions.pop(conn_id, None)
            logger.info("connection %d from %s closed", conn_id, peer)

    async def _send(self, session: _Session, data: bytes) -> None:
        session.sending_since = time.monotonic()  # the watchdog drops a client that takes no reply in time
        await session.ws.send(data)
        session.sending_since, session.last_active = None, time.monotonic()

    async def _refuse(self, ws: ServerConnection, code: str, message: str, close_code: int) -> None:
        try:
            await ws.send(packb(error_reply(code, message)))
            await ws.close(close_code, code)
        except ConnectionClosed:
            pass

    def _open_session(self, session: _Session) -> None:
        session.policy = self.make_policy()
        session.metadata = _plain(session.policy.metadata())

    def _metadata(self, session: _Session) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "server": "jepa_ac.serve",
            "policy": session.metadata,
            "max_message_bytes": self.config.max_message_bytes,
            "max_image_side": self.config.max_image_side,
            "max_message_objects": self.config.max_message_objects,
            "max_message_depth": self.config.max_message_depth,
            "message_timeout_s": self.config.message_timeout_s,
            "idle_timeout_s": self.config.idle_timeout_s,
            "safety": None if self.safety is None else self.safety.config.to_dict(),
            "task": session.task,
            "tasks": self.make_policy.tasks() if getattr(self.make_policy, "accepts_task", False) else None,
        }

    async def _run(self, session: _Session, fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
        """Run `fn(*args)` in the model thread: (result, seconds queued, seconds running)."""
        submitted = time.perf_counter()

        def job() -> tuple[Any, float, float]:
            if not session.alive():
                raise _Abandoned()
            started = time.perf_counter()
            value = fn(*args)
            return value, started - submitted, time.perf_counter() - started

        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        finally:
            self._pending -= 1

    # -- requests -------------------------------------------------------------------------------
    async def _reply(self, session: _Session, message: Any) -> bytes:
        received = time.perf_counter()
        self.requests += 1
        request_id = None
        try:
            request = self._parse(message)
            request_id = request.get("id")
            reply = await self._dispatch(session, request)
            if request_id is not None:
                reply["id"] = request_id
            if reply.get("type") == "infer":
                reply["timing"]["server_s"] = time.perf_counter() - received
            return packb(reply)
        except RequestError as err:
            self.errors += 1
            session.errors += 1
            level = logging.WARNING if session.errors <= LOGGED_ERRORS else logging.DEBUG
            logger.log(level, "connection %d: %s", session.id, err)
            if session.errors == LOGGED_ERRORS:
                logger.warning("connection %d: %d bad requests; further ones are logged at DEBUG", session.id, LOGGED_ERRORS)
            return packb(error_reply(err.code, err.message, request_id))
        except _Abandoned:
            raise
        except Exception as err:  # noqa: BLE001 - answer, log, keep serving
            self.errors += 1
            logger.exception("connection %d: request failed", session.id)
            return packb(error_reply("internal_error", f"{type(err).__name__}: {err}", request_id))

    def _parse(self, message: Any) -> dict[str, Any]:
        if isinstance(message, str):
            raise RequestError("bad_message", "expected a binary msgpack message, got a text frame")
        if len(message) > self.config.max_message_bytes:
            raise RequestError("message_too_large",
                               f"message of {len(message)} bytes exceeds the limit of {self.config.max_message_bytes}")
        try:
            request = unpackb(message, self._limits)
        except WireError as err:
            raise RequestError("bad_message", str(err)) from None
        if not isinstance(request, dict):
            raise RequestError("bad_message", f"a request must be a map with a 'type', got {type(request).__name__}")
        if "id" in request and not isinstance(request["id"], (int, str)):
            raise RequestError("bad_message", "'id' must be an int or a string")
        kind = request.get("type")
        if kind not in REQUEST_TYPES:
            raise RequestError("unknown_type", f"'type' must be one of {list(REQUEST_TYPES)}, got {kind!r:.100}")
        return request

    async def _dispatch(self, session: _Session, request: dict[str, Any]) -> dict[str, Any]:
        kind = request["type"]
        if kind == "health":
            return {"type": "health", "status": "ok", "protocol": PROTOCOL_VERSION,
                    "uptime_s": time.monotonic() - self._started, "connections": len(self._sessions),
                    "pending": self._pending, "requests": self.requests, "errors": self.errors}
        if kind == "metadata":
            return {"type": "metadata", **self._metadata(session)}
        if kind == "reset":
            return await self._reset(session, request)
        max_side = self.config.max_image_side
        if kind == "set_goal":
            goal, grippers = check_goals(request, max_side)
            await self._call_policy(session, session.policy.set_goal, goal, *([] if grippers is None else [grippers]))
            session.has_goal = True
            return {"type": "set_goal", "ok": True, "num_goals": len(goal) if isinstance(goal, list) else 1}
        # infer / observe
        image = check_image(request.get("image"), "image", max_side)
        state = check_state_input(request.get("state"))
        if not session.has_goal:
            raise RequestError("no_goal", "no goal set on this connection; send set_goal first")
        if kind == "observe":
            observe = getattr(session.policy, "observe", None)
            if observe is None:  # a plain policy keeps no goal schedule: nothing to report
                return {"type": "observe", "done": False}
            out, _, _ = await self._call_policy(session, observe, {"image": image, "state": state})
            return {"type": "observe", **{k: _plain(out.get(k)) for k in CONTROLLER_FIELDS if k in out}}
        out, queued, running = await self._call_policy(session, session.policy.infer, {"image": image, "state": state})
        return self._infer_reply(out, state, queued, running)

    async def _reset(self, session: _Session, request: dict[str, Any]) -> dict[str, Any]:
        """A task's controller (built anew when the task changes) and the planner reseeded."""
        task, seed = request.get("task"), request.get("seed")
        if task is not None and (not isinstance(task, str) or not 0 < len(task) <= 200):
            raise RequestError("bad_input", f"'task' must be a task name (a string), got {task!r:.100}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise RequestError("bad_input", f"'seed' must be a non-negative int, got {seed!r:.100}")
        if task != session.task:
            if not getattr(self.make_policy, "accepts_task", False):
                raise RequestError("bad_input", "this server serves one policy; it does not pick settings by 'task'")
            try:
                policy = self.make_policy(task)
            except ValueError as err:
                raise RequestError("bad_input", str(err)) from None
            session.policy, session.task, session.has_goal = policy, task, False
            session.metadata = _plain(policy.metadata())
        await self._call_policy(session, session.policy.reset, *([] if seed is None else [seed]))
        return {"type": "reset", "ok": True, "task": task, "planning": session.metadata.get("planning")}

    async def _call_policy(self, session: _Session, fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
        try:
            return await self._run(session, fn, *args)
        except (_Abandoned, RequestError):
            raise
        except NonFiniteError as err:  # the planner refuses to plan from NaN/inf latents or energies
            raise RequestError("non_finite", str(err)) from None
        except FloatingPointError as err:  # numpy's errstate(all="raise") and the like
            raise RequestError("non_finite", f"the policy hit a non-finite number: {err}") from None
        except ValueError as err:
            raise RequestError("bad_input", str(err)) from None
        except Exception as err:  # noqa: BLE001
            logger.exception("connection %d: policy failed", session.id)
            raise RequestError("policy_error", f"{type(err).__name__}: {err}") from None

    def _infer_reply(self, out: Any, state: np.ndarray, queued: float, running: float) -> dict[str, Any]:
        if isinstance(out, dict) and out.get("done"):  # the controller's goals are done: no action
            timing = {str(k): float(v) for k, v in dict(out.get("timing") or {}).items()}
            timing.update(queue_s=queued, infer_s=running)
            return {"type": "infer", "action": None, "timing": timing, "clips": [], "energy": None,
                    **{k: _plain(out.get(k)) for k in CONTROLLER_FIELDS if k in out}}
        if not isinstance(out, dict) or "action" not in out:
            raise RequestError("policy_error", "the policy returned no 'action'")
        try:
            action = check_shape(np.asarray(out["action"], dtype=np.float32), "the policy's action", names=ACTION_NAMES)
        except ValueError as err:
            raise RequestError("policy_error", str(err)) from None
        energy = None if out.get("energy") is None else float(out["energy"])
        plan = None if out.get("plan") is None else np.asarray(out["plan"], dtype=np.float32)
        # checked before the safety layer: NaN is a broken model, not an action to clip
        bad = [f"energy ({energy})"] if energy is not None and not math.isfinite(energy) else []
        bad += [f"{name} [{', '.join(f'{v:.4g}' for v in x.ravel()[:14])}{', ...' if x.size > 14 else ''}]"
                for name, x in (("action", action), ("plan", plan)) if x is not None and not np.all(np.isfinite(x))]
        if bad:
            raise RequestError("non_finite", f"the policy returned a non-finite {' and '.join(bad)}; no action is "
                                             "sent. The world model or its checkpoint produces NaN/inf (check its weights)")
        clips: list[str] = []
        if self.safety is not None:
            try:
                safe = self.safety.filter(state, action)
            except SafetyStop as err:
                raise RequestError("unsafe_action", str(err)) from None
            action, clips = safe.action.astype(np.float32), list(safe.clips)
        timing = {str(k): float(v) for k, v in dict(out.get("timing") or {}).items()}
        timing.update(queue_s=queued, infer_s=running)
        reply: dict[str, Any] = {"type": "infer", "action": action, "timing": timing, "clips": clips, "energy": energy}
        if plan is not None:
            reply["plan"] = plan
        if out.get("planner"):  # re-planned or reused, samples evaluated, surprise
            reply["planner"] = _plain(dict(out["planner"]))
        reply.update({k: _plain(out.get(k)) for k in CONTROLLER_FIELDS if k in out})
        return reply


class ServerThread:
    """Run a `PlanningServer` on its own event loop in a background thread (tests, benchmarks).

        with ServerThread(PlanningServer(make_policy, ServerConfig(port=0))) as url:
            client = PlannerClient(url)
    """

    def __init__(self, server: PlanningServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="jepa_ac-server", daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                await self.server.start()
            finally:
                self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.stop()

        try:
            asyncio.run(run())
        except BaseException as err:  # noqa: BLE001 - surfaced by start()
            self._error = err
            self._ready.set()

    def start(self, timeout: float = 10.0) -> str:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"planning server did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"planning server failed to start: {self._error}") from self._error
        return self.server.url

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class ControllerFactory:
    """One closed-loop `Controller` per connection, all sharing the world model `wm`: `factory(task)`
    builds it with that task's settings (`PlanningDefaults.for_task`; None: the default env's), with
    `overrides` (the server's flags) applied on top, exactly as `plan` and `evaluate` build theirs."""

    accepts_task = True

    def __init__(self, wm: Any, defaults: Any, overrides: Callable[[Any], Any] | None = None) -> None:
        self.wm, self.defaults = wm, defaults
        self.overrides = overrides or (lambda d: d)

    def planning(self, task: str | None = None) -> Any:
        """The task's `PlanningDefaults` (ValueError naming the known tasks for an unknown one)."""
        return self.overrides(self.defaults.for_task(task))

    def tasks(self) -> list[str]:
        return sorted(self.defaults.task_names())

    def __call__(self, task: str | None = None) -> Any:
        from jepa_ac.control import Controller
        from jepa_ac.planning import CEMPlanner
        from jepa_ac.world_model.multi_view import for_view_setting

        d = self.planning(task)  # a multi-view model plans with the task's views, whatever the robot sends
        return Controller(CEMPlanner(for_view_setting(self.wm, d.env.exterior_view), d.cem, d.action), d.mpc,
                          planning=d.to_dict())


def make_planning_policy_factory(wm: Any, config: Any) -> Callable[[], Policy]:
    """One plain `PlanningPolicy` (CEM only: no goal schedule) per connection, sharing the world model."""
    from jepa_ac.planning import CEMPlanner, PlanningPolicy

    return lambda: PlanningPolicy(CEMPlanner(wm, config))


async def serve_until_signal(server: PlanningServer) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    # a parseable line for scripts that start the server with --port 0
    print(f"listening on {server.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
        print("planning server stopped", flush=True)
