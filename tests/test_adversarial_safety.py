"""Adversarial safety: whatever the reported state, the planner's action and the limits, the safety layer
refuses (`SafetyStop`) or returns an action inside every configured limit — also after the float32 cast
the wire and the robot adapters apply. The robot loop and the server refuse implausible states.

The limits are checked here independently of `jepa_ac.robot.safety` (scipy for rotations), with the
tolerance the safety layer documents.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from jepa_ac.model.pose import StateRanges, apply_action
from jepa_ac.robot import DroidRobot, SafetyConfig, SafetyLayer, SafetyStop, run_episode
from jepa_ac.serving.server import RequestError, check_state_input

pytestmark = pytest.mark.adversarial

RANGES = StateRanges()
REL, ABS, BOX = 1e-6, 1e-12, 1e-6  # the safety layer's documented tolerance
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATE = np.array([0.5, 0.0, 0.3, np.pi, 0.1, -0.2, 0.4])


def limit_violations(cfg: SafetyConfig, state, action) -> list[str]:
    """Every limit `action` (float64, and its float32 cast) breaks when taken from `state`; [] when none.

    A position (gripper) reported outside the workspace (gripper range) may only move back towards it,
    so the box a step must end in is the workspace widened to the reported position."""
    state = np.asarray(state, dtype=np.float64)
    problems = []
    with np.errstate(over="ignore"):  # an overflow to inf is reported below
        as_float32 = np.asarray(action, dtype=np.float64).astype(np.float32).astype(np.float64)
    for kind, a in (("float64", np.asarray(action, dtype=np.float64)), ("float32", as_float32)):
        if a.shape != (7,) or not np.all(np.isfinite(a)):
            problems.append(f"{kind}: not 7 finite numbers: {a}")
            continue
        if np.linalg.norm(a[:3]) > cfg.max_translation * (1 + REL) + ABS:
            problems.append(f"{kind}: translation {np.linalg.norm(a[:3])} > {cfg.max_translation}")
        angle = Rotation.from_euler("xyz", a[3:6]).magnitude()
        if angle > cfg.max_rotation * (1 + REL) + ABS:
            problems.append(f"{kind}: rotation {angle} > {cfg.max_rotation}")
        if np.any(np.abs(a[3:6]) > math.pi + BOX):
            problems.append(f"{kind}: Euler angles {a[3:6]} outside [-pi, pi]")
        if abs(a[6]) > cfg.max_gripper_delta * (1 + REL) + ABS:
            problems.append(f"{kind}: gripper change {a[6]} > {cfg.max_gripper_delta}")
        p, reach = state[:3], state[:3] + a[:3]
        lo = np.minimum(np.maximum(cfg.workspace_min, -RANGES.max_position), p)
        hi = np.maximum(np.minimum(cfg.workspace_max, RANGES.max_position), p)
        if np.any(reach < lo - BOX) or np.any(reach > hi + BOX):
            problems.append(f"{kind}: position {reach} leaves the workspace [{lo}, {hi}] from {p}")
        g = state[6] + a[6]
        if not min(cfg.gripper_min, state[6]) - BOX <= g <= max(cfg.gripper_max, state[6]) + BOX:
            problems.append(f"{kind}: gripper {g} outside [{cfg.gripper_min}, {cfg.gripper_max}] from {state[6]}")
    return problems


def is_plausible(state) -> bool:
    s = np.asarray(state, dtype=np.float64)
    return bool(np.all(np.isfinite(s)) and np.all(np.abs(s[:3]) <= RANGES.max_position)
                and np.all(np.abs(s[3:6]) <= RANGES.max_angle) and RANGES.gripper_min <= s[6] <= RANGES.gripper_max)


# -- strategies -------------------------------------------------------------------------------------
EXTREME = [0.0, -0.0, 5e-324, -5e-324, 1e-310, 1e-30, 1e6, -1e6, 1e30, -1e30, 3.4e38, 1e39, -1e39, 1e300, 1.7e308,
           -1.7e308, 2 * math.pi * 1e7 + 0.1]
any_float = st.one_of(st.floats(), st.sampled_from(EXTREME + [math.nan, math.inf, -math.inf]))
finite_float = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EXTREME),
                         st.floats(-1.0, 1.0))
positive_limit = st.one_of(st.floats(1e-6, 10.0), st.sampled_from([5e-324, 1e-300, 1e-12, 1e300, 1.7e308]),
                           st.floats(min_value=5e-324, max_value=1.7e308))


@st.composite
def configs(draw) -> SafetyConfig:
    bound = st.one_of(st.floats(-4.0, 4.0), st.sampled_from([-1e300, 1e300, -3.0, 3.0, 0.0]))
    lo, hi = [], []
    for _ in range(3):
        a, b = sorted([draw(bound), draw(bound)])
        assume(a < b and max(a, -RANGES.max_position) <= min(b, RANGES.max_position))
        lo.append(a)
        hi.append(b)
    gmin, gmax = sorted([draw(st.floats(0.0, 1.0)), draw(st.floats(0.0, 1.0))])
    assume(gmin < gmax)
    return SafetyConfig(workspace_min=tuple(lo), workspace_max=tuple(hi), max_translation=draw(positive_limit),
                        max_rotation=draw(st.one_of(st.floats(1e-9, math.pi), st.just(math.pi),
                                                    st.sampled_from([5e-324, 1e-300]))),
                        max_gripper_delta=draw(positive_limit), gripper_min=gmin, gripper_max=gmax)


def plausible_states() -> st.SearchStrategy:
    m, a = RANGES.max_position, RANGES.max_angle
    edge = st.sampled_from([0.0, -0.0, 5e-324, 0.2, 0.85, 0.02, 0.75, -0.5, 0.5, float(np.float32(0.85)), m, -m])
    pos = st.one_of(st.floats(-m, m), edge)
    ang = st.one_of(st.floats(-a, a), st.sampled_from([math.pi, -math.pi, math.pi / 2, a, -a, float(np.float32(math.pi))]))
    grip = st.one_of(st.floats(RANGES.gripper_min, RANGES.gripper_max),
                     st.sampled_from([0.0, 1.0, RANGES.gripper_min, RANGES.gripper_max]))
    return st.tuples(pos, pos, pos, ang, ang, ang, grip).map(lambda t: np.array(t, dtype=np.float64))


def actions(elements: st.SearchStrategy = finite_float) -> st.SearchStrategy:
    return st.lists(elements, min_size=7, max_size=7).map(lambda v: np.array(v, dtype=np.float64))


# -- properties --------------------------------------------------------------------------------------
@PROPERTY
@given(cfg=configs(), state=plausible_states(), action=actions())
def test_plausible_state_and_any_finite_action_give_an_action_inside_every_limit(cfg, state, action):
    safe = SafetyLayer(cfg).filter(state, action)  # a plausible state and a finite action are never refused
    assert limit_violations(cfg, state, safe.action) == []
    assert np.all(np.isfinite(safe.next_state))
    np.testing.assert_allclose(safe.next_state, apply_action(state, safe.action), atol=1e-9)


@PROPERTY
@given(cfg=configs(), state=st.one_of(plausible_states(), actions(any_float)), action=actions(any_float))
def test_any_state_and_action_are_refused_or_inside_every_limit(cfg, state, action):
    try:
        safe = SafetyLayer(cfg).filter(state, action)
    except SafetyStop as err:
        assert str(err)
        return
    assert is_plausible(state) and np.all(np.isfinite(action)), "an implausible state or non-finite action passed"
    assert limit_violations(cfg, state, safe.action) == []


@PROPERTY
@given(state=plausible_states(), field=st.integers(0, 6), value=finite_float)
def test_state_outside_its_physical_range_is_refused_naming_the_field(state, field, value):
    state[field] = value
    assume(not is_plausible(state))
    with pytest.raises(SafetyStop, match=rf"\b{['x', 'y', 'z', 'roll', 'pitch', 'yaw', 'gripper'][field]} = "):
        SafetyLayer().filter(state, np.zeros(7))


# -- regressions from the adversarial report -----------------------------------------------------------
def test_gripper_width_in_mm_is_refused_not_turned_into_a_huge_gripper_change():
    state = STATE.copy()
    state[6] = 80.0  # a gripper width in mm reported as closedness
    with pytest.raises(SafetyStop, match=r"gripper = 80\.0 is outside its physical range.*gripper in \[-0\.05, 1\.05\]"):
        SafetyLayer().filter(state, [0, 0, 0, 0, 0, 0, 1.0])


@pytest.mark.parametrize("field", [3, 4, 5])
def test_angles_of_a_million_radians_are_refused(field):
    state = STATE.copy()
    state[field] = 1e6
    with pytest.raises(SafetyStop, match=r"outside its physical range"):
        SafetyLayer().filter(state, np.full(7, 0.01))


def test_position_of_1e30_is_refused():
    state = STATE.copy()
    state[0] = 1e30  # x + dx == x in float64: the box and step checks would be meaningless
    with pytest.raises(SafetyStop, match=r"x = 1e\+30 is outside its physical range"):
        SafetyLayer().filter(state, np.full(7, 0.01))


def test_huge_euler_angles_of_a_small_rotation_survive_a_float32_cast():
    # 1e39 rad overflows float32 (inf); 2 pi 1e7 + 0.1 rounds in float32 to a different rotation. Find
    # angles of both kinds whose rotation is within the limit, so only the representation is at fault.
    layer = SafetyLayer()
    candidates = [np.nextafter(1e39, np.inf) * (1 + k * 1e-9) for k in range(400)]
    small = [v for v in candidates if Rotation.from_euler("xyz", [v, 0, 0]).magnitude() < 0.3]
    assert small, "no small rotation among the candidates"
    for angle in (small[0], 2 * math.pi * 1e7 + 0.1):
        action = np.array([0, 0, 0, angle, 0, 0, 0])
        safe = layer.filter(STATE, action)
        assert limit_violations(layer.config, STATE, safe.action) == []
        assert np.abs(safe.action[3:6]).max() <= math.pi  # the same rotation, written in [-pi, pi]
        same = Rotation.from_euler("xyz", safe.action[3:6]) * Rotation.from_euler("xyz", action[3:6]).inv()
        assert same.magnitude() < 1e-6


@pytest.mark.parametrize("field", range(7))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_action_is_refused(field, bad):
    action = np.full(7, 0.01)
    action[field] = bad
    with pytest.raises(SafetyStop, match="NaN/inf"):
        SafetyLayer().filter(STATE, action)
    with pytest.raises(SafetyStop, match="NaN/inf"):
        SafetyLayer().filter(STATE, action.astype(np.float32))


def test_state_at_the_workspace_edge_with_an_action_pointing_out():
    cfg = SafetyConfig(max_gripper_delta=0.01)
    layer = SafetyLayer(cfg)
    # on the x face (as a float32 robot reports it: slightly beyond), gripper reported a bit past closed
    state = np.array([np.float32(cfg.workspace_max[0]), 0.0, cfg.workspace_min[2], 0.0, 0.0, 0.0, 1.04])
    safe = layer.filter(state, [0.09, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0])
    assert limit_violations(cfg, state, safe.action) == []
    assert safe.action[0] <= 0.0 and safe.action[2] >= 0.0 and safe.action[6] <= 0.0
    # a gripper reported beyond the configured range moves back by at most max_gripper_delta
    safe = layer.filter(state, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    assert safe.action[6] == pytest.approx(-0.01)
    assert limit_violations(cfg, state, safe.action) == []


def test_huge_limits_still_give_float32_safe_actions():
    cfg = SafetyConfig(workspace_min=(-1e300,) * 3, workspace_max=(1e300,) * 3, max_translation=1e150,
                       max_gripper_delta=1e300)
    safe = SafetyLayer(cfg).filter(STATE, [1e150, 0, 0, 0, 0, 0, 1e300])
    assert limit_violations(cfg, STATE, safe.action) == []
    assert safe.action[0] > 0  # moved as far as plausible positions allow
    assert np.all(np.isfinite(safe.action.astype(np.float32)))


def test_workspace_outside_the_physical_range_is_a_config_error():
    with pytest.raises(ValueError, match=r"workspace x \[10\.0, 20\.0\].*physical"):
        SafetyLayer(SafetyConfig(workspace_min=(10.0, -0.5, 0.0), workspace_max=(20.0, 0.5, 0.5)))


def test_non_numeric_inputs_are_refused():
    layer = SafetyLayer()
    for bad in (["0.1"] * 7, [None] * 7, {"dx": 0.1}, [2**1000] * 7, np.zeros(7, dtype=bool)):
        with pytest.raises(SafetyStop):
            layer.filter(STATE, bad)


# -- the robot loop, the adapters and the server --------------------------------------------------------
class AbsurdRobot:
    """A kinematic robot whose reported state goes wrong at step `bad_at` (e.g. a gripper width in mm)."""

    def __init__(self, bad_at: int, field: int, value: float) -> None:
        self.state, self.received, self.stops, self.calls = STATE.copy(), [], 0, 0
        self.bad_at, self.field, self.value = bad_at, field, value

    def get_observation(self):
        state = self.state.copy()
        if self.calls >= self.bad_at:
            state[self.field] = self.value
        self.calls += 1
        return np.zeros((16, 16, 3), np.uint8), state.astype(np.float32)

    def apply_action(self, action):
        self.received.append(np.array(action))
        self.state = apply_action(self.state, np.asarray(action, dtype=np.float64))

    def stop(self):
        self.stops += 1


class CountingPolicy:
    def __init__(self) -> None:
        self.states = []

    def reset(self): ...

    def set_goal(self, goal, gripper=None): ...

    def infer(self, obs):
        self.states.append(np.asarray(obs["state"]))
        return {"action": np.array([0.01, 0, 0, 0, 0, 0, 1.0], np.float32)}

    def metadata(self):
        return {}


@pytest.mark.parametrize("field, value, name", [(6, 80.0, "gripper"), (3, 1e6, "roll"), (0, 1e30, "x")])
def test_loop_stops_before_planning_from_an_absurd_state(field, value, name):
    robot, policy = AbsurdRobot(bad_at=2, field=field, value=value), CountingPolicy()
    result = run_episode(robot, policy, np.zeros((16, 16, 3), np.uint8), max_steps=5, safety=SafetyConfig())
    assert result.status == "stopped" and f"{name} = " in result.stop_reason
    assert "physical range" in result.stop_reason and "step 2" in result.stop_reason
    assert len(policy.states) == 2 and len(robot.received) == 2 and robot.stops == 1  # never planned from it


class FakeDroid:
    action_space = "cartesian_position"

    def __init__(self, gripper: float) -> None:
        self.gripper, self.commands = gripper, []

    def get_state(self):
        return {"cartesian_position": STATE[:6].tolist(), "gripper_position": self.gripper}, {}

    def get_observation(self):
        return {"robot_state": self.get_state()[0], "image": {"cam": np.zeros((8, 8, 4), np.uint8)}}

    def step(self, command):
        self.commands.append(np.asarray(command))


def test_droid_adapter_refuses_a_gripper_width_in_mm():
    env = FakeDroid(gripper=80.0)
    robot = DroidRobot(env, camera_id="cam", sleep=lambda s: None)
    with pytest.raises(ValueError, match=r"gripper = 80\.0 is outside its physical range"):
        robot.get_observation()
    result = None
    with pytest.raises(ValueError, match="gripper = 80.0"):
        result = run_episode(robot, CountingPolicy(), np.zeros((8, 8, 3), np.uint8), 3, SafetyConfig())
    assert result is None and not env.commands  # nothing commanded, not even a hold at gripper 80


@pytest.mark.parametrize("state, match", [([0.5, 0, 0.3, 0, 0, 0, 80.0], "gripper = 80.0"),
                                          ([0.5, 0, 0.3, 1e6, 0, 0, 0.5], "roll = 1000000.0"),
                                          ([1e39, 0, 0.3, 0, 0, 0, 0.5], "x = 1e\\+39"),
                                          ([0.5, 0, 0.3, 0, 0, 0, math.nan], "NaN|not finite")])
def test_server_refuses_an_absurd_state(state, match):
    with pytest.raises(RequestError, match=match) as info:
        check_state_input(np.array(state))
    assert info.value.code == "bad_input"
    out = check_state_input(np.array([0.5, 0, 0.3, math.pi, 0, 0, 1.0]))
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
