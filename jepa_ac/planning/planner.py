"""`CEMPlanner`: plan the next action from a camera frame, the robot state and a goal image.

    planner = CEMPlanner(wm, CEMConfig(samples=800, iterations=10, topk=10, horizon=1))
    action = planner.plan(frame_uint8, state, goal_uint8)   # np.ndarray [7]

`PlanningPolicy` wraps it in the `reset()` / `infer(obs) -> dict` interface that the MPC loop,
the planning server and the robot adapters share.

Across MPC steps the planner keeps the previous plan (warm start, iCEM elite carry-over) and the
latent it predicted for the frame after the executed action. The observed frame's distance to that
prediction is the step's `surprise`; with `CEMConfig.surprise_gate`, a step whose surprise is below
the gate executes the previous plan shifted by one step instead of re-planning (at most
`max_skips` times in a row; at horizon 1 that repeats the last action).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np

from jepa_ac.model.array_ops import NUMPY_OPS
from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.cem import GAUSSIAN, CEMConfig, CEMResult, Sampler, cem, plan_actions, shift_plan
from jepa_ac.model.pose import POSITION, check_shape, check_states
from jepa_ac.model.preprocess import check_frames
from jepa_ac.world_model.precision import dtype_name


class NonFiniteError(ValueError):
    """The world model produced NaN or inf (broken weights, or inputs outside what it was trained on):
    nothing it planned may be executed."""


def check_state(state: Any) -> np.ndarray:
    """A robot state as float32 [7]; a clear error for wrong shapes, NaN/inf or physically absurd
    values (`pose.StateRanges`)."""
    state = check_shape(np.asarray(state, dtype=np.float64), "state")
    return check_states(state, "state").astype(np.float32)


def check_finite(value: Any, what: str) -> Any:
    """`value` (numpy or backend array) if every entry is finite, else `NonFiniteError` naming `what`."""
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise NonFiniteError(f"{what} contains NaN or inf ({bad} of {np.size(arr)} values): the world model's weights "
                             "or inputs are broken; no action is planned from it")
    return value


def check_observation(obs: Mapping[str, Any]) -> None:
    """A policy's observation has 'image' and 'state' (their values are checked where they are used)."""
    for key in ("image", "state"):
        if key not in obs:
            raise ValueError(f"observation is missing {key!r}; expected keys 'image' (uint8 [H,W,3]) and 'state' ([7])")


def plan_reply(result: CEMResult) -> dict[str, Any]:
    """The policy reply fields of one planning step: the action to execute, the plan, its energy and
    what the planner did (re-planned or reused, samples evaluated, surprise, held)."""
    return {"action": result.actions[0], "plan": result.actions, "energy": float(result.elite_costs[-1][0]),
            "planner": {"replanned": not result.skipped, "samples_evaluated": result.evaluated,
                        "surprise": result.surprise, "held": result.held}}


