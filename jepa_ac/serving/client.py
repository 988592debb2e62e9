"""`PlannerClient`: the robot-side client of `python -m jepa_ac.serve` (numpy, msgpack, websockets only).

    from jepa_ac.serving.client import PlannerClient

    with PlannerClient("ws://127.0.0.1:8765", token=None, timeout=30.0) as planner:
        planner.reset(task="push", seed=0)                              # the server's push settings
        planner.set_goal([subgoal_uint8, goal_uint8])                   # [H, W, 3] each, or one image
        out = planner.infer({"image": frame_uint8, "state": state})     # state [7]
        out["action"], out["distance"], out["goal_index"], out["done"]

It has the methods of the in-process controller (`jepa_ac.control.Controller`: `reset`, `set_goal`,
`infer`, `observe`, `metadata`), which the server runs, so `jepa_ac.robot.run_episode` drives either. A dropped connection is re-opened (at most
`retries` attempts with exponential back-off, then `PlannerConnectionError`); the goal is sent
again on the new connection, but the server's planner state (warm start) starts fresh. Server
errors raise `PlannerError` with the server's code; a reply slower than `timeout` raises
`PlannerTimeout` and drops the connection (the late reply would be out of step). A server that
speaks another protocol version is refused on connect (`PlannerError` "protocol_mismatch", no
retries). Not thread-safe: use one client per thread.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from jepa_ac.model.pose import check_shape
from jepa_ac.serving.wire import DEFAULT_LIMITS, PROTOCOL_VERSION, WireError, packb, unpackb

# error codes after which reconnecting cannot help
_FATAL_ON_CONNECT = ("unauthorized", "too_many_connections", "protocol_mismatch")
_CLOSE_TOO_BIG = 1009


class PlannerError(RuntimeError):
    """The server answered with an error (or the reply could not be used)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"planning server error [{code}]: {message}")
        self.code, self.message = code, message


class PlannerConnectionError(ConnectionError):
    """The server could not be reached (after the allowed retries)."""


class PlannerTimeout(TimeoutError):
    """No reply within the client's timeout."""


