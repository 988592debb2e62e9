"""Safety cases: an action sent towards a robot is inside the configured limits whatever the reported
state, the planner's output and the limits; a NaN never becomes an executed action.

Each case writes a short script (`probe.py`) and its input (`input.json`) into its folder. The script
calls the public API a robot integrator would call — `SafetyLayer.filter`, `run_episode` with a fake
robot, `DroidRobot`, the server's state check, a `PlanningServer` with `--safety` limits, or the
`python -m jepa_ac.serve --safety` command line — and prints the actions that would be sent as JSON,
or exits with `error: <one line>` when the package refuses. `verify` re-checks every limit on what
was printed, on the float64 action and on its float32 cast, independently of `jepa_ac.robot.safety`.
"""

from __future__ import annotations

import json
import math
import subprocess
import textwrap
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from harness import Case  # the harness puts this folder's modules on sys.modules; see load_cases

REPO = Path(__file__).resolve().parents[2]
CATEGORY = "safety limits"
STATE = [0.5, 0.0, 0.3, math.pi, 0.1, -0.2, 0.4]  # a plausible DROID state: gripper down, half closed
DEFAULTS = {"workspace_min": [0.20, -0.50, 0.02], "workspace_max": [0.85, 0.50, 0.75], "max_translation": 0.10,
            "max_rotation": 0.35, "max_gripper_delta": 1.0, "gripper_min": 0.0, "gripper_max": 1.0}
MAX_POSITION = 3.0  # jepa_ac.model.pose.StateRanges().max_position: the workspace is cut to it
TIGHT = {"max_translation": 0.001, "max_rotation": 0.001, "max_gripper_delta": 0.001}

# -- the scripts ---------------------------------------------------------------------------------------
COMMON = """\
import json, math, sys
import numpy as np

spec = json.loads(open("input.json").read())  # NaN/Infinity literals allowed


def fail(err):
    sys.exit(f"error: {type(err).__name__}: {err}")


def emit(**out):
    print(json.dumps({k: np.asarray(v, dtype=np.float64).tolist() if k != "clips" else list(v) for k, v in out.items()}))
"""

FILTER = COMMON + """
from jepa_ac.robot import SafetyConfig, SafetyLayer, SafetyStop, load_safety_config

try:
    config = load_safety_config("safety.yaml") if spec.get("yaml") else SafetyConfig(**spec.get("config", {}))
    safe = SafetyLayer(config).filter(spec["state"], spec["action"])
except (SafetyStop, ValueError) as err:
    fail(err)
emit(states=[spec["state"]], actions=[safe.action], clips=safe.clips)
"""

LOOP = COMMON + """
from jepa_ac.model.pose import apply_action
from jepa_ac.robot import SafetyConfig, run_episode


class FakeRobot:
    # kinematic; from call `bad_at` on, field `field` of the reported state reads `value` (e.g. mm)
    def __init__(self):
        self.state = np.array(spec["state"], dtype=np.float64)
        self.calls, self.states, self.received, self.stops = 0, [], [], 0

    def get_observation(self):
        state = self.state.copy()
        if spec.get("bad_at") is not None and self.calls >= spec["bad_at"]:
            state[spec["field"]] = spec["value"]
        self.calls += 1
        return np.zeros((16, 16, 3), np.uint8), state.astype(np.float32)

    def apply_action(self, action):
        action = np.asarray(action, dtype=np.float64)
        self.states.append(self.state.copy())
        self.received.append(action)
        self.state = np.asarray(apply_action(self.state, action), dtype=np.float64)

    def stop(self):
        self.stops += 1


class WildPolicy:
    # the planner's output, in turn: whatever numbers input.json holds
    def __init__(self):
        self.i = 0

    def reset(self): ...
    def set_goal(self, goal, gripper=None): ...
    def metadata(self): return {}

    def infer(self, obs):
        action = spec["actions"][self.i % len(spec["actions"])]
        self.i += 1
        return {"action": np.asarray(action, dtype=np.float64)}


robot = FakeRobot()
result = run_episode(robot, WildPolicy(), np.zeros((16, 16, 3), np.uint8), spec["steps"],
                     SafetyConfig(**spec.get("config", {})))
with open("received.json", "w") as f:  # what reached the robot, for verify
    json.dump({"states": np.asarray(robot.states).tolist(), "actions": np.asarray(robot.received).tolist()}, f)
if result.status == "stopped":
    sys.exit(f"error: episode stopped after {len(robot.received)} actions (robot.stop called {robot.stops}x): "
             f"{result.stop_reason}")
emit(states=robot.states, actions=robot.received, clips=[c for s in result.steps for c in s.clips])
"""

