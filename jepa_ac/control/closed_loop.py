"""Closed-loop episodes in simulation (the Franka envs, or any env through an `EnvAdapter`), shared by
`python -m jepa_ac.plan` and `evaluate`.

    env = make_env("jepa_ac/FrankaReach-v0", EnvOptions(image_size=64))
    controller = Controller(CEMPlanner(wm, cem_config, action_spec), MPCConfig(max_steps=20))
    report = run_closed_loop(env, controller, seed=0, mpc=MPCConfig(max_steps=20))
    report.success, report.distances, report.plan_s, report.task_distance

The control loop is `jepa_ac.robot.run_episode` (observe, plan, safety filter, act) on a `GymRobot`,
and the policy is the one closed-loop controller (`jepa_ac.control.Controller`) in-process, or a
`PlannerClient` whose server runs it: the same path a real robot takes. This module adds what
planning in simulation needs around it: the goal images the env renders for the seeded episode,
recorded frames, the simulator's success and task distance, and baseline policies (uniform random,
scripted expert) with the same interface.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from jepa_ac.control.controller import GoalSchedule, PatienceStop, as_goal_list  # noqa: F401 - re-exported
from jepa_ac.model.pose import GRIPPER, POSITION, ROTATION
from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.defaults import EnvOptions, MPCConfig
from jepa_ac.robot.adapters import GymRobot
from jepa_ac.robot.loop import StepRecord, run_episode
from jepa_ac.robot.safety import SafetyConfig, SafetyLayer

# the simulator's final distance that defines each task's success
TASK_DISTANCE = {"reach": "ee_to_goal", "push": "block_to_target", "pickplace": "cube_to_bowl"}
POLICIES = ("planner", "random", "expert")


def make_env(env_id: str, options: EnvOptions, step_budget: int | None = None, adapter: Any = None, **kwargs: Any):
    """`gymnasium.make(env_id)` with the planning env options (image size, control rate, camera view, the
    env's own keyword arguments);
    with an `EnvAdapter` (any other env), the adapter's env at its image size.

    `step_budget` (pass `mpc.max_steps`) replaces the registered time limit with one just above it, so
    the planner's own budget ends the episode: a registered limit below it would cut the episode
    short, reported as "done"."""
    import gymnasium

    if adapter is not None:
        if options.kwargs:
            raise ValueError(f"env.kwargs {sorted(options.kwargs)} are keyword arguments of the Franka envs; an "
                             "env behind an adapter is made by its own hook")
        return adapter.make_env(step_budget)

    import jepa_ac.envs  # noqa: F401 - registers the Franka ids

    if env_id not in gymnasium.registry:
        known = sorted(k for k in gymnasium.registry if k.startswith("jepa_ac/"))
        raise ValueError(f"unknown env id {env_id!r}; the Franka envs are {known}")
    if step_budget is not None:
        kwargs["max_episode_steps"] = step_budget + 1
    if options.exterior_view is not None:
        kwargs.setdefault("exterior_view", options.exterior_view)
    return gymnasium.make(env_id, image_size=options.image_size, control_hz=options.control_hz,
                          **{**options.kwargs, **kwargs})


def sim_safety(env: Any, adapter: Any = None) -> SafetyLayer:
    """The default safety workspace with per-step limits as wide as the env's action space; for an env
    behind an adapter, the limits derived from its data (`EnvAdapter.safety`).

    The simulator bounds its own actions; this keeps the NaN/inf refusal and the workspace box of
    `SafetyConfig` without scaling down actions the env accepts (the experts use up to 8 cm per axis).
    """
    if adapter is not None:
        return SafetyLayer(adapter.safety())
    high = np.asarray(env.action_space.high, dtype=np.float64)
    return SafetyLayer(SafetyConfig(max_translation=float(np.linalg.norm(high[POSITION])),
                                    max_rotation=float(min(np.linalg.norm(high[ROTATION]), math.pi)),
                                    max_gripper_delta=float(high[GRIPPER])))


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
    from jepa_ac.model.array_ops import NUMPY_OPS

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
    goal_images: list[np.ndarray] = field(default_factory=list)  # [K] uint8 [H, W, 3]: every round's goals in order
    round_starts: list[int] = field(default_factory=lambda: [0])  # index of each round's first goal
    round_task_distances: list[float | None] = field(default_factory=list)  # the task distance as each round ended
    actions: list[list[float]] = field(default_factory=list)  # [T][7] actions sent (after the safety layer)
    requested: list[list[float]] = field(default_factory=list)  # [T][7] actions the policy asked for

    @property
    def planned_s(self) -> list[float]:
        """Policy time of the steps that planned (a move back to a goal's best state does not)."""
        if not self.planner:
            return self.plan_s
        return [t for t, p in zip(self.plan_s, self.planner) if not p.get("returned", False)]

    def goal_label(self, index: int) -> str:
        """"goal" or "sub-goal k/n" for goal `index`, with its round when there were several."""
        start = max(s for s in self.round_starts if s <= index)
        r = self.round_starts.index(start)
        end = self.round_starts[r + 1] if r + 1 < len(self.round_starts) else self.num_goals
        label = "goal" if index == end - 1 else f"sub-goal {index - start + 1}/{end - start - 1}"
        return label + (f" (round {r + 1})" if len(self.round_starts) > 1 else "")

    @property
    def rounds(self) -> int:
        """Rounds of way-points planned through (`mpc.subgoal_rounds`)."""
        return len(self.round_starts)

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
            "rounds": self.rounds,
            "round_task_distances": self.round_task_distances,
            "goal_grippers": self.goal_grippers,
            "goals_attempted": max(self.goal_indices, default=0) + 1,
            "regrasps": sum(b < a for a, b in zip(self.goal_indices, self.goal_indices[1:])),
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
    record_frames: bool = False,
    on_step: Callable[[StepRecord], None] | None = None,
    goal_grippers: list[float | None] | None = None,
    safety: SafetyLayer | None = None,
    adapter: Any = None,
) -> EpisodeReport:
    """Reset `env` with `seed`, then MPC with `policy` towards `goal` (default: the env's goal image, or
    with `mpc.subgoals` its sub-goal images then the goal; a list of images is a sequence of sub-goals)
    for at most `mpc.max_steps` actions.

    `policy` is a `Controller` (or a `PlannerClient` to a server running one): it measures the
    observed latent distance to the current goal, moves on from each sub-goal, settles and stops by
    its `MPCConfig`; a baseline policy just acts. `goal_grippers` (one closedness or None per goal;
    with `mpc.goal_gripper` and the env's goals, the env's way-point states) hold the gripper toward
    each goal's. `on_step(record)` is called after each action. `safety` (default `sim_safety(env)`,
    limits as wide as the env's action space) filters every action. `adapter` (`jepa_ac.robot.env_adapter`)
    drives an env that is not ours: its hooks give frames, states, success and goal images.

    With the env's goals and `mpc.subgoal_rounds` > 1, an episode that settled its goal with steps left
    plans through the env's next round of way-points (`new_subgoal_round()`), within `mpc.max_steps`
    actions in all. Steps are numbered through the episode, and goal indices go on counting across
    rounds (a round's first goal follows the previous round's last).
    """
    robot = GymRobot(env, adapter=adapter)
    first_frame, _ = robot.reset(seed=seed)
    env_goals = goal is None

    def env_goal_list() -> tuple[list[np.ndarray], list[float | None] | None]:
        images = as_goal_list(robot.subgoal_images() if mpc.subgoals else robot.goal_image())
        return images, robot.goal_grippers(mpc.subgoals) if mpc.goal_gripper else None

    if env_goals:
        goals, env_grippers = env_goal_list()
        goal_grippers = env_grippers if goal_grippers is None else goal_grippers
    else:
        goals = as_goal_list(goal)
    frames = [first_frame] if record_frames else []
    safety = safety or sim_safety(env, adapter)
    steps: list[StepRecord] = []  # every round's, numbered through the episode
    offsets = {"step": 0, "goal": 0}  # where the present round's step and goal indices start
    all_grippers = list(goal_grippers) if goal_grippers is not None else None

    def after_action(record: StepRecord) -> None:
        record.index += offsets["step"]
        record.goal_index += offsets["goal"]
        if record_frames:
            frames.append(robot.get_observation()[0])
        if on_step is not None:
            on_step(record)

    goal_images, round_starts, round_distances = list(goals), [0], []
    task = getattr(env.unwrapped, "task_name", None)
    while True:
        result = run_episode(robot, policy, goals, max_steps=mpc.max_steps - len(steps), safety=safety,
                             on_step=after_action, goal_grippers=goal_grippers)
        steps += result.steps
        round_distances.append(_plain(robot.info.get(TASK_DISTANCE.get(task))))
        another = (env_goals and len(round_starts) < mpc.subgoal_rounds and result.status == "converged"
                   and len(steps) < mpc.max_steps and robot.new_subgoal_round())
        if not another:
            break
        offsets["step"], offsets["goal"] = len(steps), len(goal_images)
        goals, goal_grippers = env_goal_list()
        if all_grippers is not None:
            all_grippers += goal_grippers if goal_grippers is not None else [None] * len(goals)
        round_starts.append(len(goal_images))
        goal_images += goals
    # distances: each step's to the goal it aimed at, then the last round's final observation
    distances = [s.distance for s in steps] + ([result.final_distance] if result.final_distance is not None else [])
    info = {k: _plain(v) for k, v in robot.info.items() if _plain(v) is not None}
    return EpisodeReport(
        env_id=env.spec.id if env.spec is not None else type(env.unwrapped).__name__, seed=seed,
        status=result.status, stop_reason=result.stop_reason, success=bool(robot.success),
        steps=len(steps), energies=[s.energy for s in steps],
        distances=[] if any(d is None for d in distances) else distances,
        plan_s=[float(s.timing.get("plan_s", math.nan)) for s in steps],
        step_s=[float(s.timing["step_s"]) for s in steps], num_clipped=sum(bool(s.clips) for s in steps), info=info,
        task_distance_name=TASK_DISTANCE.get(task), frames=frames, planner=[s.planner for s in steps],
        goal_indices=[s.goal_index for s in steps], num_goals=len(goal_images), goal_grippers=all_grippers,
        actions=[[float(a) for a in s.action] for s in steps],
        requested=[[float(a) for a in s.requested] for s in steps],
        goal_images=goal_images, round_starts=round_starts, round_task_distances=round_distances,
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
