"""Planning defaults that travel with a model: `planning.json` beside `config.json` + `model.safetensors`.

    defaults = PlanningDefaults.for_checkpoint("jepa_ac/assets/default_model")   # or .from_json(path)
    reach = defaults.for_env("jepa_ac/FrankaReach-v0")    # per-env overrides merged in
    reach.cem, reach.action, reach.env.image_size, reach.mpc.patience

`planning.json` (every section and field optional; unknown keys are an error):

    {"format": "jepa_ac.planning", "version": 1,
     "env_id": "jepa_ac/FrankaReach-v0",                       # the env `plan` uses without --env
     "cem":    {CEMConfig fields: samples, iterations, topk, horizon, momentum_*, warm_start, seed, ...},
     "action": {ActionSpec fields; "frozen": {"droll": 0, "dpitch": 0, "dyaw": 0},
                "workspace_min": [x, y, z], "workspace_max": [x, y, z]},   # optional TCP box (m)
     "env":    {"image_size": 128, "control_hz": 4.0},          # what the env renders / steps at
     "mpc":    {"max_steps": 40, "patience": 6, "min_improvement": 0.0,
                "subgoals": false, "subgoal_patience": 3, "subgoal_max_steps": 15},
     "env_overrides": {"jepa_ac/FrankaPickPlace-v0": {"mpc": {"max_steps": 60}, "action": {...}}}}

An override replaces the named fields of its sections (a section's `frozen` is replaced as a
whole). Command-line flags override whatever `for_env` returns. Options that left the planner
(`REMOVED`) are accepted only at the value that asks for what the planner does now, so files
written before still load; any other value is an error that says where the option went.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from jepa_ac.planning.action_spec import ActionSpec
from jepa_ac.planning.cem import CEMConfig

FORMAT_NAME = "jepa_ac.planning"
FORMAT_VERSION = 1
PLANNING_FILE = "planning.json"
SECTIONS = ("cem", "action", "env", "mpc")
_PLANNING_QUALITY = "experiments/planning_quality/run.py"
# Options that did not ship and left the planner's loop: (section, field) -> (the value that asks for
# what the planner does now, where the option went). The experiments that measured them keep them.
REMOVED: dict[tuple[str, str], tuple[Any, str]] = {
    ("cem", "noise_beta"): (0.0, f"iCEM's coloured noise (no gain measured) is the ColouredNoise sampler of "
                                 f"{_PLANNING_QUALITY}"),
    ("cem", "min_samples"): (None, f"adaptive sample counts (no gain measured) are the AdaptiveSamples sampler of "
                                   f"{_PLANNING_QUALITY}"),
    ("cem", "close_gripper_after"): (None, "upstream's forced gripper close is gone; hold the gripper as each goal "
                                           "shows it (mpc.goal_gripper) or freeze action.frozen.dgripper"),
    ("action", "translation_constraint"): ("box", "every step bound is the box; the L1 / Euclidean ball (no gain "
                                                  "measured) is BallStepSpec in experiments/push_directions/ball_step.py"),
}


@dataclass(frozen=True)
class EnvOptions:
    """How the simulator is made for planning: render size (px), control rate (Hz) and the exterior
    camera view the model was trained on (a name of `jepa_ac.envs.scene.VIEWS`, or several joined by
    "+"; None: the env's default); `kwargs`: more keyword arguments of the Franka env's constructor
    (e.g. push's `push_waypoints`, pick-and-place's `descent_waypoints`)."""

    image_size: int = 128
    control_hz: float = 4.0
    exterior_view: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or not 16 <= self.image_size <= 2048:
            raise ValueError(f"EnvOptions.image_size must be an int in [16, 2048], got {self.image_size!r}")
        if isinstance(self.control_hz, bool) or not isinstance(self.control_hz, (int, float)) or not self.control_hz > 0:
            raise ValueError(f"EnvOptions.control_hz must be a positive number, got {self.control_hz!r}")
        object.__setattr__(self, "control_hz", float(self.control_hz))
        if self.exterior_view is not None and not isinstance(self.exterior_view, str):
            raise ValueError(f"EnvOptions.exterior_view must be a view name or null, got {self.exterior_view!r}")
        if not isinstance(self.kwargs, Mapping) or not all(isinstance(k, str) for k in self.kwargs):
            raise ValueError(f"EnvOptions.kwargs must map keyword names to values, got {self.kwargs!r}")
        taken = sorted({"image_size", "control_hz", "exterior_view", "max_episode_steps"} & set(self.kwargs))
        if taken:
            raise ValueError(f"EnvOptions.kwargs: set {taken} as env options of their own, not in kwargs")
        object.__setattr__(self, "kwargs", dict(self.kwargs))


@dataclass(frozen=True)
class MPCConfig:
    """When closed-loop MPC stops: after `max_steps` actions, or once the observed latent distance to
    the goal has not dropped by more than `min_improvement` below its best for `patience` steps
    (`patience=None` turns the early stop off).

    With `subgoals` the planner aims at the env's sub-goal images one after another (`subgoal_images()`)
    before the goal; it moves on once the distance to the current sub-goal has not improved for
    `subgoal_patience` steps, or after `subgoal_max_steps` steps on it (None: no cap).

    With `return_to_best`, a goal that is done (moved on from, or stopped at) is first settled: the
    robot is driven back to the state whose frame had the lowest observed distance to that goal, in
    straight moves within the action bounds, until its TCP is within `return_tolerance` m of it or
    after `return_max_steps` moves. The planner's predicted energy is several times less precise
    than the observed one, so the arm often passes close to a goal and drifts off while patience waits.

    With `goal_gripper`, each goal's gripper closedness (the env's way-point states; for a real robot,
    the state recorded with a demonstration frame) holds the gripper open or closed while aiming at
    it, instead of the energy planning it: at 64 px the fingers are a pixel or two, and around an
    object they are hidden, so the latent distance barely tells an open hand from a closed one.

    With `regrasps` > 0 and goal grippers, a grasp that missed or dropped its object is retried: while
    aiming at a goal that shows the gripper closed on something (closedness g > 0), a measured
    closedness above g + `regrasp_margin` means the fingers closed past where the object should have
    stopped them. The schedule then goes back to the open goals before the grasp (the approach) and
    tries again, at most `regrasps` times an episode. The 7-D state's gripper is the measured one (as
    DROID records it), so this needs no vision.

    With `subgoal_rounds` > 1, an episode that has settled its goal while steps are left asks the env
    for a new round of way-points from where the objects lie now (`new_subgoal_round()`: push
    re-plans the push from the block's present position unless it is within 2 cm of the target,
    pick-and-place the pick from where the cube rests on the table outside the bowl) and plans
    through them, at most `subgoal_rounds` rounds in `max_steps` steps. It applies to the env's own
    goal images; an operator handing a robot new sub-goal images does the same."""

    max_steps: int = 40
    patience: int | None = 6
    min_improvement: float = 0.0
    subgoals: bool = False
    subgoal_patience: int = 3
    subgoal_max_steps: int | None = 15
    return_to_best: bool = False
    return_tolerance: float = 0.005
    return_max_steps: int = 3
    goal_gripper: bool = False
    regrasps: int = 0
    regrasp_margin: float = 0.2
    subgoal_rounds: int = 1

    def __post_init__(self) -> None:
        for name in ("subgoals", "return_to_best", "goal_gripper"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"MPCConfig.{name} must be true or false, got {getattr(self, name)!r}")
        for name, nullable in (("max_steps", False), ("patience", True), ("subgoal_patience", False),
                               ("subgoal_max_steps", True), ("return_max_steps", False), ("subgoal_rounds", False)):
            value = getattr(self, name)
            if value is None and nullable:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"MPCConfig.{name} must be a positive int{' or null' if nullable else ''}, got {value!r}")
        if isinstance(self.regrasps, bool) or not isinstance(self.regrasps, int) or self.regrasps < 0:
            raise ValueError(f"MPCConfig.regrasps must be an int >= 0 (0: never retry a grasp), got {self.regrasps!r}")
        margin = self.regrasp_margin
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0.0 < margin < 1.0:
            raise ValueError(f"MPCConfig.regrasp_margin must be a closedness in (0, 1), got {margin!r}")
        object.__setattr__(self, "regrasp_margin", float(margin))
        for name in ("min_improvement", "return_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < math.inf:
                raise ValueError(f"MPCConfig.{name} must be a finite number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True)
class PlanningDefaults:
    """CEM settings, action spec, env options and MPC stop rule for one model, with per-env overrides."""

    cem: CEMConfig = field(default_factory=CEMConfig)
    action: ActionSpec = field(default_factory=ActionSpec)
    env: EnvOptions = field(default_factory=EnvOptions)
    mpc: MPCConfig = field(default_factory=MPCConfig)
    env_id: str = "jepa_ac/FrankaReach-v0"
    env_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, kind in (("cem", CEMConfig), ("action", ActionSpec), ("env", EnvOptions), ("mpc", MPCConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"PlanningDefaults.{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"PlanningDefaults.env_id must be a non-empty string, got {self.env_id!r}")
        if not isinstance(self.env_overrides, Mapping):
            raise ValueError("PlanningDefaults.env_overrides must map env ids to section overrides")
        frozen = {}
        for env_id, override in self.env_overrides.items():
            _check_sections(override, f"env_overrides[{env_id!r}]")
            frozen[str(env_id)] = MappingProxyType({k: MappingProxyType(_current(k, v)) for k, v in override.items()})
        object.__setattr__(self, "env_overrides", MappingProxyType(frozen))
        for env_id in frozen:  # every override must build valid configs now, not at planning time
            self.for_env(env_id)

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "planning defaults") -> "PlanningDefaults":
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        fmt, version = data.pop("format", FORMAT_NAME), data.pop("version", FORMAT_VERSION)
        if fmt != FORMAT_NAME or version != FORMAT_VERSION:
            raise ValueError(f"{source}: format {fmt!r} version {version!r} is not {FORMAT_NAME!r} version {FORMAT_VERSION}")
        data.pop("comment", None)
        known = set(SECTIONS) | {"env_id", "env_overrides"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; valid keys are {sorted(known)}")
        sections = {name: data.get(name, {}) for name in SECTIONS}
        _check_sections(sections, source)
        built = _build_sections(cls(), sections, source)  # errors name source.section
        try:
            return cls(**built, env_id=data.get("env_id", cls.env_id), env_overrides=data.get("env_overrides", {}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: {err}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "PlanningDefaults":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"planning defaults not found: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def for_checkpoint(cls, checkpoint: str | Path | None) -> "PlanningDefaults":
        """`planning.json` beside a checkpoint folder's weights, or the built-in defaults if it has none."""
        if checkpoint is not None and Path(checkpoint).is_dir() and (Path(checkpoint) / PLANNING_FILE).is_file():
            return cls.from_json(Path(checkpoint) / PLANNING_FILE)
        return cls()

    # -- using ------------------------------------------------------------------------------
    def for_env(self, env_id: str | None = None) -> "PlanningDefaults":
        """These defaults with `env_id`'s overrides merged in (`env_id` None: the default env)."""
        env_id = env_id or self.env_id
        override = self.env_overrides.get(env_id)
        if override is None:
            return dataclasses.replace(self, env_id=env_id, env_overrides={})
        built = _build_sections(self, override, f"env_overrides[{env_id!r}]")
        return dataclasses.replace(self, env_id=env_id, env_overrides={}, **built)

    def task_names(self) -> dict[str, str]:
        """Names a robot may use for each `env_overrides` entry -> its key: the key itself and its short
        task name ("jepa_ac/FrankaPush-v0" -> "push"), so a real robot's "push" gets the sim's settings."""
        names = {}
        for key in self.env_overrides:
            short = re.sub(r"-v\d+$", "", key.split("/")[-1]).lower().removeprefix("franka")
            names[short] = key
            names[key] = key
        return names

    def for_task(self, task: str | None) -> "PlanningDefaults":
        """`for_env` by the task name a robot has: an `env_overrides` key or its short name (None: the default)."""
        if task is None:
            return self.for_env(None)
        names = self.task_names()
        if task not in names:
            raise ValueError(f"unknown task {task!r}; these planning defaults have settings for {sorted(names)}")
        return self.for_env(names[task])

    def replace(self, source: str = "replace()", **sections: Mapping[str, Any]) -> "PlanningDefaults":
        """Override fields by section, e.g. `replace(cem={"samples": 64}, mpc={"patience": None})`;
        errors name `source`."""
        _check_sections(sections, source)
        return dataclasses.replace(self, **_build_sections(self, sections, source))

    def to_dict(self) -> dict[str, Any]:
        action = dataclasses.asdict(self.action)
        action["frozen"] = dict(self.action.frozen)
        return {
            "format": FORMAT_NAME, "version": FORMAT_VERSION, "env_id": self.env_id,
            "cem": dataclasses.asdict(self.cem), "action": action, "env": dataclasses.asdict(self.env),
            "mpc": dataclasses.asdict(self.mpc),
            "env_overrides": {k: {s: dict(v) for s, v in o.items()} for k, o in self.env_overrides.items()},
        }