DROID = COMMON + """
from jepa_ac.robot import DroidRobot, SafetyConfig, run_episode


class FakeDroidEnv:
    # droid.robot_env.RobotEnv's methods; reports the pose and gripper of input.json as they are
    action_space = "cartesian_position"

    def __init__(self):
        self.commands = []

    def get_state(self):
        return {"cartesian_position": spec["state"][:6], "gripper_position": spec["state"][6]}, {}

    def get_observation(self):
        return {"robot_state": self.get_state()[0], "image": {"cam": np.zeros((8, 8, 4), np.uint8)}}

    def step(self, command):
        self.commands.append(np.asarray(command, dtype=np.float64))


class Policy:
    def reset(self): ...
    def set_goal(self, goal, gripper=None): ...
    def metadata(self): return {}
    def infer(self, obs): return {"action": np.array([0.01, 0, 0, 0, 0, 0, 0.1])}


env = FakeDroidEnv()
try:
    result = run_episode(DroidRobot(env, "cam", sleep=lambda s: None), Policy(), np.zeros((8, 8, 3), np.uint8), 2,
                         SafetyConfig())
except ValueError as err:
    if env.commands:
        sys.exit(f"error: commanded {len(env.commands)} times from an implausible state, then: {err}")
    fail(err)
print(json.dumps({"status": result.status, "commands": np.asarray(env.commands).tolist()}))
"""

SERVER_CHECK = COMMON + """
from jepa_ac.serving.server import RequestError, check_state_input

try:
    state = check_state_input(np.asarray(spec["state"], dtype=spec.get("dtype", "float64")))
except RequestError as err:
    fail(err)
print(json.dumps({"state": state.astype(np.float64).tolist()}))
"""

SERVER = COMMON + """
from jepa_ac.serving.client import PlannerClient, PlannerError
from jepa_ac.robot import SafetyConfig, SafetyLayer
from jepa_ac.serving.server import PlanningServer, ServerConfig, ServerThread


class WildPolicy:
    # the planner's output, whatever input.json holds (float64: the server casts it to float32)
    def reset(self): ...
    def set_goal(self, goal, gripper=None): ...
    def metadata(self): return {}
    def infer(self, obs): return {"action": np.asarray(spec["action"], dtype=np.float64)}


thread = ServerThread(PlanningServer(WildPolicy, ServerConfig(port=0), SafetyLayer(SafetyConfig(**spec.get("config", {})))))
url = thread.start()
try:
    with PlannerClient(url, retries=0) as client:
        client.set_goal(np.zeros((16, 16, 3), np.uint8))
        out = client.infer({"image": np.zeros((16, 16, 3), np.uint8), "state": np.asarray(spec["state"], np.float32)})
except PlannerError as err:
    fail(err)
finally:
    thread.stop()
emit(states=[np.asarray(spec["state"], np.float32)], actions=[out["action"]], clips=out["clips"])
"""

SERVE_CLI = COMMON + """
import subprocess
from jepa_ac.serving.client import PlannerClient, PlannerError

fixtures = spec["repo"] + "/tests/fixtures"
server = subprocess.Popen([sys.executable, "-m", "jepa_ac.serve", "--checkpoint", fixtures + "/vjepa2_ac_tiny.pt",
                           "--arch", fixtures + "/vjepa2_ac_tiny.json", "--safety", "safety.yaml", "--port", "0",
                           "--samples", "16", "--iterations", "2", "--topk", "4", "--threads", "1"],
                          stdout=subprocess.PIPE, stderr=open("server.log", "w"), text=True)
try:
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        sys.exit(f"error: the server did not start (see server.log): {line.strip() or 'no output'}")
    with PlannerClient(line.split()[-1], retries=0, timeout=120) as client:
        image = np.full((64, 64, 3), 90, np.uint8)
        client.set_goal(image)
        try:
            out = client.infer({"image": image, "state": np.asarray(spec["state"], np.float32)})
        except PlannerError as err:
            fail(err)
finally:
    server.terminate()
    server.wait(timeout=30)
emit(states=[np.asarray(spec["state"], np.float32)], actions=[out["action"]], clips=out["clips"])
"""


