"""The MPC control loop: observe, plan one action, pass it through the safety layer, execute, repeat.

    result = run_episode(robot, policy, goal_image, max_steps=20, safety=SafetyLayer())
    result.status, result.actions      # "max_steps" | "done" | "converged" | "stopped", [T, 7] actions sent

`policy` is anything with `reset()`, `set_goal(image)` and `infer(obs) -> {"action", ...}`: a
`jepa_ac.PlanningPolicy` in-process or a `jepa_ac.client.PlannerClient` for a planning server.
If the robot reports a state that is not finite or outside its physical range (the safety layer's
`state_ranges`, e.g. a gripper width in mm), if the planner or the link fails, or if the safety
layer refuses an action, the robot is stopped (`robot.stop()` when it has one) and the episode ends
with status "stopped" and the reason; nothing unchecked is ever sent, and nothing is planned from an
implausible state. Errors raised by the robot itself (the adapters raise ValueError on an
implausible state) stop it and propagate.
`should_stop(record)` (optional) is asked after each executed step; a reason string ends the
episode with status "converged" (e.g. the latent distance to the goal stopped improving).

`goal` may also be a sequence of sub-goal images ending with the goal: the policy aims at the first,
and moves on to the next whenever `should_advance(record)` says so (V-JEPA 2-AC's image sub-goals):

    run_episode(robot, policy, [above, grasped, lifted, goal], 60, safety, should_advance=reached)

`goal_grippers` (one closedness in [0, 1] or None per goal, e.g. the gripper state recorded with each
demonstration frame) is passed on as `policy.set_goal(image, gripper=...)`: the planner then holds the
gripper toward it instead of planning it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from jepa_ac.pose import check_states
from jepa_ac.robot.protocol import Policy, Robot
from jepa_ac.robot.safety import SafetyConfig, SafetyLayer, SafetyStop

logger = logging.getLogger(__name__)

STATUSES = ("max_steps", "done", "converged", "stopped")


@dataclass
class StepRecord:
    """One executed MPC step."""

    index: int
    state: np.ndarray  # [7] state the action was planned from
    requested: np.ndarray  # [7] action from the planner
    action: np.ndarray  # [7] action sent to the robot (after the safety layer)
    clips: tuple[str, ...]  # safety clips applied
    energy: float | None
    timing: dict[str, float]  # planner timing plus "step_s" (observe + plan + act)
    planner: dict[str, Any] = field(default_factory=dict)  # planner info: replanned, samples_evaluated, surprise
    goal_index: int = 0  # which of the (sub-)goals this step aimed at


@dataclass
class EpisodeResult:
    status: str  # one of STATUSES
    steps: list[StepRecord] = field(default_factory=list)
    stop_reason: str | None = None
    success: bool | None = None  # from the robot's `success` attribute when it has one
    goal_switches: list[int] = field(default_factory=list)  # steps after which the next sub-goal was set

    @property
    def actions(self) -> np.ndarray:
        """[T, 7] actions sent to the robot."""
        return np.stack([s.action for s in self.steps]) if self.steps else np.zeros((0, 7))

    @property
    def requested(self) -> np.ndarray:
        """[T, 7] actions the planner asked for."""
        return np.stack([s.requested for s in self.steps]) if self.steps else np.zeros((0, 7))

    @property
    def num_clipped(self) -> int:
        return sum(bool(s.clips) for s in self.steps)


def as_goal_list(goal: Any) -> list[np.ndarray]:
    """One goal image [H, W, 3] or a sequence of them ([K, H, W, 3] or a list) -> list of K images."""
    if isinstance(goal, np.ndarray) and goal.ndim == 3:
        return [goal]
    goals = list(goal) if isinstance(goal, (list, tuple, np.ndarray)) else []
    if not goals or any(not isinstance(g, np.ndarray) or g.ndim != 3 for g in goals):
        raise ValueError("goal must be an image [H, W, 3] or a non-empty sequence of such images (sub-goals, "
                         f"then the goal), got {type(goal).__name__}")
    return goals


def check_goal_grippers(grippers: Sequence[float | None] | None, num_goals: int) -> list[float | None]:
    """One gripper closedness in [0, 1] (or None: planned) per goal; None for all when not given."""
    if grippers is None:
        return [None] * num_goals
    grippers = list(grippers)
    if len(grippers) != num_goals:
        raise ValueError(f"goal_grippers has {len(grippers)} values for {num_goals} goals; give one per goal")
    for g in grippers:
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float, np.floating)) or not 0 <= g <= 1):
            raise ValueError(f"goal_grippers values must be closedness in [0, 1] (0 open, 1 closed) or None, got {g!r}")
    return [None if g is None else float(g) for g in grippers]


def run_episode(
    robot: Robot,
    policy: Policy,
    goal: np.ndarray | Sequence[np.ndarray],
    max_steps: int,
    safety: SafetyLayer | SafetyConfig,
    reset_policy: bool = True,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[StepRecord], str | None] | None = None,
    should_advance: Callable[[StepRecord], bool] | None = None,
    goal_grippers: Sequence[float | None] | None = None,
) -> EpisodeResult:
    """Run MPC until `max_steps`, until the robot reports `done`, `should_stop` gives a reason, or a stop.
    With sub-goals, `should_advance(record)` (asked after `should_stop`, never on the last goal) moves on."""
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    goals = as_goal_list(goal)
    grippers = check_goal_grippers(goal_grippers, len(goals))
    goal_index = 0

    def set_goal(k: int) -> None:
        policy.set_goal(goals[k], *([] if grippers[k] is None else [grippers[k]]))

    if isinstance(safety, SafetyConfig):
        safety = SafetyLayer(safety)
    if not isinstance(safety, SafetyLayer):
        raise TypeError(f"safety must be a SafetyLayer or SafetyConfig, got {type(safety).__name__}")
    result = EpisodeResult(status="max_steps")
    try:
        try:
            if reset_policy:
                policy.reset()
            set_goal(0)
        except Exception as err:  # noqa: BLE001 - any planner/link failure must stop the robot
            return _stop(robot, result, f"planner failed on set_goal: {type(err).__name__}: {err}")
        for index in range(max_steps):
            if getattr(robot, "done", False):
                result.status = "done"
                break
            start = time.perf_counter()
            frame, state = robot.get_observation()
            try:  # a gripper width in mm or angles in degrees: a wiring error, not a state to plan from
                check_states(state, f"robot state at step {index}", safety.state_ranges)
            except ValueError as err:
                return _stop(robot, result, f"{err}; not planning from it (check the robot's units and wiring)")
            try:
                out = policy.infer({"image": frame, "state": state})
                requested = out["action"]
            except Exception as err:  # noqa: BLE001
                return _stop(robot, result, f"planner failed at step {index}: {type(err).__name__}: {err}")
            try:
                safe = safety.filter(state, requested)
            except SafetyStop as err:
                return _stop(robot, result, f"safety refused the action at step {index}: {err}")
            robot.apply_action(safe.action)
            timing = {k: float(v) for k, v in dict(out.get("timing") or {}).items()}
            timing["step_s"] = time.perf_counter() - start
            energy = out.get("energy")
            record = StepRecord(index=index, state=np.asarray(state, dtype=np.float64), requested=safe.requested,
                                action=safe.action, clips=safe.clips,
                                energy=None if energy is None else float(energy), timing=timing,
                                planner=dict(out.get("planner") or {}), goal_index=goal_index)
            result.steps.append(record)
            if on_step is not None:
                on_step(record)
            reason = should_stop(record) if should_stop is not None else None
            if reason:
                result.status, result.stop_reason = "converged", str(reason)
                break
            if goal_index < len(goals) - 1 and should_advance is not None and should_advance(record):
                goal_index += 1
                try:
                    set_goal(goal_index)
                except Exception as err:  # noqa: BLE001
                    return _stop(robot, result, f"planner failed on set_goal (sub-goal {goal_index}): "
                                                f"{type(err).__name__}: {err}")
                result.goal_switches.append(index)
        else:
            if getattr(robot, "done", False):
                result.status = "done"
    except BaseException:
        # the robot (or a callback, or Ctrl-C) failed: halt it, then let the error through
        _call_stop(robot)
        raise
    result.success = _success(robot)
    return result


def _stop(robot: Robot, result: EpisodeResult, reason: str) -> EpisodeResult:
    logger.error("stopping the robot: %s", reason)
    _call_stop(robot)
    result.status, result.stop_reason, result.success = "stopped", reason, _success(robot)
    return result


def _call_stop(robot: Robot) -> None:
    stop = getattr(robot, "stop", None)
    if callable(stop):
        try:
            stop()
        except Exception:  # noqa: BLE001 - report, but the original failure is the one to surface
            logger.exception("robot.stop() failed")


def _success(robot: Robot) -> bool | None:
    value = getattr(robot, "success", None)
    return None if value is None else bool(value)
