"""Closed-loop episodes in the simulated Franka envs, shared by `python -m jepa_ac.plan` and `evaluate`.

    env = make_env("jepa_ac/FrankaReach-v0", EnvOptions(image_size=64))
    planner = CEMPlanner(wm, cem_config, action_spec)
    report = run_closed_loop(env, PlanningPolicy(planner), seed=0, mpc=MPCConfig(max_steps=20),
                             distance=LatentDistance(planner))
    report.success, report.distances, report.plan_s, report.task_distance

The control loop itself is `jepa_ac.robot.run_episode` (observe, plan, safety filter, act) on a
`GymRobot`; this module adds what planning in simulation needs around it: the goal the env
renders for the seeded episode, the observed latent distance to the goal after every action,
the patience stop rule, recorded frames, and baseline policies (uniform random, scripted expert)
with the same interface as `PlanningPolicy`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.defaults import EnvOptions, MPCConfig
from jepa_ac.robot.adapters import GymRobot
from jepa_ac.robot.loop import StepRecord, as_goal_list, run_episode
from jepa_ac.robot.safety import SafetyConfig, SafetyLayer

# the simulator's final distance that defines each task's success
TASK_DISTANCE = {"reach": "ee_to_goal", "push": "block_to_target", "pickplace": "cube_to_bowl"}
POLICIES = ("planner", "random", "expert")


def make_env(env_id: str, options: EnvOptions, step_budget: int | None = None, **kwargs: Any):
    """`gymnasium.make(env_id)` with the planning env options (image size, control rate, camera view).

    `step_budget` (pass `mpc.max_steps`) replaces the registered time limit with one just above it, so
    the planner's own budget ends the episode: a registered limit below it would cut the episode
    short, reported as "done"."""
    import gymnasium

    import jepa_ac.envs  # noqa: F401 - registers the Franka ids

    if env_id not in gymnasium.registry:
        known = sorted(k for k in gymnasium.registry if k.startswith("jepa_ac/"))
        raise ValueError(f"unknown env id {env_id!r}; the Franka envs are {known}")
    if step_budget is not None:
        kwargs["max_episode_steps"] = step_budget + 1
    if options.exterior_view is not None:
        kwargs.setdefault("exterior_view", options.exterior_view)
    return gymnasium.make(env_id, image_size=options.image_size, control_hz=options.control_hz, **kwargs)


def sim_safety(env: Any) -> SafetyLayer:
    """The default safety workspace with per-step limits as wide as the env's action space.

    The simulator bounds its own actions; this keeps the NaN/inf refusal and the workspace box of
    `SafetyConfig` without scaling down actions the env accepts (the experts use up to 8 cm per axis).
    """
    high = np.asarray(env.action_space.high, dtype=np.float64)
    return SafetyLayer(SafetyConfig(max_translation=float(np.linalg.norm(high[:3])),
                                    max_rotation=float(min(np.linalg.norm(high[3:6]), math.pi)),
                                    max_gripper_delta=float(high[6])))


class LatentDistance:
    """L1 energy between an observed frame's latent and the planner's goal latent (the goal is encoded once)."""

    def __init__(self, planner: Any) -> None:
        self.planner = planner

    def __call__(self, frame: np.ndarray) -> float:
        wm = self.planner.wm
        if not self.planner.has_goal:
            raise ValueError("LatentDistance: the planner has no goal yet")
        z = wm.encode(frame)  # [1, N, D]
        return float(wm.ops.to_numpy(wm.energy(z, self.planner.goal_latent))[0])


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
    [7] at which the observed distance to it was lowest, the loop's next actions (`ReturnToBest`) drive
    the robot there, and only then does the schedule move on or stop.
    """

    def __init__(self, mpc: MPCConfig, num_goals: int) -> None:
        self.mpc, self.num_goals = mpc, num_goals
        self.goal_index, self.steps_on_goal, self._advance = 0, 0, False
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

    def _near_target(self, state: np.ndarray | None) -> bool:
        return state is not None and bool(
            np.linalg.norm(np.asarray(state, np.float64)[:3] - self.return_target[:3]) <= self.mpc.return_tolerance)

    def _finish(self, reason: str | None) -> str | None:
        """The current goal is done (and settled): stop on the last goal, else move on at `advance()`."""
        if self.goal_index == self.num_goals - 1:
            if reason and self.return_moves:
                reason += f"; returned toward the best state in {self.return_moves} moves"
            return reason
        self._advance = True
        return None

    def advance(self, record: Any = None) -> bool:
        """True (once) when the current sub-goal is done; the schedule then moves to the next goal."""
        if not self._advance:
            return False
        self._advance = False
        self.goal_index, self.steps_on_goal, self.return_moves = self.goal_index + 1, 0, 0
        self.stopper, self.best_state = self._stopper(), None
        return True