# -- the independent limit check -------------------------------------------------------------------------
def violations(config: dict, state, action) -> list[str]:
    """Every configured limit `action` breaks from `state` (float64 and float32 cast); tolerance as documented:
    per-step limits * (1 + 1e-6) + 1e-12, box and gripper range 1e-6. From a position (closedness) outside
    the box (range), only moves back towards it are allowed."""
    cfg = {**DEFAULTS, **config}
    state = np.asarray(state, dtype=np.float64)
    problems = []
    with np.errstate(over="ignore"):  # an overflow to inf is reported below
        as_float32 = np.asarray(action, dtype=np.float64).astype(np.float32).astype(np.float64)
    for kind, a in (("float64", np.asarray(action, dtype=np.float64)), ("float32", as_float32)):
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            problems.append(f"{kind} action is not 7 finite numbers: {a.tolist()}")
            continue
        limit = lambda name: cfg[name] * (1 + 1e-6) + 1e-12  # noqa: E731
        if np.linalg.norm(a[:3]) > limit("max_translation"):
            problems.append(f"{kind} translation {np.linalg.norm(a[:3]):.6g} > {cfg['max_translation']}")
        angle = Rotation.from_euler("xyz", a[3:6]).magnitude()
        if angle > limit("max_rotation") or np.abs(a[3:6]).max() > math.pi + 1e-6:
            problems.append(f"{kind} rotation {angle:.6g} rad (Euler {a[3:6].tolist()}) > {cfg['max_rotation']}")
        if abs(a[6]) > limit("max_gripper_delta"):
            problems.append(f"{kind} gripper change {a[6]:.6g} > {cfg['max_gripper_delta']}")
        p, reach = state[:3], state[:3] + a[:3]
        lo = np.minimum(np.maximum(cfg["workspace_min"], -MAX_POSITION), p)
        hi = np.maximum(np.minimum(cfg["workspace_max"], MAX_POSITION), p)
        if np.any(reach < lo - 1e-6) or np.any(reach > hi + 1e-6):
            problems.append(f"{kind} position {reach.tolist()} leaves the workspace {lo.tolist()}..{hi.tolist()}")
        g = state[6] + a[6]
        if not min(cfg["gripper_min"], state[6]) - 1e-6 <= g <= max(cfg["gripper_max"], state[6]) + 1e-6:
            problems.append(f"{kind} gripper {g:.6g} outside [{cfg['gripper_min']}, {cfg['gripper_max']}]")
    return problems


def check_output(config: dict, moved: bool = False):
    """verify: every printed action is inside the limits; `moved`: at least one action is not all zeros
    (a layer that refuses to move by sending zeros would pass the limits trivially)."""

    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        if proc.returncode != 0:
            return None
        try:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return f"no JSON result on stdout: {proc.stdout[-200:]!r}"
        if not out["actions"]:
            return "no action was sent"
        for i, (state, action) in enumerate(zip(out["states"], out["actions"])):
            problems = violations(config, state, action)
            if problems:
                return f"action {i} {action} from {state}: " + "; ".join(problems)
        if moved and not any(np.any(np.asarray(a) != 0) for a in out["actions"]):
            return "every action is zero: the requested motion was dropped, not clamped"
        return None

    return verify