class CEMPlanner:
    """CEM over the world model's imagined rollouts, minimising L1 distance to the goal latent.
    `sampler`: how CEM draws its candidates (`cem.Sampler`; default upstream's Gaussian)."""

    def __init__(self, world_model: Any, config: CEMConfig | None = None, spec: ActionSpec | None = None,
                 sampler: Sampler = GAUSSIAN) -> None:
        self.wm = world_model
        self.config = config or CEMConfig()
        if self.config.ensemble and not getattr(world_model, "members", ()):
            raise ValueError("CEMConfig.ensemble is true but the world model has no ensemble members: load a checkpoint "
                             "folder with an ensemble/ (jepa_ac.add_ensemble_member) or set cem.ensemble=false")
        self.scorer = world_model  # whose predictor imagines the candidates (the model's own, or cem.predictor)
        if self.config.predictor is not None:
            if getattr(world_model, "active", 1) > 1:  # a multi-view model planning with several views
                raise ValueError("CEMConfig.predictor picks one view's predictor: plan one view with it")
            self.scorer = world_model.member(self.config.predictor)
        self.base_spec = spec or ActionSpec()
        self.sampler = sampler
        self.spec = self.base_spec  # the base spec, or it with the gripper held for the current goal
        self.rng = np.random.default_rng(self.config.seed)
        self._goal_latent: Any = None
        self._token_weights: Any = None  # [N] energy weights for the current goal (goal_change_weighting)
        self._previous_mean: np.ndarray | None = None
        self._previous_elites: np.ndarray | None = None
        self._expected_latent: Any = None  # [1, N, D] predicted latent of the next observation
        self._skips = 0
        self.last_result: CEMResult | None = None

    def reset(self, seed: int | None = None) -> None:
        """Forget the warm-start plan and prediction (and reseed if asked); the goal stays set."""
        self._previous_mean = None
        self._previous_elites = None
        self._expected_latent = None
        self._token_weights = None
        self._skips = 0
        self.last_result = None
        self.rng = np.random.default_rng(self.config.seed if seed is None else seed)

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        """Encode and keep the goal image (uint8 [H, W, 3]).

        `gripper`: the closedness the goal shows (0 open .. 1 closed; e.g. the state recorded with a
        demonstration frame). The gripper is then held toward it (`ActionSpec.holding_gripper`) while
        the world model plans the rest; None plans it as the base spec says."""
        self.set_goal_latent(self.encode_frame(goal, "the goal image's latent"), gripper)

    def encode_frame(self, frame: np.ndarray, what: str = "the current frame's latent") -> Any:
        """One uint8 image [H, W, 3] -> its latent [1, N, D] on the model's backend (checked finite)."""
        z = self.wm.encode(check_frames(frame)[-1:])  # [1, N, D]
        check_finite(self.wm.ops.to_numpy(z), what)
        return z

    def set_goal_latent(self, goal_latent: Any, gripper: float | None = None) -> None:
        """`set_goal` with the goal already encoded ([1, N, D], from `encode_frame`)."""
        self._goal_latent = goal_latent
        self._token_weights = None
        spec = self.base_spec if gripper is None else self.base_spec.holding_gripper(gripper)
        if spec.free_names != self.spec.free_names:  # the warm-start plan has the other dims
            self._previous_mean, self._previous_elites = None, None
        self.spec = spec

    @property
    def has_goal(self) -> bool:
        return self._goal_latent is not None

    @property
    def goal_latent(self) -> Any:
        """The encoded goal [1, N, D] on the model's backend (None before `set_goal`)."""
        return self._goal_latent

    def plan(self, frame: np.ndarray, state: Any, goal: np.ndarray | None = None) -> np.ndarray:
        """The next action [7] to execute; `goal` (uint8 image) replaces the stored goal if given."""
        return self.plan_sequence(frame, state, goal).actions[0]

    def plan_sequence(self, frame: np.ndarray, state: Any, goal: np.ndarray | None = None) -> CEMResult:
        """The full CEM result (plan over the horizon, final distribution, elite costs)."""
        if goal is not None:
            self.set_goal(goal)
        if self._goal_latent is None:
            raise ValueError("no goal: pass goal= or call set_goal(image) first")
        state = check_state(state)
        return self.plan_from_latent(self.encode_frame(frame), state)

    def goal_distance(self, z: Any) -> float:
        """The observed latent distance of a frame's latent [1, N, D] to the goal (the planner's energy)."""
        if self._goal_latent is None:
            raise ValueError("no goal: call set_goal(image) first")
        return float(self.wm.ops.to_numpy(self.wm.energy(z, self._goal_latent, self._weights(z)))[0])

    def _weights(self, z: Any) -> Any:
        """The energy's token weights [N] for the current goal (None: plain L1). With
        `goal_change_weighting`, they are fixed from the first frame seen after the goal was set
        (`WorldModel.goal_change_weights`), so the distances toward one goal stay comparable."""
        strength = self.config.goal_change_weighting
        if strength and self._token_weights is None:
            self._token_weights = self.wm.goal_change_weights(z, self._goal_latent, strength)
        return self._token_weights

    def plan_from_latent(self, z: Any, state: Any) -> CEMResult:
        """`plan_sequence` for a frame already encoded (`encode_frame`): the controller encodes each
        frame once for both its observed distance and the plan."""
        if self._goal_latent is None:
            raise ValueError("no goal: call set_goal(image) first")
        state = check_state(state)
        state_x = self.wm.ops.asarray(state[None])  # [1, 7]
        z_goal = self._goal_latent
        weights = self._weights(z)
        surprise = None
        if self._expected_latent is not None:
            surprise = float(self.wm.ops.to_numpy(self.wm.energy(z, self._expected_latent))[0])

        gate = self.config.surprise_gate
        if (gate is not None and surprise is not None and surprise < gate and self._skips < self.config.max_skips
                and self.last_result is not None):
            result = self._reuse_previous_plan(surprise, state[POSITION])
            self._skips += 1
        else:
            def cost(actions: Any) -> Any:  # [S, H, 7] -> [S]
                return self.scorer.rollout_energy(z, state_x, actions, z_goal, over=self.config.horizon_energy,
                                                  weights=weights, ensemble=self.config.ensemble)

            warm = self.config.warm_start
            noise = self.sampler.noise(self.config, self.spec, self.rng)
            result = cem(cost, self.config, self.spec, noise, self.wm.ops,
                         init_mean=self._previous_mean if warm else None,
                         init_elites=self._previous_elites if warm else None, position=state[POSITION],
                         sampler=self.sampler)
            result.surprise = surprise
            self._skips = 0
        self._previous_mean = shift_plan(result.mean)
        self._previous_elites = shift_plan(result.elites) if result.elites is not None else None
        # imagine the chosen plan (and holding still) once: the first imagined frame is what the next
        # observation should look like; the last frames' energies compare the plan with holding
        candidates = result.actions[None]  # [1, H, 7]
        if self.config.hold_unless_better:
            hold = self.spec.expand(np.zeros((len(result.actions), result.mean.shape[-1]), np.float32),
                                    NUMPY_OPS).astype(np.float32)  # [H, 7]
            candidates = np.stack([result.actions, hold])  # [2, H, 7]
        candidates_x = self.wm.ops.asarray(candidates)
        imagined = self.scorer.rollout(z, state_x, candidates_x)  # [1 or 2, H, N, D] (the first predictor's)
        energies = self.wm.horizon_energy(imagined, z_goal, self.config.horizon_energy, weights)
        if self.config.ensemble:  # the members' mean, as CEM scored them
            energies = self.wm.ensemble_energy(energies, z, state_x, candidates_x, z_goal, self.config.horizon_energy,
                                               weights)
        energies = self.wm.ops.to_numpy(energies)  # [1 or 2]
        chosen = 0
        if self.config.hold_unless_better and energies[1] <= energies[0]:
            chosen, result.actions, result.held = 1, hold, True
        check_finite(energies, "the planned action's energy")
        check_finite(result.actions, "the planned actions")
        check_finite(result.elite_costs, "the CEM elite costs")
        self._expected_latent = imagined[chosen : chosen + 1, 0]  # [1, N, D]
        if result.skipped or result.held:  # the executed sequence's energy (CEM results carry their elites')
            result.elite_costs = np.array([[energies[chosen]]], np.float32)
        self.last_result = result
        return result

    def _reuse_previous_plan(self, surprise: float, position: np.ndarray) -> CEMResult:
        """The previous plan shifted by one step (kept inside the action spec's workspace from
        `position`), as a CEM result (no samples evaluated)."""
        mean = self._previous_mean  # [H, F] already shifted
        if self.spec.has_workspace:
            mean = self.spec.constrain(mean, NUMPY_OPS, position)
        return CEMResult(actions=plan_actions(mean, self.config, self.spec), mean=mean, std=self.last_result.std,
                         elite_costs=np.zeros((1, 1), np.float32), elites=self._previous_elites, evaluated=0,
                         skipped=True, surprise=surprise)