_SECTION_TYPES = {"cem": CEMConfig, "action": ActionSpec, "env": EnvOptions, "mpc": MPCConfig}


def _check_sections(sections: Any, source: str) -> None:
    if not isinstance(sections, Mapping):
        raise ValueError(f"{source}: expected an object of sections {SECTIONS}, got {type(sections).__name__}")
    for name, values in sections.items():
        if name not in _SECTION_TYPES:
            raise ValueError(f"{source}: unknown section {name!r}; sections are {SECTIONS}")
        if not isinstance(values, Mapping):
            raise ValueError(f"{source}.{name}: expected an object of fields, got {type(values).__name__}")
        for field_name, value in values.items():
            kept, where = REMOVED.get((name, field_name), (value, ""))
            if value != kept:
                raise ValueError(f"{source}.{name}: {field_name}={value!r} is no longer a planner option: {where}")
        fields = {f.name for f in dataclasses.fields(_SECTION_TYPES[name])}
        unknown = sorted(set(_current(name, values)) - fields)
        if unknown:
            raise ValueError(f"{source}.{name}: unknown fields {unknown}; valid fields are {sorted(fields)}")


def _build_sections(base: PlanningDefaults, sections: Mapping[str, Mapping[str, Any]], source: str) -> dict[str, Any]:
    """New section dataclasses: `base`'s with the given fields replaced (validated by their __post_init__)."""
    out = {}
    for name, values in sections.items():
        values = _current(name, values)
        if name == "action" and "frozen" in values and isinstance(values["frozen"], Mapping):
            values["frozen"] = tuple(values["frozen"].items())
        try:
            out[name] = dataclasses.replace(getattr(base, name), **values)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}.{name}: {err}") from None
    return out


def _current(section: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A section's fields without the `REMOVED` options (checked by `_check_sections`)."""
    return {k: v for k, v in values.items() if (section, k) not in REMOVED}