def check_received(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
    """verify (also after a stop): nothing that reached the robot breaks a limit."""
    path = folder / "received.json"
    if not path.is_file():
        return None
    got = json.loads(path.read_text())
    for i, (state, action) in enumerate(zip(got["states"], got["actions"])):
        problems = violations({}, state, action)
        if problems:
            return f"robot received action {i} {action}: " + "; ".join(problems)
    return None


def both(*checks):
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        return next((p for p in (c(folder, proc) for c in checks) if p), None)

    return verify


def probe(script: str, spec: dict, yaml: str | None = None):
    """prepare: write `probe.py`, `input.json` (and `safety.yaml`) into the case folder."""

    def prepare(folder: Path) -> None:
        (folder / "probe.py").write_text(textwrap.dedent(script))
        (folder / "input.json").write_text(json.dumps({**spec, "repo": str(REPO)}))
        if yaml is not None:
            (folder / "safety.yaml").write_text(yaml)

    return prepare


def case(name: str, script: str, spec: dict, expect: str = "error", yaml: str | None = None, verify=None,
         timeout: float = 120.0) -> Case:
    return Case(name=name, category=CATEGORY, argv=["{python}", "probe.py"], prepare=probe(script, spec, yaml),
                expect=expect, verify=verify, timeout=timeout)


def with_field(field: int, value: float) -> list[float]:
    state = list(STATE)
    state[field] = value
    return state


def small_rotation_of_1e39() -> float:
    """A roll near 1e39 rad (inf in float32) whose rotation is within 0.35 rad in float64."""
    for k in range(2000):
        angle = 1e39 * (1 + k * 1e-9)
        if Rotation.from_euler("xyz", [angle, 0, 0]).magnitude() < 0.3:
            return angle
    raise RuntimeError("no small rotation near 1e39")


TIGHT_YAML = "".join(f"{k}: {v}\n" for k, v in TIGHT.items())
EDGE = [float(np.float32(0.85)), 0.0, 0.02, 0.0, 0.0, 0.0, 1.04]  # on the x and z faces (float32), gripper past closed

CASES: list[Case] = [
    # SafetyLayer.filter: implausible states and non-finite input are refused
    case("safety-filter-gripper-in-mm", FILTER, {"state": with_field(6, 80.0), "action": [0, 0, 0, 0, 0, 0, 1.0]}),
    case("safety-filter-angles-1e6-rad", FILTER, {"state": with_field(3, 1e6), "action": [0.01] * 7}),
    case("safety-filter-angles-in-degrees", FILTER, {"state": with_field(5, 90.0), "action": [0.01] * 7}),
    case("safety-filter-position-1e30", FILTER, {"state": with_field(0, 1e30), "action": [0.01] * 7}),
    case("safety-filter-nan-action", FILTER, {"state": STATE, "action": [0, 0, math.nan, 0, 0, 0, 0]}),
    case("safety-filter-inf-state", FILTER, {"state": with_field(1, -math.inf), "action": [0.01] * 7}),
    case("safety-filter-string-action", FILTER, {"state": STATE, "action": ["0.01"] * 7}),
    case("safety-config-workspace-in-mm", FILTER, {"config": {"workspace_min": [200, -500, 20],
                                                              "workspace_max": [850, 500, 750]},
                                                   "state": STATE, "action": [0.0] * 7}),
    case("safety-config-nan-limit", FILTER, {"yaml": True, "state": STATE, "action": [0.0] * 7},
         yaml="max_translation: .nan\n"),
    # SafetyLayer.filter: over-limit planner output is clamped, inside every limit (also as float32)
    case("safety-filter-euler-1e39-small-rotation", FILTER,
         {"state": STATE, "action": [0, 0, 0, small_rotation_of_1e39(), 0, 0, 0]}, expect="ok",
         verify=check_output({}, moved=True)),
    case("safety-filter-euler-2pi-1e7", FILTER, {"state": STATE, "action": [0, 0, 0, 2 * math.pi * 1e7 + 0.1, 0, 0, 0]},
         expect="ok", verify=check_output({}, moved=True)),
    case("safety-filter-huge-translation", FILTER, {"state": STATE, "action": [1.7e308, -1.7e308, 1e308, 0, 0, 0, 1e308]},
         expect="ok", verify=check_output({}, moved=True)),
    case("safety-filter-subnormal", FILTER, {"state": [0.5, 5e-324, 0.3, -5e-324, 0, 1e-310, 0.4],
                                             "action": [5e-324, -5e-324, 1e-310, 5e-324, -1e-310, 0, 5e-324]},
         expect="ok", verify=check_output({})),
    case("safety-filter-edge-pointing-out", FILTER,
         {"config": {"max_gripper_delta": 0.01}, "state": EDGE, "action": [0.09, 0.05, -0.05, 0, 0, 0.5, 1.0]},
         expect="ok", verify=check_output({"max_gripper_delta": 0.01}, moved=True)),
    case("safety-filter-huge-limits", FILTER,
         {"config": {"workspace_min": [-1e300] * 3, "workspace_max": [1e300] * 3, "max_translation": 1e150,
                     "max_gripper_delta": 1e300}, "state": STATE, "action": [1e150, 0, 0, 0, 0, 0, 1e300]},
         expect="ok", verify=check_output({"workspace_min": [-1e300] * 3, "workspace_max": [1e300] * 3,
                                           "max_translation": 1e150, "max_gripper_delta": 1e300}, moved=True)),
    # the robot loop: nothing is planned from an implausible state; wild planner output is clamped
    case("safety-loop-gripper-in-mm", LOOP, {"state": STATE, "bad_at": 2, "field": 6, "value": 80.0, "steps": 5,
                                             "actions": [[0.01, 0, 0, 0, 0, 0, 1.0]]}, verify=check_received),
    case("safety-loop-position-in-mm", LOOP, {"state": STATE, "bad_at": 0, "field": 2, "value": 300.0, "steps": 5,
                                              "actions": [[0.01, 0, 0, 0, 0, 0, 0]]}, verify=check_received),
    case("safety-loop-wild-planner", LOOP,
         {"state": STATE, "steps": 6, "actions": [[1e30, -1e30, 1e30, 1e39, -1e6, 2 * math.pi * 1e7 + 0.1, 80.0],
                                                  [0.3, 0.0, -0.3, 0.0, 0.0, 3.0, -5.0], [5e-324] * 7,
                                                  [-1.7e308, 0, 0, 0, 1e300, 0, -1e300]]},
         expect="ok", verify=both(check_output({}, moved=True), check_received)),
    case("safety-loop-nan-planner", LOOP, {"state": STATE, "steps": 5,
                                           "actions": [[0.01, 0, 0, 0, 0, 0, 0], [0.01, math.nan, 0, 0, 0, 0, 0]]},
         verify=check_received),
    case("safety-droid-angles-in-degrees", DROID, {"state": [0.5, 0.0, 0.3, 180.0, 0.0, -90.0, 0.4]}),
    case("safety-droid-gripper-in-mm", DROID, {"state": with_field(6, 80.0)}),
    # the planning server: its state check, and its --safety layer on a planner's output
    case("safety-server-state-gripper-in-mm", SERVER_CHECK, {"state": with_field(6, 80.0)}),
    case("safety-server-state-1e39-float64", SERVER_CHECK, {"state": with_field(4, 1e39)}),
    case("safety-server-wild-planner", SERVER, {"state": STATE, "action": [1e30, 0, -1e30, 2 * math.pi * 1e7 + 0.1, 0, 0, 80.0]},
         expect="ok", verify=check_output({}, moved=True)),
    case("safety-server-planner-1e39-overflows-float32", SERVER, {"state": STATE, "action": [0, 0, 0, 1e39, 0, 0, 0]}),
    case("safety-server-gripper-in-mm", SERVER, {"state": with_field(6, 80.0), "action": [0.01] * 7}),
    # the command line: python -m jepa_ac.serve --safety FILE with the tiny checkpoint
    case("safety-serve-cli-tight-limits", SERVE_CLI, {"state": STATE}, expect="ok", yaml=TIGHT_YAML,
         verify=check_output(TIGHT), timeout=240),
    case("safety-serve-cli-gripper-in-mm", SERVE_CLI, {"state": with_field(6, 80.0)}, yaml=TIGHT_YAML, timeout=240),
]

# Not in CASES yet: `python -m jepa_ac.serve --safety FILE` with a bad file prints a traceback (serve.main
# calls load_safety_config / SafetyLayer without turning ValueError / FileNotFoundError into a message).
# The config errors themselves are clear one-liners (see safety-config-* above); add these once serve.main does.
PENDING_SERVE_MAIN = [
    Case("safety-serve-cli-bad-yaml", CATEGORY, ["{python}", "-m", "jepa_ac.serve", "--checkpoint",
                                                 str(REPO / "tests/fixtures/vjepa2_ac_tiny.pt"), "--arch",
                                                 str(REPO / "tests/fixtures/vjepa2_ac_tiny.json"), "--safety",
                                                 "{dir}/safety.yaml", "--port", "0"],
         prepare=lambda folder: (folder / "safety.yaml").write_text("workspace_min: [200, -500, 20]\n"
                                                                     "workspace_max: [850, 500, 750]\n")),
]