class PlanningPolicy:
    """`reset()`, `set_goal(image)`, `infer({"image", "state"}) -> {"action", "energy", "timing"}`."""

    def __init__(self, planner: CEMPlanner) -> None:
        self.planner = planner

    def reset(self, seed: int | None = None) -> None:
        self.planner.reset(seed)

    def set_goal(self, goal: np.ndarray, gripper: float | None = None) -> None:
        self.planner.set_goal(goal, gripper)

    def infer(self, obs: Mapping[str, Any]) -> dict[str, Any]:
        check_observation(obs)
        start = time.perf_counter()
        result = self.planner.plan_sequence(obs["image"], obs["state"])
        total = time.perf_counter() - start
        return {**plan_reply(result), "timing": {"plan_s": total, "total_s": total}}

    def metadata(self) -> dict[str, Any]:
        wm = self.planner.wm
        return {
            "backend": wm.backend.name,
            "dtype": dtype_name(getattr(wm.backend, "dtype", "float32")),  # the networks'; energies are float32
            "encoder": wm.encoder_config.to_dict() if wm.encoder_config else None,
            "predictor": wm.predictor_config.to_dict() if wm.predictor_config else None,
            "cem": self.planner.config.__dict__.copy(),
            "action_spec": {"free": list(self.planner.spec.free_names), "frozen": dict(self.planner.spec.frozen)},
            "image_size": wm.image_size,
        }