class ReturnToBest:
    """A policy wrapper: while `schedule` settles a goal, the action is a straight move toward its
    `return_target` within `spec`'s bounds (no planning); otherwise the wrapped policy plans."""

    def __init__(self, policy: Any, schedule: GoalSchedule, spec: ActionSpec) -> None:
        self.policy, self.schedule, self.base_spec = policy, schedule, spec
        self.spec = spec  # with the gripper held when the current goal gives one

    def reset(self) -> None:
        self.policy.reset()

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        self.spec = self.base_spec if gripper is None else self.base_spec.holding_gripper(gripper)
        self.policy.set_goal(goal, gripper)

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        target = self.schedule.return_target
        if target is None:
            return self.policy.infer(obs)
        start = time.perf_counter()
        action = self.spec.move_toward(obs["state"], target)  # [7]
        return {"action": action, "energy": None, "timing": {"plan_s": time.perf_counter() - start},
                "planner": {"replanned": False, "samples_evaluated": 0, "returned": True}}

    def metadata(self) -> dict[str, Any]:
        return self.policy.metadata()


class RandomPolicy:
    """Uniform random actions inside an `ActionSpec`'s bounds (frozen dims at their values); seeded."""

    def __init__(self, spec: ActionSpec, seed: int = 0) -> None:
        self.spec, self.seed = spec, seed
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        """The goal is ignored."""

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        bounds = self.spec.free_bounds  # [F]
        free = self.rng.uniform(-bounds, bounds).astype(np.float32)  # [F]
        action = self.spec.clip_full(self.spec.expand(free, _numpy_ops()))  # [7]
        return {"action": action, "energy": None, "timing": {"plan_s": time.perf_counter() - start}}

    def metadata(self) -> dict[str, Any]:
        return {"policy": "random", "seed": self.seed, "free": list(self.spec.free_names)}


class ExpertPolicy:
    """The env's scripted expert (privileged object poses) behind the policy interface."""

    def __init__(self, env: Any, noise: float = 0.0, seed: int = 0) -> None:
        from jepa_ac.envs import make_expert

        self.expert = make_expert(env, noise=noise, seed=seed)
        self.noise, self.seed = noise, seed

    def reset(self) -> None:
        self.expert.reset()

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        """The expert reads the goal from the simulator; the image is ignored."""

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        action = self.expert.act({"state": obs["state"]})
        return {"action": action, "energy": None, "timing": {"plan_s": time.perf_counter() - start}}

    def metadata(self) -> dict[str, Any]:
        return {"policy": "expert", "noise": self.noise, "seed": self.seed}


def warm_up(wm: Any, cem_config: Any, spec: ActionSpec, frame: np.ndarray, state: np.ndarray) -> float:
    """One throwaway plan (frame -> itself) so that lazy initialisation and compilation (MLX compiles
    the predictor on first use) do not count as the first step's planning time; returns its seconds."""
    from jepa_ac.planning import CEMPlanner

    start = time.perf_counter()
    CEMPlanner(wm, cem_config, spec).plan(frame, state, goal=frame)
    return time.perf_counter() - start