class PlannerClient:
    """Synchronous client: `reset()`, `set_goal(image)`, `infer(obs) -> dict`, `health()`, `metadata()`."""

    def __init__(
        self,
        url: str = "ws://127.0.0.1:8765",
        token: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.25,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
        if not timeout > 0 or not connect_timeout > 0:
            raise ValueError(f"timeout and connect_timeout must be > 0, got {timeout!r}, {connect_timeout!r}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {retries!r}")
        self.url = url
        self.timeout = float(timeout)
        self.connect_timeout = float(connect_timeout)
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ws: ClientConnection | None = None
        self._metadata: dict[str, Any] = {}
        self._goal: dict[str, Any] | None = None  # the last set_goal request, replayed on a new connection
        self._reset: dict[str, Any] | None = None  # the last reset (task, seed), replayed before the goal
        self.task: str | None = None  # the task whose settings `reset()` asks the server for
        self.seed: int | None = None  # the planner seed `reset()` sends
        self.reconnects = 0
        self._connect()

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                self._open()
                return
            except PlannerError as err:
                if err.code in _FATAL_ON_CONNECT:
                    raise
                last = err
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, WireError) as err:
                last = err
            except InvalidURI as err:
                raise ValueError(f"bad planning server url {self.url!r}: {err}") from None
        raise PlannerConnectionError(
            f"could not connect to the planning server at {self.url} after {self.retries + 1} attempts; "
            f"last error: {type(last).__name__}: {last}"
        )

    def _open(self) -> None:
        # proxy=None: never route a (usually loopback) robot link through an HTTP proxy from the env
        # __enter__ gives the open ClientConnection on every websockets version (>= 17 warns when
        # connect() is not used as a context manager); close() ends it
        ws = connect(self.url, additional_headers=self._headers, open_timeout=self.connect_timeout,
                     compression=None, max_size=DEFAULT_LIMITS.max_bytes, proxy=None).__enter__()
        try:
            first = unpackb(ws.recv(timeout=self.connect_timeout))
            if isinstance(first, dict) and "error" in first:
                raise PlannerError(str(first["error"].get("code")), str(first["error"].get("message")))
            if not isinstance(first, dict) or first.get("type") != "metadata":
                raise PlannerError("bad_message", f"expected metadata on connect, got {first!r:.200}")
            protocol = first.get("protocol")
            if type(protocol) is not int or protocol != PROTOCOL_VERSION:
                raise PlannerError("protocol_mismatch", f"the server at {self.url} speaks planning protocol "
                                   f"{protocol!r:.40}, this client speaks protocol {PROTOCOL_VERSION}; install the "
                                   "same jepa_ac version on the robot and the server")
            self._ws, self._metadata = ws, first
            if self._reset is not None:  # a new connection has a fresh controller: the same task
                self._roundtrip(self._reset)
            if self._goal is not None:  # and the goal again
                self._roundtrip(self._goal)
        except BaseException:
            self._ws = None
            ws.close()
            raise

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None

    def __enter__(self) -> "PlannerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------------
    def _roundtrip(self, message: dict[str, Any]) -> dict[str, Any]:
        data = packb(message)
        limit = self._metadata.get("max_message_bytes")
        if isinstance(limit, int) and len(data) > limit:
            raise PlannerError("message_too_large", f"request of {len(data)} bytes exceeds the server limit of {limit}")
        assert self._ws is not None
        try:
            self._ws.send(data)
            raw = self._ws.recv(timeout=self.timeout)
        except TimeoutError:
            self.close()
            raise PlannerTimeout(f"no reply to {message.get('type')!r} from {self.url} within {self.timeout} s") from None
        except ConnectionClosed as err:
            self._ws = None
            if err.rcvd is not None and err.rcvd.code == _CLOSE_TOO_BIG:
                raise PlannerError("message_too_large", f"the server closed the connection: {err.rcvd.reason}") from None
            raise
        try:
            reply = unpackb(raw)
        except WireError as err:
            raise PlannerError("bad_message", f"unreadable reply: {err}") from None
        if not isinstance(reply, dict):
            raise PlannerError("bad_message", f"reply is not a map: {reply!r:.200}")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise PlannerError(str(error.get("code", "unknown")), str(error.get("message", reply["error"])))
        return reply

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        last: BaseException | None = None
        for attempt in range(self.retries + 1):
            if self._ws is None:
                if attempt:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                self._connect()
                if attempt:
                    self.reconnects += 1
            try:
                return self._roundtrip(message)
            except PlannerTimeout:  # a TimeoutError is an OSError, but re-sending would not help
                raise
            except (ConnectionClosed, OSError) as err:
                self._ws, last = None, err
        raise PlannerConnectionError(
            f"lost the connection to {self.url} {self.retries + 1} times while sending {message.get('type')!r}; "
            f"last error: {type(last).__name__}: {last}"
        )

    def metadata(self) -> dict[str, Any]:
        """What the server sent on connect: protocol, policy/model info, limits."""
        return dict(self._metadata)

    def health(self) -> dict[str, Any]:
        return self._request({"type": "health"})

    def reset(self, seed: int | None = None, task: str | None = None) -> dict[str, Any]:
        """A fresh controller on the server for `task` (default `self.task`: the settings the server's
        planning.json has for that name; None its default) with the planner seeded by `seed` (default
        `self.seed`; None the server's). Returns the reply, whose `planning` holds the task's settings."""
        request: dict[str, Any] = {"type": "reset"}
        task = self.task if task is None else task
        seed = self.seed if seed is None else seed
        if task is not None:
            request["task"] = str(task)
        if seed is not None:
            request["seed"] = int(seed)
        reply = self._request(request)
        self._reset, self._goal = request, None  # a new connection gets the same task before the goal
        return reply

    def set_goal(self, goal: Any, gripper: Any = None) -> None:
        """One goal image [H, W, 3], or a list of sub-goal images then the goal; `gripper`: the
        closedness each shows (a number for one goal, a list with None entries for a sequence), which
        the planner then holds instead of planning the gripper."""
        if isinstance(goal, (list, tuple)) or (isinstance(goal, np.ndarray) and goal.ndim == 4):
            request = {"type": "set_goal", "images": [_image(g, f"goal {k}") for k, g in enumerate(goal)]}
            if gripper is not None:
                request["grippers"] = [None if g is None else float(g) for g in gripper]
        else:
            request = {"type": "set_goal", "image": _image(goal, "goal")}
            if gripper is not None:
                request["gripper"] = float(gripper)
        self._request(request)
        self._goal = request

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """`{"image": uint8 [H, W, 3], "state": [7]}` -> `{"action": float32 [7] (None once `done`),
        "energy", "distance", "goal_index", "num_goals", "settling", "done", "stop_reason", "timing", ...}`."""
        return self._observation("infer", obs)

    def observe(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """`infer` without planning: the observed distance and whether the goals are done (the loop
        sends the frame after its last action)."""
        return self._observation("observe", obs)

    def _observation(self, kind: str, obs: Mapping[str, Any]) -> dict[str, Any]:
        for key in ("image", "state"):
            if key not in obs:
                raise ValueError(f"observation is missing {key!r}; expected 'image' (uint8 [H,W,3]) and 'state' ([7])")
        state = check_shape(np.asarray(obs["state"], dtype=np.float32), "state")
        start = time.perf_counter()
        reply = self._request({"type": kind, "image": _image(obs["image"], "image"), "state": state})
        reply.pop("type", None)
        reply.setdefault("timing", {})["round_trip_s"] = time.perf_counter() - start
        return reply


def _image(image: Any, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{name} must be a uint8 RGB array [H, W, 3], got {image.dtype} {list(image.shape)}")
    return np.ascontiguousarray(image)
