"""The one closed-loop controller: what runs between a camera frame and the next action, the same
in the simulator (`plan`, `evaluate`), behind the planning server and on a robot.

    controller = Controller(CEMPlanner(wm, cem, spec), mpc)
    controller.set_goal([above, grasped, goal], gripper=[0.0, 1.0, 1.0])  # sub-goals, then the goal
    out = controller.infer({"image": frame, "state": state})   # once per control step
    out["action"], out["distance"], out["goal_index"], out["settling"], out["done"]

Each step encodes the frame once; its latent gives both the observed distance to the current goal
and the plan. The distance drives the goal schedule (`GoalSchedule`): a sub-goal is done when the
distance stops improving (or after a step cap) and the next goal is set; on the last goal the
patience rule ends the episode (`done`, with `stop_reason`). With `mpc.return_to_best` a goal that
is done is first settled: straight moves back to the state where its distance was lowest. With
`mpc.regrasps` a grasp the measured gripper shows empty sends the schedule back to the approach. The
planner's own options (warm start, surprise gate, hold unless better) live in its `CEMConfig`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import numpy as np

from jepa_ac.model.pose import GRIPPER, POSITION
from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.defaults import MPCConfig


class PatienceStop:
    """Stop once the distance has not fallen more than `min_improvement` below its best for `patience` steps."""

    def __init__(self, patience: int | None, min_improvement: float = 0.0) -> None:
        self.patience, self.min_improvement = patience, min_improvement
        self.best, self.stale = math.inf, 0

    def update(self, distance: float) -> str | None:
        if distance < self.best - self.min_improvement:
            self.best, self.stale = distance, 0
            return None
        self.stale += 1
        if self.patience is not None and self.stale >= self.patience:
            return (f"latent distance {distance:.4f} has not improved on its best {self.best:.4f} "
                    f"for {self.stale} steps (patience {self.patience})")
        return None


class GoalSchedule:
    """Sub-goal switching and the stop rule, from the observed latent distance to the current goal.

    On a sub-goal (not the last goal), `observe` marks it done once the distance has not improved for
    `mpc.subgoal_patience` steps or after `mpc.subgoal_max_steps` steps on it; `advance()` reports
    that (once) so the loop sets the next goal. On the last goal `observe` applies `mpc.patience`
    and returns the stop reason. Every goal starts with a fresh best distance.

    With `mpc.return_to_best` a goal that is done is settled first: `return_target` is then the state
    [7] at which the observed distance to it was lowest, the controller's next actions (straight moves) drive
    the robot there, and only then does the schedule move on or stop.

    With `mpc.regrasps` and `grippers` (each goal's closedness, None: planned), a measured closedness above
    a closed goal's by more than `mpc.regrasp_margin` (the grasp missed or dropped its object) sends the
    schedule back to the open goals before that grasp (`regrasp_from`), at most `mpc.regrasps` times.
    """

    def __init__(self, mpc: MPCConfig, num_goals: int, grippers: Sequence[float | None] | None = None) -> None:
        self.mpc, self.num_goals = mpc, num_goals
        self.grippers = list(grippers) if grippers is not None else [None] * num_goals
        self.goal_index, self.steps_on_goal = 0, 0
        self._next: int | None = None  # the goal `advance()` moves to (the next one, or back for a regrasp)
        self.regrasps = 0  # grasps retried so far
        self.stopper = self._stopper()
        self.best_state: np.ndarray | None = None  # [7] where the current goal's best distance was seen
        self.return_target: np.ndarray | None = None  # [7] while settling a goal that is done
        self.return_moves = 0  # settling moves made on the current goal
        self._reason: str | None = None  # the last goal's stop reason, held while settling

    def _stopper(self) -> PatienceStop:
        last = self.goal_index == self.num_goals - 1
        return PatienceStop(self.mpc.patience if last else self.mpc.subgoal_patience, self.mpc.min_improvement)

    def _update(self, distance: float, state: np.ndarray | None) -> str | None:
        best = self.stopper.best
        reason = self.stopper.update(distance)
        if self.stopper.best != best and state is not None:
            self.best_state = np.array(state, np.float64)
        return reason

    def baseline(self, distance: float, state: np.ndarray | None = None) -> None:
        """The distance before the first action (the best the first action has to beat) and its state."""
        self._update(distance, state)

    def observe(self, distance: float | None, state: np.ndarray | None = None) -> str | None:
        """The distance after an action aimed at the current goal (None: not measured, so only the
        sub-goal step cap applies) and the state it was measured in; a stop reason on the last goal."""
        restart = self._regrasp(state)
        if restart is not None:  # the grasp is empty: approach again (the controller re-aims at `advance()`)
            self.regrasps, self.return_target, self._next = self.regrasps + 1, None, restart
            return None
        if self.return_target is not None:  # that action was a settling move
            self.return_moves += 1
            if self._near_target(state) or self.return_moves >= self.mpc.return_max_steps:
                self.return_target = None
                return self._finish(self._reason)
            return None
        self.steps_on_goal += 1
        reason = None if distance is None else self._update(distance, state)
        last = self.goal_index == self.num_goals - 1
        cap = self.mpc.subgoal_max_steps
        done = reason is not None or (not last and cap is not None and self.steps_on_goal >= cap)
        if not done:
            return None
        if self.mpc.return_to_best and self.best_state is not None and state is not None:
            self.return_target, self._reason = self.best_state, reason
            if not self._near_target(state):
                return None
            self.return_target = None
        return self._finish(reason)

    def regrasp_from(self, k: int) -> int | None:
        """The goal a failed grasp at goal `k` restarts from: the first of the open goals (closedness 0)
        just before the closed goals that `k` belongs to; None if `k` is not closed or none precede it."""
        closed = [g is not None and g > 0.0 for g in self.grippers]
        if not closed[k]:
            return None
        first_closed = k
        while first_closed > 0 and closed[first_closed - 1]:
            first_closed -= 1
        start = first_closed
        while start > 0 and self.grippers[start - 1] == 0.0:
            start -= 1
        return None if start == first_closed else start

    def _regrasp(self, state: np.ndarray | None) -> int | None:
        """The goal to restart from if the fingers closed past the current goal's closedness (by more than
        the margin) and regrasps are left; else None."""
        if state is None or self.regrasps >= self.mpc.regrasps or self._next is not None:
            return None
        expected = self.grippers[self.goal_index]
        if expected is None or expected + self.mpc.regrasp_margin >= 1.0:  # a full close cannot tell
            return None
        if float(np.asarray(state, np.float64)[GRIPPER]) <= expected + self.mpc.regrasp_margin:
            return None
        return self.regrasp_from(self.goal_index)

    def _near_target(self, state: np.ndarray | None) -> bool:
        if state is None:
            return False
        position = np.asarray(state, np.float64)[POSITION]
        return bool(np.linalg.norm(position - self.return_target[POSITION]) <= self.mpc.return_tolerance)

    def _finish(self, reason: str | None) -> str | None:
        """The current goal is done (and settled): stop on the last goal, else move on at `advance()`."""
        if self.goal_index == self.num_goals - 1:
            if reason and self.return_moves:
                reason += f"; returned toward the best state in {self.return_moves} moves"
            return reason
        self._next = self.goal_index + 1
        return None

    def advance(self, record: Any = None) -> bool:
        """True (once) when the current sub-goal is done, or a grasp is retried; the schedule then moves
        to the next goal (or back to the approach)."""
        if self._next is None:
            return False
        self.goal_index, self._next = self._next, None
        self.steps_on_goal, self.return_moves = 0, 0
        self.stopper, self.best_state = self._stopper(), None
        return True


def as_goal_list(goal: Any) -> list[np.ndarray]:
    """One goal image [H, W, 3] or a sequence of them ([K, H, W, 3] or a list) -> list of K images."""
    if isinstance(goal, np.ndarray) and goal.ndim == 3:
        return [goal]
    goals = list(goal) if isinstance(goal, (list, tuple, np.ndarray)) else []
    if not goals or any(not isinstance(g, np.ndarray) or g.ndim != 3 for g in goals):
        raise ValueError("goal must be an image [H, W, 3] or a non-empty sequence of such images (sub-goals, "
                         f"then the goal), got {type(goal).__name__}")
    return goals


def check_goal_grippers(grippers: Any, num_goals: int) -> list[float | None]:
    """One gripper closedness in [0, 1] (or None: planned) per goal; a single value applies to one goal;
    None for all when not given."""
    if grippers is None:
        return [None] * num_goals
    if not isinstance(grippers, (list, tuple, np.ndarray)):
        grippers = [grippers]
    grippers = list(grippers)
    if len(grippers) != num_goals:
        raise ValueError(f"goal grippers: {len(grippers)} values for {num_goals} goals; give one per goal")
    for g in grippers:
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float, np.floating))
                              or not 0 <= g <= 1):
            raise ValueError(f"goal gripper values must be closedness in [0, 1] (0 open, 1 closed) or None, got {g!r}")
    return [None if g is None else float(g) for g in grippers]


class Controller:
    """Goal sequence, observed distance, sub-goal schedule, settling and the planner, behind the
    policy interface (`reset`, `set_goal`, `infer`, `metadata`) that `run_episode` and the server use.

    `infer(obs)` observes the frame (after the previous action) and returns the next action, or
    `done` with `stop_reason` and no action once the last goal is done. `observe(obs)` only observes:
    the loop calls it after its last action so that the final distance and stop rule are applied.
    """

    def __init__(self, planner: Any, mpc: MPCConfig, spec: ActionSpec | None = None,
                 planning: Mapping[str, Any] | None = None) -> None:
        self.planner, self.mpc = planner, mpc
        self.planning = dict(planning or {})  # the planning settings it was built from (for metadata)
        self.base_spec = spec or planner.base_spec  # bounds of the settling moves
        self._goal_latents: list[Any] = []
        self._grippers: list[float | None] = []
        self.schedule: GoalSchedule | None = None
        self._observed = 0  # frames observed since the goals were set
        self._done_reason: str | None = None  # why the last goal is done (None: not done)

    # -- policy interface ------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Forget the planner's warm start and the progress on the goals (the goals stay set);
        `seed` reseeds the planner (default: its config's seed)."""
        self.planner.reset(seed)
        if self._goal_latents:
            self._start()

    def set_goal(self, goal: Any, gripper: Any = None) -> None:
        """One goal image [H, W, 3], or sub-goal images then the goal; `gripper`: the closedness each
        goal shows (one value per goal, None entries planned). Each image is encoded once, here."""
        goals = as_goal_list(goal)
        self._grippers = check_goal_grippers(gripper, len(goals))
        self._goal_latents = [self.planner.encode_frame(g, f"goal {k}'s latent") for k, g in enumerate(goals)]
        self._start()

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Observe `obs` ({"image", "state"}) and plan the next action (none once done)."""
        return self._step(obs, act=True)

    def observe(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        """Observe `obs` without planning: its distance, and whether the goals are done."""
        return self._step(obs, act=False)

    def metadata(self) -> dict[str, Any]:
        return {**self.planner_metadata(), "mpc": dict(vars(self.mpc)), "planning": self.planning}

    def planner_metadata(self) -> dict[str, Any]:
        from jepa_ac.planning import PlanningPolicy

        return PlanningPolicy(self.planner).metadata()

    # -- state -----------------------------------------------------------------------------------

    @property
    def goal_index(self) -> int:
        return self.schedule.goal_index if self.schedule is not None else 0

    @property
    def num_goals(self) -> int:
        return len(self._goal_latents)

    @property
    def goal_grippers(self) -> list[float | None]:
        return list(self._grippers)

    def _start(self) -> None:
        self.schedule = GoalSchedule(self.mpc, len(self._goal_latents), self._grippers)
        self._observed = 0
        self._done_reason = None
        self._aim(0)

    def _aim(self, k: int) -> None:
        gripper = self._grippers[k]
        self.spec = self.base_spec if gripper is None else self.base_spec.holding_gripper(gripper)
        self.planner.set_goal_latent(self._goal_latents[k], gripper)

    def _step(self, obs: Mapping[str, Any], act: bool) -> dict[str, Any]:
        from jepa_ac.planning.planner import check_observation, check_state, plan_reply

        if self.schedule is None:
            raise ValueError("no goal: call set_goal(image or images) first")
        check_observation(obs)
        start = time.perf_counter()
        state = check_state(obs["state"])
        z = self.planner.encode_frame(obs["image"])  # [1, N, D]: the one encode of this step
        goal_index = self.schedule.goal_index
        distance = self.planner.goal_distance(z)
        if self._done_reason is None:
            if self._observed == 0:
                self.schedule.baseline(distance, state)
            else:
                reason = self.schedule.observe(distance, state)
                if reason:
                    self._done_reason = reason
                elif self.schedule.advance():
                    self._aim(self.schedule.goal_index)
        self._observed += 1
        out: dict[str, Any] = {"distance": distance, "distance_goal_index": goal_index,
                               "goal_index": self.schedule.goal_index, "num_goals": self.num_goals,
                               "done": self._done_reason is not None, "stop_reason": self._done_reason,
                               "settling": self.schedule.return_target is not None, "action": None,
                               "energy": None, "planner": {}}
        if not act or out["done"]:
            out["timing"] = {"plan_s": time.perf_counter() - start, "total_s": time.perf_counter() - start}
            return out
        if self.schedule.return_target is not None:  # settling: a straight move back, no planning
            out["action"] = self.spec.move_toward(state, self.schedule.return_target).astype(np.float32)  # [7]
            out["planner"] = {"replanned": False, "samples_evaluated": 0, "returned": True}
        else:
            out.update(plan_reply(self.planner.plan_from_latent(z, state)))
        total = time.perf_counter() - start
        out["timing"] = {"plan_s": total, "total_s": total}
        return out