def _numpy_ops():
    from jepa_ac.array_ops import NUMPY_OPS

    return NUMPY_OPS


@dataclass
class EpisodeReport:
    """What one closed-loop episode did; `metrics()` is its JSON record."""

    env_id: str
    seed: int
    status: str  # jepa_ac.robot.loop.STATUSES
    stop_reason: str | None
    success: bool
    steps: int
    energies: list[float | None]  # [T] planner's best imagined energy per step
    distances: list[float]  # [T+1] observed latent distance at reset and after each action ([] without a model)
    plan_s: list[float]  # [T] policy time per step
    step_s: list[float]  # [T] observe + plan + act per step
    num_clipped: int
    info: dict[str, Any]  # the simulator's final info (numbers only)
    task_distance_name: str | None
    frames: list[np.ndarray] = field(default_factory=list)  # [T+1] uint8 [H, W, 3] when recorded
    planner: list[dict[str, Any]] = field(default_factory=list)  # [T] planner info (replanned, samples, surprise)
    goal_indices: list[int] = field(default_factory=list)  # [T] which (sub-)goal each step aimed at
    num_goals: int = 1  # sub-goals + the goal (`goals_attempted` in metrics: how many of them the planner aimed at)
    goal_grippers: list[float | None] | None = None  # [K] gripper closedness held for each goal (None: planned)
    actions: list[list[float]] = field(default_factory=list)  # [T][7] actions sent (after the safety layer)
    requested: list[list[float]] = field(default_factory=list)  # [T][7] actions the policy asked for

    @property
    def planned_s(self) -> list[float]:
        """Policy time of the steps that planned (a move back to a goal's best state does not)."""
        if not self.planner:
            return self.plan_s
        return [t for t, p in zip(self.plan_s, self.planner) if not p.get("returned", False)]

    @property
    def task_distance(self) -> float | None:
        return None if self.task_distance_name is None else self.info.get(self.task_distance_name)

    def metrics(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id, "seed": self.seed, "success": self.success, "status": self.status,
            "stop_reason": self.stop_reason, "steps": self.steps,
            "final_latent_distance": self.distances[-1] if self.distances else None,
            "initial_latent_distance": self.distances[0] if self.distances else None,
            "task_distance_name": self.task_distance_name, "final_task_distance": self.task_distance,
            "plan_s_mean": float(np.mean(self.planned_s)) if self.planned_s else None,
            "plan_s_max": float(np.max(self.planned_s)) if self.planned_s else None,
            "step_s_mean": float(np.mean(self.step_s)) if self.step_s else None,
            "num_clipped": self.num_clipped,
            "replans": sum(bool(p.get("replanned", True)) for p in self.planner) if self.planner else None,
            "samples_evaluated": sum(int(p.get("samples_evaluated", 0)) for p in self.planner) if self.planner else None,
            "holds": sum(bool(p.get("held", False)) for p in self.planner) if self.planner else None,
            "returns": sum(bool(p.get("returned", False)) for p in self.planner) if self.planner else None,
            "num_goals": self.num_goals,
            "goal_grippers": self.goal_grippers,
            "goals_attempted": (self.goal_indices[-1] if self.goal_indices else 0) + 1,
            "per_step": {"energy": self.energies, "latent_distance": self.distances[1:], "plan_s": self.plan_s,
                         "step_s": self.step_s, "surprise": [p.get("surprise") for p in self.planner],
                         "replanned": [p.get("replanned") for p in self.planner],
                         "returned": [bool(p.get("returned", False)) for p in self.planner],
                         "action": self.actions, "requested": self.requested,
                         "goal_index": self.goal_indices},
            "final_info": self.info,
        }


