"""The MPC control loop: observe, plan one action, pass it through the safety layer, execute, repeat.

    result = run_episode(robot, policy, goal_image, max_steps=20, safety=SafetyLayer())
    result.status, result.actions      # "max_steps" | "done" | "converged" | "stopped", [T, 7] actions sent

`policy` is anything with `reset()`, `set_goal(image, gripper=None)` and `infer(obs) -> {"action", ...}`:
the closed-loop `jepa_ac.control.Controller` in-process, a `jepa_ac.serving.client.PlannerClient` for a
planning server (which runs the same controller), or a baseline. `goal` may be a sequence of sub-goal
images ending with the goal (V-JEPA 2-AC's image sub-goals), with `goal_grippers` the closedness each
one shows; the policy gets them all at once and decides when to move on. A reply with `done` ends
the episode with status "converged" and its `stop_reason`; its `distance` (the observed latent
distance to the current goal) is recorded per step. After the last action the loop calls
`policy.observe(obs)` when the policy has it, so the final frame is measured and judged too.

If the robot reports a state that is not finite or outside its physical range (the safety layer's
`state_ranges`, e.g. a gripper width in mm), if the planner or the link fails, or if the safety
layer refuses an action, the robot is stopped (`robot.stop()` when it has one) and the episode ends
with status "stopped" and the reason; nothing unchecked is ever sent, and nothing is planned from an
implausible state. Errors raised by the robot itself (the adapters raise ValueError on an
implausible state) stop it and propagate. `should_stop(record)` (optional) is asked after each
executed step; a reason string ends the episode with status "converged".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from jepa_ac.control.controller import as_goal_list, check_goal_grippers
from jepa_ac.model.pose import check_states
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
    distance: float | None = None  # observed latent distance of the frame it was planned from to its goal


@dataclass
class EpisodeResult:
    status: str  # one of STATUSES
    steps: list[StepRecord] = field(default_factory=list)
    stop_reason: str | None = None
    success: bool | None = None  # from the robot's `success` attribute when it has one
    final_distance: float | None = None  # observed after the last action (policies that report distances)

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

    @property
    def distances(self) -> list[float]:
        """[T+1] observed latent distances: before each action and after the last ([] if not reported)."""
        values = [s.distance for s in self.steps] + ([self.final_distance] if self.final_distance is not None else [])
        return [] if any(v is None for v in values) else values

    @property
    def goal_switches(self) -> list[int]:
        """Steps after which the next sub-goal was aimed at."""
        return [a.index for a, b in zip(self.steps, self.steps[1:]) if b.goal_index != a.goal_index]


def run_episode(
    robot: Robot,
    policy: Policy,
    goal: np.ndarray | Sequence[np.ndarray],
    max_steps: int,
    safety: SafetyLayer | SafetyConfig,
    reset_policy: bool = True,
    on_step: Callable[[StepRecord], None] | None = None,
    should_stop: Callable[[StepRecord], str | None] | None = None,
    goal_grippers: Sequence[float | None] | None = None,
) -> EpisodeResult:
    """Run MPC until `max_steps`, until the robot reports `done`, the policy replies `done`,
    `should_stop` gives a reason, or a stop."""
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    goals = as_goal_list(goal)
    grippers = check_goal_grippers(goal_grippers, len(goals))
    if isinstance(safety, SafetyConfig):
        safety = SafetyLayer(safety)
    if not isinstance(safety, SafetyLayer):
        raise TypeError(f"safety must be a SafetyLayer or SafetyConfig, got {type(safety).__name__}")
    result = EpisodeResult(status="max_steps")

    def observe(index: int) -> tuple[np.ndarray, np.ndarray] | str:
        frame, state = robot.get_observation()
        try:  # a gripper width in mm or angles in degrees: a wiring error, not a state to plan from
            check_states(state, f"robot state at step {index}", safety.state_ranges)
        except ValueError as err:
            return f"{err}; not planning from it (check the robot's units and wiring)"
        return frame, state

    try:
        try:
            if reset_policy:
                policy.reset()
            if len(goals) == 1:  # every policy takes one goal; sequences go to those that plan through them
                policy.set_goal(goals[0], *([] if grippers[0] is None else [grippers[0]]))
            else:
                policy.set_goal(goals, grippers)
        except Exception as err:  # noqa: BLE001 - any planner/link failure must stop the robot
            return _stop(robot, result, f"planner failed on set_goal: {type(err).__name__}: {err}")
        for index in range(max_steps):
            if getattr(robot, "done", False):
                result.status = "done"
                break
            start = time.perf_counter()
            observed = observe(index)
            if isinstance(observed, str):
                return _stop(robot, result, observed)
            frame, state = observed
            try:
                out = policy.infer({"image": frame, "state": state})
                if out.get("done"):
                    result.status, result.stop_reason = "converged", str(out.get("stop_reason") or "policy done")
                    result.final_distance = _number(out.get("distance"))
                    break
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
                                planner=dict(out.get("planner") or {}), goal_index=int(out.get("goal_index") or 0),
                                distance=_number(out.get("distance")))
            result.steps.append(record)
            if on_step is not None:
                on_step(record)
            reason = should_stop(record) if should_stop is not None else None
            if reason:
                result.status, result.stop_reason = "converged", str(reason)
                break
        else:
            if getattr(robot, "done", False):
                result.status = "done"
        if result.status in ("max_steps", "done") and result.steps and hasattr(policy, "observe"):
            # the frame after the last action: its distance, and whether the goals are done by it
            observed = observe(len(result.steps))
            if isinstance(observed, str):
                return _stop(robot, result, observed)
            try:
                out = policy.observe({"image": observed[0], "state": observed[1]})
            except Exception as err:  # noqa: BLE001
                return _stop(robot, result, f"planner failed on the final observation: {type(err).__name__}: {err}")
            result.final_distance = _number(out.get("distance"))
            if out.get("done"):
                result.status, result.stop_reason = "converged", str(out.get("stop_reason") or "policy done")
    except BaseException:
        # the robot (or a callback, or Ctrl-C) failed: halt it, then let the error through
        _call_stop(robot)
        raise
    result.success = _success(robot)
    return result


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


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