def run_closed_loop(
    env: Any,
    policy: Any,
    seed: int,
    mpc: MPCConfig,
    goal: np.ndarray | list[np.ndarray] | None = None,
    distance: Callable[[np.ndarray], float] | None = None,
    record_frames: bool = False,
    on_step: Callable[[StepRecord, float | None], None] | None = None,
    action_spec: ActionSpec | None = None,
    goal_grippers: list[float | None] | None = None,
) -> EpisodeReport:
    """Reset `env` with `seed`, then MPC with `policy` towards `goal` (default: the env's goal image, or
    with `mpc.subgoals` its sub-goal images then the goal; a list of images is a sequence of sub-goals).

    With `distance` (a `LatentDistance`), the observed latent distance to the current goal is
    measured at reset and after every action; it moves the planner on from each sub-goal, and the
    patience rule of `mpc` may end the episode early. Without it, sub-goals advance after
    `mpc.subgoal_max_steps` steps each. `on_step(record, distance)` is called after each action.
    With `mpc.return_to_best` (and `distance`), each goal that is done is settled at its best observed
    state by moves within `action_spec` (`GoalSchedule`, `ReturnToBest`). `goal_grippers` (one
    closedness or None per goal; with `mpc.goal_gripper` and the env's goals, the env's way-point
    states) holds the gripper toward each goal's (`run_episode`).
    """
    robot = GymRobot(env)
    first_frame, first_state = robot.reset(seed=seed)
    if goal is None:
        goal = robot.subgoal_images() if mpc.subgoals else robot.goal_image()
        if mpc.goal_gripper and goal_grippers is None:
            goal_grippers = robot.goal_grippers(mpc.subgoals)
    goals = as_goal_list(goal)
    frames = [first_frame] if record_frames else []
    distances: list[float] = []
    schedule = GoalSchedule(mpc, len(goals))
    task = getattr(env.unwrapped, "task_name", None)
    if mpc.return_to_best and distance is not None:
        if action_spec is None:
            raise ValueError("mpc.return_to_best needs action_spec (the bounds of the moves back to a goal's best state)")
        policy = ReturnToBest(policy, schedule, action_spec)

    def after_action(record: StepRecord) -> str | None:
        frame, state = robot.get_observation()
        if record_frames:
            frames.append(frame)
        d = None
        if distance is not None:
            if not distances:  # the goal is set inside run_episode, so measure the reset frame now
                distances.append(distance(first_frame))
                schedule.baseline(distances[0], first_state)
            d = distance(frame)
            distances.append(d)
        if on_step is not None:
            on_step(record, d)
        return schedule.observe(d, state)

    result = run_episode(robot, policy, goals, max_steps=mpc.max_steps, safety=sim_safety(env),
                         should_stop=after_action, should_advance=schedule.advance, goal_grippers=goal_grippers)
    info = {k: _plain(v) for k, v in robot.info.items() if _plain(v) is not None}
    return EpisodeReport(
        env_id=env.spec.id if env.spec is not None else type(env.unwrapped).__name__, seed=seed,
        status=result.status, stop_reason=result.stop_reason, success=bool(robot.success),
        steps=len(result.steps), energies=[s.energy for s in result.steps], distances=distances,
        plan_s=[float(s.timing.get("plan_s", math.nan)) for s in result.steps],
        step_s=[float(s.timing["step_s"]) for s in result.steps], num_clipped=result.num_clipped, info=info,
        task_distance_name=TASK_DISTANCE.get(task), frames=frames, planner=[s.planner for s in result.steps],
        goal_indices=[s.goal_index for s in result.steps], num_goals=len(goals), goal_grippers=goal_grippers,
        actions=[[float(a) for a in s.action] for s in result.steps],
        requested=[[float(a) for a in s.requested] for s in result.steps],
    )


def _plain(value: Any) -> Any:
    """A JSON-able number/bool/list for simulator info values, or None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value) if isinstance(value, (float, np.floating)) else int(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.size <= 16:
        return value.astype(float).tolist()
    return None
