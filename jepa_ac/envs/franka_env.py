"""Gymnasium environments: a simulated Franka Panda at a table, driven by DROID end-effector deltas.

    import gymnasium as gym, jepa_ac.envs
    env = gym.make("jepa_ac/FrankaPush-v0", image_size=256, wrist_camera=True)
    obs, info = env.reset(seed=0)        # obs: {"image": [H,W,3] uint8, "state": [7] float32, ...}
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    goal = env.unwrapped.goal_image()    # the goal configuration seen by the same camera

Action `[dx, dy, dz, droll, dpitch, dyaw, dgripper]` (DROID / V-JEPA 2-AC, see `jepa_ac.model.pose`):
the target pose is `apply_action(state, action)` of the measured state, i.e. xyz offset in the
base frame, rotation `R_target = R_delta @ R_state` (extrinsic xyz Euler), gripper closedness
change. A differential-IK controller (`controller.py`) tracks the target over the control
period (default 4 Hz, 125 physics substeps of 2 ms). Reward is 1.0 on success, else 0.0; episodes
never terminate on their own (time limits come from the registration), so recorded data can
keep frames after success.
"""

from __future__ import annotations

import dataclasses
import colorsys
from dataclasses import dataclass
from typing import Any, Callable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from jepa_ac.envs import scene
from jepa_ac.envs.controller import DiffIKController, IKConfig
from jepa_ac.envs.rendering import make_renderer
from jepa_ac.model.pose import (CARTESIAN, GRIPPER, POSITION, ROTATION, apply_action, check_action, euler_xyz_to_matrix,
                                matrix_to_euler_xyz)

# Home: TCP above the workspace, gripper pointing down, fingers spread along the base y axis.
HOME_TCP_POS = np.array([0.40, 0.0, 0.30])
HOME_TCP_EULER = np.array([np.pi, 0.0, 0.0])
HOME_JOINT_GUESS = np.array([0.0, -0.2, 0.0, -2.4, 0.0, 0.75, 0.0])

# TCP targets are clipped to this box (base frame, metres): at z = 0.055 the fingertips are
# ~5 mm above the table.
WORKSPACE_LOW = np.array([0.2, -0.45, 0.055])
WORKSPACE_HIGH = np.array([0.8, 0.45, 0.6])

MAX_TRANSLATION = 0.1  # m per control step
MAX_ROTATION = 0.3  # rad per control step
MAX_GRIPPER_DELTA = 1.0
# A gripper action that does not open (>= -GRIPPER_HOLD_EPS) never lowers the commanded
# closedness: like DROID's position-controlled gripper, a grasp blocked by an object keeps
# squeezing while the measured closedness (the state) stays put.
GRIPPER_HOLD_EPS = 0.05

# Camera extrinsics in `info` use the OpenCV optical frame (x right, y down, z forward), as DROID's
# calibrated cameras do; MuJoCo cameras look along -z with y up.
_MJ_TO_CV = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class FrankaEnvConfig:
    """Options of every Franka task. Randomisation draws from the env's seeded RNG."""

    image_size: int = 256
    control_hz: float = 4.0
    wrist_camera: bool = False
    # a name of scene.VIEWS ("side", "front", "wrist": the camera on the hand), or several joined by "+"
    # ("front+side", "front+wrist"): the exterior image then holds the views side by side, [H, V*H, 3],
    # in that order
    exterior_view: str = scene.DEFAULT_EXTERIOR_VIEW
    shadows: bool = True
    randomize_objects: bool = True  # object / goal poses; False uses fixed nominal poses
    randomize_colors: bool = False  # object hues, table tint
    randomize_lighting: bool = False  # key light position and intensities
    camera_jitter: float = 0.0  # std (m) of exterior camera position and look-at jitter
    joint_noise: float = 0.02  # uniform +- rad added to the home posture at reset
    show_goal_marker: bool = False  # reach: draw the goal as a translucent sphere

    def __post_init__(self) -> None:
        if isinstance(self.image_size, np.integer):
            object.__setattr__(self, "image_size", int(self.image_size))
        if not (isinstance(self.image_size, int) and 16 <= self.image_size <= 2048):
            raise ValueError(f"FrankaEnvConfig.image_size must be an int in [16, 2048], got {self.image_size!r}")
        if not 0.5 <= self.control_hz <= 50.0:
            raise ValueError(f"FrankaEnvConfig.control_hz must be in [0.5, 50] Hz, got {self.control_hz!r}")
        try:
            scene.parse_views(self.exterior_view)
        except ValueError as err:
            raise ValueError(f"FrankaEnvConfig.exterior_view: {err}") from None
        if not 0.0 <= self.camera_jitter <= 0.2:
            raise ValueError(f"FrankaEnvConfig.camera_jitter must be in [0, 0.2] m, got {self.camera_jitter!r}")
        if not 0.0 <= self.joint_noise <= 0.3:
            raise ValueError(f"FrankaEnvConfig.joint_noise must be in [0, 0.3] rad, got {self.joint_noise!r}")


def _rgb_from_hue(rng: np.random.Generator) -> list[float]:
    h, s, v = rng.uniform(0, 1), rng.uniform(0.55, 0.95), rng.uniform(0.55, 0.95)
    return [*colorsys.hsv_to_rgb(h, s, v), 1.0]


class FrankaEnv(gym.Env):
    """A Franka Panda task at a table (subclasses set `task_name` and the task hooks)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    task_name: str = ""

    def __init__(self, config: FrankaEnvConfig | None = None, render_mode: str | None = "rgb_array", *,
                 image_size: int | None = None, control_hz: float | None = None,
                 wrist_camera: bool | None = None, exterior_view: str | None = None, shadows: bool | None = None,
                 randomize_objects: bool | None = None, randomize_colors: bool | None = None,
                 randomize_lighting: bool | None = None, camera_jitter: float | None = None,
                 joint_noise: float | None = None, show_goal_marker: bool | None = None):
        # keyword overrides (as gym.make passes them) on top of `config`; defaults live in the dataclass
        overrides = {k: v for k, v in dict(
            image_size=image_size, control_hz=control_hz, wrist_camera=wrist_camera,
            exterior_view=exterior_view, shadows=shadows,
            randomize_objects=randomize_objects, randomize_colors=randomize_colors,
            randomize_lighting=randomize_lighting, camera_jitter=camera_jitter, joint_noise=joint_noise,
            show_goal_marker=show_goal_marker).items() if v is not None}
        self.config = dataclasses.replace(config or FrankaEnvConfig(), **overrides)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be 'rgb_array' or None, got {render_mode!r}")
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.config.control_hz}

        spec, self.scene_info = scene.build_spec(self.task_name, self.config.image_size, self.config.wrist_camera,
                                                 self.config.exterior_view)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._goal_data = mujoco.MjData(self.model)  # scratch data for goal images and IK
        self.camera_names: tuple[str, ...] = self.scene_info.camera_names
        self.control_hz = float(self.config.control_hz)

        self._ee_site = self.model.site(scene.EE_SITE).id
        self._arm_qpos = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in scene.ARM_JOINTS])
        self._finger_qpos = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in scene.FINGER_JOINTS])
        self._finger_act = np.array([self.model.actuator(a).id for a in scene.FINGER_ACTUATORS])
        self._arm_act = np.array([self.model.actuator(a).id for a in scene.ARM_ACTUATORS])
        self._cam_ids = {name: self.model.camera(name).id for name in self.camera_names}
        self.views = scene.parse_views(self.config.exterior_view)
        self._view_cams = [self.model.camera(scene.exterior_camera(i, v)).id for i, v in enumerate(self.views)]

        self.controller = DiffIKController(self.model, scene.EE_SITE, scene.ARM_JOINTS, scene.ARM_ACTUATORS,
                                           HOME_JOINT_GUESS, IKConfig())
        self.home_rot = euler_xyz_to_matrix(HOME_TCP_EULER)
        self.home_qpos = self._solve_home()
        self.controller.home_qpos = self.home_qpos

        # nominal values that randomisation perturbs (restored at every reset)
        self._nominal = {
            "geom_rgba": self.model.geom_rgba.copy(), "light_pos": self.model.light_pos.copy(),
            "light_dir": self.model.light_dir.copy(), "light_diffuse": self.model.light_diffuse.copy(),
            "headlight_ambient": self.model.vis.headlight.ambient.copy(),
            "cam_pos": self.model.cam_pos.copy(), "cam_quat": self.model.cam_quat.copy(),
        }

        size = self.config.image_size
        image_space = spaces.Box(0, 255, (size, size, 3), dtype=np.uint8)
        obs_spaces = {"image": spaces.Box(0, 255, (size, size * len(self.views), 3), dtype=np.uint8),
                      "state": spaces.Box(np.array([-2, -2, -2, -np.pi, -np.pi, -np.pi, 0], np.float32),
                                          np.array([2, 2, 2, np.pi, np.pi, np.pi, 1], np.float32), dtype=np.float32)}
        if self.config.wrist_camera:
            obs_spaces["wrist_image"] = image_space
        self.observation_space = spaces.Dict(obs_spaces)
        bound = np.array([MAX_TRANSLATION] * 3 + [MAX_ROTATION] * 3 + [MAX_GRIPPER_DELTA], np.float32)
        self.action_space = spaces.Box(-bound, bound, dtype=np.float32)

        self._renderer = None  # created lazily: building the env does not need a GL context
        self._scene_option = mujoco.MjvOption()
        self._scene_option.sitegroup[4] = int(self.config.show_goal_marker)
        self._gripper_cmd = 0.0
        self._commanded_state = np.zeros(7)
        self._last_image: np.ndarray | None = None
        self._episode_started = False

    # -- task hooks (subclasses) ------------------------------------------------------------
    def _sample_task(self, rng: np.random.Generator) -> None:
        """Place objects and the goal in `self.data` (arm already at home)."""
        raise NotImplementedError

    def _task_metrics(self) -> dict[str, Any]:
        """Privileged task distances and `success` for the current `self.data`."""
        raise NotImplementedError

    def _set_goal_configuration(self, data: mujoco.MjData) -> float:
        """Put `data` (a copy of the current state) into the goal configuration; returns the gripper closedness."""
        raise NotImplementedError

    def _subgoal_configurations(self) -> list[Callable[[mujoco.MjData], float]]:
        """The intermediate configurations on the way to the goal, in order, each a function like
        `_set_goal_configuration` (the goal itself is not in the list). Default: none."""
        return []

    def new_subgoal_round(self) -> bool:
        """Re-plan the way-points from where the objects lie now, as an operator who hands a robot a
        new round of sub-goal images would: True when there is a new round (`subgoal_images()`,
        `goal_image()` and their states now start from the current scene), False when nothing is left
        to re-plan. Default False: the task's goal does not depend on where things moved."""
        self._require_reset("new_subgoal_round()")
        return False

    def _start_round_from(self, anchor: str, position: np.ndarray) -> bool:
        """Set the attribute `anchor` (where a round's way-points start) to `position` if the arm can
        reach every way-point and the goal from there (IK); else keep the old round and return False."""
        previous = getattr(self, anchor)
        setattr(self, anchor, position)
        try:
            self.subgoal_states()
        except RuntimeError:  # IK: a way-point beyond the arm's reach
            setattr(self, anchor, previous)
            return False
        return True

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options:
            raise ValueError(f"reset options are not supported (got {sorted(options)}); configure the env instead")
        rng = self.np_random
        self._randomize_appearance(rng)
        mujoco.mj_resetData(self.model, self.data)
        noise = rng.uniform(-self.config.joint_noise, self.config.joint_noise, size=7)
        self.data.qpos[self._arm_qpos] = self.home_qpos + noise
        self.data.qpos[self._finger_qpos] = scene.FINGER_OPEN
        self.data.ctrl[self._arm_act] = self.data.qpos[self._arm_qpos]
        self.data.ctrl[self._finger_act] = scene.FINGER_OPEN
        self._gripper_cmd = 0.0
        self._sample_task(rng)
        mujoco.mj_forward(self.model, self.data)
        for _ in range(10):  # let objects settle onto the table
            mujoco.mj_step(self.model, self.data)
        self._commanded_state = self.state()
        self._episode_started = True
        return self._observation(), self._info()

    def step(self, action):
        self._require_reset("step()")
        action = check_action(action)
        action = np.clip(action, self.action_space.low, self.action_space.high)
        state = self.state()
        target = apply_action(state, action)  # [7] target TCP pose + gripper
        target[POSITION] = np.clip(target[POSITION], WORKSPACE_LOW, WORKSPACE_HIGH)
        grip = float(target[GRIPPER])
        if action[GRIPPER] >= -GRIPPER_HOLD_EPS:
            grip = max(grip, self._gripper_cmd)
        self._gripper_cmd = grip
        target[GRIPPER] = grip
        self._commanded_state = target
        self.data.ctrl[self._finger_act] = scene.FINGER_OPEN * (1.0 - grip)
        self.controller.run(self.data, target[POSITION], euler_xyz_to_matrix(target[ROTATION]), 1.0 / self.control_hz)
        obs, info = self._observation(), self._info()
        return obs, float(info["success"]), False, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        if self._last_image is None:
            return self._render(self.data, scene.EXTERIOR_CAMERA)
        return self._last_image.copy()

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -- snapshots ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The episode's dynamic state (all of the simulation data, and the commanded gripper / pose), so
        `restore` can go back after trying actions. Valid within the episode it was taken in (a reset
        re-draws the scene)."""
        self._require_reset("snapshot()")
        data = mujoco.MjData(self.model)
        mujoco.mj_copyData(data, self.model, self.data)  # derived quantities too: the controller reads them
        return {"data": data, "gripper_cmd": self._gripper_cmd, "commanded_state": self._commanded_state.copy(),
                "last_image": None if self._last_image is None else self._last_image.copy()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Return to a `snapshot()` of this episode: the next `step` acts exactly as it would have then."""
        self._require_reset("restore()")
        mujoco.mj_copyData(self.data, self.model, snapshot["data"])
        self._gripper_cmd = snapshot["gripper_cmd"]
        self._commanded_state = snapshot["commanded_state"].copy()
        self._last_image = None if snapshot["last_image"] is None else snapshot["last_image"].copy()

    # -- state, observation, info -----------------------------------------------------------
    def state(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """[7] float64 `[x, y, z, roll, pitch, yaw, gripper]` of the TCP in the base frame."""
        data = self.data if data is None else data
        rot = data.site_xmat[self._ee_site].reshape(3, 3)
        return np.concatenate([data.site_xpos[self._ee_site], matrix_to_euler_xyz(rot),
                               [self._closedness(data)]])

    def _closedness(self, data: mujoco.MjData) -> float:
        opening = data.qpos[self._finger_qpos].sum() / (2 * scene.FINGER_OPEN)
        return float(np.clip(1.0 - opening, 0.0, 1.0))

    def _observation(self) -> dict[str, np.ndarray]:
        image = self._render(self.data, scene.EXTERIOR_CAMERA)
        self._last_image = image
        obs = {"image": image, "state": self.state().astype(np.float32)}
        if self.config.wrist_camera:
            obs["wrist_image"] = self._render(self.data, scene.WRIST_CAMERA)
        return obs

    def _info(self) -> dict[str, Any]:
        state = self.state()
        info = {
            "cartesian_position": state[CARTESIAN].copy(),
            "gripper_position": float(state[GRIPPER]),
            "joint_positions": self.data.qpos[self._arm_qpos].copy(),
            "commanded_state": self._commanded_state.copy(),
            "camera_extrinsics": self.camera_extrinsics(),
        }
        info.update(self._task_metrics())
        return info

    def camera_extrinsics(self, data: mujoco.MjData | None = None) -> dict[str, np.ndarray]:
        """{camera: [6] = xyz + extrinsic xyz Euler} of each camera (OpenCV optical frame) in the base frame."""
        data = self.data if data is None else data
        out = {}
        for name, cam in self._cam_ids.items():
            rot = data.cam_xmat[cam].reshape(3, 3) @ _MJ_TO_CV
            out[name] = np.concatenate([data.cam_xpos[cam], matrix_to_euler_xyz(rot)])
        return out

    # -- rendering and goals ----------------------------------------------------------------
    def _render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """[H, W, 3] uint8 from `camera`; the exterior camera with several views: [H, V*W, 3], side by side."""
        if self._renderer is None:
            size = self.config.image_size
            self._renderer = make_renderer(self.model, size, size)
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(self.config.shadows)
        cams = self._view_cams if camera == scene.EXTERIOR_CAMERA else [self._cam_ids[camera]]
        images = []
        for cam in cams:
            self._renderer.update_scene(data, camera=cam, scene_option=self._scene_option)
            images.append(self._renderer.render().copy())
        return images[0] if len(images) == 1 else np.concatenate(images, axis=1)

    def _require_reset(self, what: str) -> None:
        if not self._episode_started:
            raise RuntimeError(f"call reset() before {what}: the episode (objects, goal) is not set up yet")

    def _goal_data_ready(self, configure: Callable[[mujoco.MjData], float] | None = None) -> mujoco.MjData:
        """The scratch data in the goal configuration (or the one `configure` sets up) of this episode."""
        self._require_reset("goal_image() / goal_state() / subgoal_images()")
        goal = self._goal_data
        goal.qpos[:] = self.data.qpos  # positions are all a picture needs; mj_forward does the rest
        goal.qvel[:] = 0.0
        closedness = (configure or self._set_goal_configuration)(goal)
        goal.qpos[self._finger_qpos] = scene.FINGER_OPEN * (1.0 - closedness)
        mujoco.mj_forward(self.model, goal)
        return goal

    def goal_image(self, camera: str = scene.EXTERIOR_CAMERA) -> np.ndarray:
        """[H, W, 3] uint8: the goal configuration of this episode seen from `camera`."""
        if camera not in self.camera_names:
            raise ValueError(f"unknown camera {camera!r}; this env has {self.camera_names}")
        return self._render(self._goal_data_ready(), camera)

    def goal_state(self) -> np.ndarray:
        """[7] TCP state of the arm in the goal configuration (what `goal_image` shows)."""
        return self.state(self._goal_data_ready())

    def subgoal_images(self, camera: str = scene.EXTERIOR_CAMERA) -> list[np.ndarray]:
        """[K][H, W, 3] uint8: the task's way-points seen from `camera` (where the scripted expert passes:
        e.g. above the object, at it, lifted), ending with `goal_image()`. Reach has none but the goal.

        Images of the episode's objects as placed at reset; a planner aims at them one after another
        (V-JEPA 2-AC plans pick-and-place through image sub-goals the same way)."""
        if camera not in self.camera_names:
            raise ValueError(f"unknown camera {camera!r}; this env has {self.camera_names}")
        return [self._render(self._goal_data_ready(c), camera) for c in self._goal_sequence()]

    def subgoal_states(self) -> np.ndarray:
        """[K, 7] TCP states of the arm in the configurations `subgoal_images` shows."""
        return np.stack([self.state(self._goal_data_ready(c)) for c in self._goal_sequence()])

    def _goal_sequence(self) -> list[Callable[[mujoco.MjData], float]]:
        """The sub-goal configurations, then the goal's."""
        return [*self._subgoal_configurations(), self._set_goal_configuration]

    def _arm_to(self, data: mujoco.MjData, pos: np.ndarray, rot: np.ndarray | None = None) -> None:
        """IK: set `data`'s arm joints so the TCP is at `pos` with `rot` (default: home orientation)."""
        data.qpos[self._arm_qpos] = self.home_qpos
        err = self.controller.solve_ik(data, np.asarray(pos, float), self.home_rot if rot is None else rot)
        if err > 1e-3:
            raise RuntimeError(f"IK did not reach TCP pose {np.round(pos, 3).tolist()} (error {err:.4f})")

    def _solve_home(self) -> np.ndarray:
        data = self._goal_data
        data.qpos[self._arm_qpos] = HOME_JOINT_GUESS
        err = self.controller.solve_ik(data, HOME_TCP_POS, self.home_rot)
        if err > 1e-4:
            raise RuntimeError(f"IK for the home pose failed (error {err:.5f})")
        return data.qpos[self._arm_qpos].copy()

    # -- randomisation ----------------------------------------------------------------------
    def _randomize_appearance(self, rng: np.random.Generator) -> None:
        m, nominal, cfg = self.model, self._nominal, self.config
        m.geom_rgba[:] = nominal["geom_rgba"]
        m.light_pos[:], m.light_dir[:] = nominal["light_pos"], nominal["light_dir"]
        m.light_diffuse[:] = nominal["light_diffuse"]
        m.vis.headlight.ambient[:] = nominal["headlight_ambient"]
        m.cam_pos[:], m.cam_quat[:] = nominal["cam_pos"], nominal["cam_quat"]
        if cfg.randomize_colors:
            for name in self.scene_info.object_geoms:
                rgb = _rgb_from_hue(rng)
                for g in self._geoms_named(name):
                    m.geom_rgba[g] = rgb
            table = m.geom("table").id
            m.geom_rgba[table, :3] = np.clip(nominal["geom_rgba"][table, :3] + rng.uniform(-0.1, 0.1, 3), 0, 1)
        if cfg.randomize_lighting:
            key = m.light("key").id
            m.light_pos[key] = nominal["light_pos"][key] + rng.uniform(-0.4, 0.4, 3) * [1, 1, 0.25]
            m.light_diffuse[:] = nominal["light_diffuse"] * rng.uniform(0.6, 1.15, (m.nlight, 1))
            m.vis.headlight.ambient[:] = nominal["headlight_ambient"] * rng.uniform(0.6, 1.4)
        if cfg.camera_jitter > 0:
            for cam, view in zip(self._view_cams, self.views):
                if view not in scene.EXTERIOR_VIEWS:
                    continue  # the wrist view rides on the hand
                jitter = np.clip(rng.normal(0.0, cfg.camera_jitter, (2, 3)), -3 * cfg.camera_jitter,
                                 3 * cfg.camera_jitter)
                view_pos, view_lookat = scene.EXTERIOR_VIEWS[view]
                pos = np.asarray(view_pos) + jitter[0]
                m.cam_pos[cam] = pos
                m.cam_quat[cam] = scene.look_at_quat(pos, np.asarray(view_lookat) + jitter[1])

    def _geoms_named(self, prefix: str) -> list[int]:
        return [g for g in range(self.model.ngeom)
                if (name := self.model.geom(g).name) == prefix or name.startswith(prefix + "_wall")]

    # -- helpers for tasks ------------------------------------------------------------------
    def _free_joint_qpos(self, body: str) -> int:
        return int(self.model.jnt_qposadr[self.model.body(body).jntadr[0]])

    def object_pose(self, body: str, data: mujoco.MjData | None = None) -> tuple[np.ndarray, float]:
        """(position [3], yaw) of a body in the base frame."""
        data = self.data if data is None else data
        rot = data.xmat[self.model.body(body).id].reshape(3, 3)
        return data.xpos[self.model.body(body).id].copy(), float(np.arctan2(rot[1, 0], rot[0, 0]))

    def _place_free_body(self, data: mujoco.MjData, body: str, pos, yaw: float) -> None:
        adr = self._free_joint_qpos(body)
        data.qpos[adr:adr + 3] = pos
        data.qpos[adr + 3:adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        dof = int(self.model.jnt_dofadr[self.model.body(body).jntadr[0]])
        data.qvel[dof:dof + 6] = 0.0


class FrankaReachEnv(FrankaEnv):
    """Move the TCP to within `SUCCESS_DISTANCE` of a goal position (orientation free)."""

    task_name = "reach"
    SUCCESS_DISTANCE = 0.04
    NOMINAL_GOAL = np.array([0.55, 0.15, 0.15])

    def _sample_task(self, rng):
        goal = self.NOMINAL_GOAL.copy()
        if self.config.randomize_objects:
            for _ in range(100):
                goal = rng.uniform([0.32, -0.25, 0.08], [0.65, 0.25, 0.35])
                if np.linalg.norm(goal - HOME_TCP_POS) > 0.12:
                    break
        self.goal_pos = goal
        self.model.site_pos[self.model.site("goal_marker").id] = goal

    def _task_metrics(self):
        dist = float(np.linalg.norm(self.data.site_xpos[self._ee_site] - self.goal_pos))
        return {"success": dist < self.SUCCESS_DISTANCE, "ee_to_goal": dist}

    def _set_goal_configuration(self, data):
        self._arm_to(data, self.goal_pos)
        return 0.0


class FrankaPushEnv(FrankaEnv):
    """Push a block so its centre is within `SUCCESS_DISTANCE` of the target disc's centre."""

    task_name = "push"
    SUCCESS_DISTANCE = 0.05
    NOMINAL_BLOCK = np.array([0.5, -0.08])
    NOMINAL_TARGET = np.array([0.58, 0.1])
    GOAL_BACKOFF = 0.04  # m further back than the pushing pose
    GOAL_TCP_Z = 0.12
    ROUND_DONE_DISTANCE = 0.02  # m: a block this close to its target gets no new round of way-points

    def __init__(self, *args: Any, push_waypoints: int = 1, **kwargs: Any):
        """`push_waypoints`: how many way-point images lie along the push, evenly spaced, the last at
        its end; the other arguments are `FrankaEnv`'s."""
        super().__init__(*args, **kwargs)
        if isinstance(push_waypoints, bool) or not isinstance(push_waypoints, (int, np.integer)) \
                or not 1 <= push_waypoints <= 10:
            raise ValueError(f"push_waypoints must be an int in [1, 10], got {push_waypoints!r}")
        self.push_waypoints = int(push_waypoints)

    def _sample_task(self, rng):
        block, target, yaw = self.NOMINAL_BLOCK.copy(), self.NOMINAL_TARGET.copy(), 0.0
        if self.config.randomize_objects:
            yaw = rng.uniform(-np.pi / 4, np.pi / 4)
            for _ in range(100):
                block = rng.uniform([0.42, -0.18], [0.62, 0.18])
                target = rng.uniform([0.38, -0.25], [0.68, 0.25])
                if 0.12 <= np.linalg.norm(target - block) <= 0.25:
                    break
        self.target_pos = target
        self._start_block = np.array([*block, scene.TABLE_TOP + scene.PUSH_BLOCK_HALF])
        self._place_free_body(self.data, "block", self._start_block, yaw)
        self.model.geom_pos[self.model.geom("target").id, :2] = target

    def new_subgoal_round(self) -> bool:
        """A new push from where the block lies now, unless it is within `ROUND_DONE_DISTANCE` of the
        target, off the table, or where the arm cannot reach the new pre-push point: the way-points
        (above and at the pre-push point, along the push) and the goal image's arm then follow the
        line from the block's present position to the target."""
        self._require_reset("new_subgoal_round()")
        pos, _ = self.object_pose("block")
        on_table = pos[2] > scene.TABLE_TOP
        if not on_table or np.linalg.norm(pos[:2] - self.target_pos) < self.ROUND_DONE_DISTANCE:
            return False
        return self._start_round_from("_start_block", np.array([*pos[:2], self._start_block[2]]))

    def _task_metrics(self):
        pos, _ = self.object_pose("block")
        dist = float(np.linalg.norm(pos[:2] - self.target_pos))
        ee = float(np.linalg.norm(self.data.site_xpos[self._ee_site] - pos))
        return {"success": dist < self.SUCCESS_DISTANCE, "block_to_target": dist, "ee_to_block": ee}

    def push_pose(self, block_xy: np.ndarray, toward_xy: np.ndarray) -> tuple[np.ndarray, float]:
        """TCP xy just behind the block for pushing it toward `toward_xy`, and the gripper yaw."""
        direction = toward_xy - block_xy
        direction /= max(np.linalg.norm(direction), 1e-9)
        behind = block_xy - direction * (scene.PUSH_BLOCK_HALF + 0.03)
        # closed fingers are widest along the gripper's y axis: face the block with that side
        yaw = float(np.arctan2(direction[1], direction[0]))
        yaw = (yaw + np.pi / 2) % np.pi - np.pi / 2  # the gripper is symmetric under yaw + pi
        return behind, yaw

    def goal_tcp(self) -> np.ndarray:
        """[3] Where the arm ends (and the goal image shows it, fingers closed, home orientation):
        backed off and raised behind the block at the target, so the block stays visible."""
        direction = self.target_pos - self._start_block[:2]
        behind, _ = self.push_pose(self.target_pos, self.target_pos + direction)
        back = (behind - self.target_pos) / np.linalg.norm(behind - self.target_pos)
        return np.array([*(behind + back * self.GOAL_BACKOFF), self.GOAL_TCP_Z])

    def _set_goal_configuration(self, data, rot: np.ndarray | None = None):
        _, yaw = self.object_pose("block", data)
        self._place_free_body(data, "block", [*self.target_pos, self._start_block[2]], yaw)
        self._arm_to(data, self.goal_tcp(), rot)
        return 1.0

    def _subgoal_configurations(self, rot: np.ndarray | None = None):
        """Fingers closed, home orientation (or `rot` [3, 3]): above the pre-push point (3 cm behind
        contact), down at it, then `push_waypoints` poses along the push, evenly spaced, with the block
        in front of the fingers: the last at the end of the push with the block on the target.

        The expert turns its fingers to face the push, but these images keep the home orientation, as
        the goal image does: a planner that holds the rotation (V-JEPA 2-AC's, and ours) can reach
        them. A turned hand looks very different from the camera, and aiming at it pulled the
        energy's minimum centimetres off the way-point."""
        from jepa_ac.envs.experts import LOW_Z, SAFE_Z, PushExpert

        start = self._start_block[:2]
        direction = (self.target_pos - start) / np.linalg.norm(self.target_pos - start)
        pre = PushExpert.pre_push_point(start, direction)
        pushed = self.target_pos - direction * PushExpert.CONTACT

        def arm_at(xy, z, block_xy):
            def configure(data):
                _, block_yaw = self.object_pose("block", data)
                self._place_free_body(data, "block", [*block_xy, self._start_block[2]], block_yaw)
                self._arm_to(data, np.array([*xy, z]), rot)
                return 1.0
            return configure

        contact = start - direction * PushExpert.CONTACT
        n = self.push_waypoints
        along = [arm_at(contact + (pushed - contact) * k / n, LOW_Z, start + (self.target_pos - start) * k / n)
                 for k in range(1, n + 1)]
        return [arm_at(pre, SAFE_Z, start), arm_at(pre, LOW_Z, start), *along]


class FrankaPickPlaceEnv(FrankaEnv):
    """Pick up a cube and put it in a bowl: success when it rests inside the bowl's rim."""

    task_name = "pickplace"
    NOMINAL_CUBE = np.array([0.5, -0.12])
    NOMINAL_BOWL = np.array([0.55, 0.15])
    GOAL_TCP_Z = 0.2

    def __init__(self, *args: Any, descent_waypoints: int = 0, **kwargs: Any):
        """`descent_waypoints`: how many way-point images lie between "open above the cube" and "open
        around it", evenly spaced straight down; the other arguments are `FrankaEnv`'s."""
        super().__init__(*args, **kwargs)
        if isinstance(descent_waypoints, bool) or not isinstance(descent_waypoints, (int, np.integer)) \
                or not 0 <= descent_waypoints <= 5:
            raise ValueError(f"descent_waypoints must be an int in [0, 5], got {descent_waypoints!r}")
        self.descent_waypoints = int(descent_waypoints)

    def _sample_task(self, rng):
        cube, bowl, yaw = self.NOMINAL_CUBE.copy(), self.NOMINAL_BOWL.copy(), 0.0
        if self.config.randomize_objects:
            yaw = rng.uniform(-np.pi / 4, np.pi / 4)
            for _ in range(100):
                cube = rng.uniform([0.4, -0.22], [0.64, 0.22])
                bowl = rng.uniform([0.4, -0.22], [0.64, 0.22])
                if np.linalg.norm(cube - bowl) >= 0.18:
                    break
        self.bowl_pos = np.array([*bowl, scene.TABLE_TOP])
        self.model.body_pos[self.model.body("bowl").id] = self.bowl_pos
        self._start_cube = np.array([*cube, scene.TABLE_TOP + scene.PICK_CUBE_HALF])
        self._place_free_body(self.data, "cube", self._start_cube, yaw)

    def new_subgoal_round(self) -> bool:
        """A new pick from where the cube lies now, when it rests on the table outside the bowl: the
        way-points (above, around, closed on, lifted with the cube, over the bowl) then start there.
        A cube in or on the bowl, held, or beyond the arm's reach gets no new round."""
        self._require_reset("new_subgoal_round()")
        pos, _ = self.object_pose("cube")
        on_table = abs(pos[2] - self._start_cube[2]) < 0.01
        clear_of_bowl = np.linalg.norm(pos[:2] - self.bowl_pos[:2]) > scene.BOWL_RADIUS + scene.PICK_CUBE_HALF
        if not (on_table and clear_of_bowl):
            return False
        return self._start_round_from("_start_cube", np.array([*pos[:2], self._start_cube[2]]))

    def _task_metrics(self):
        pos, _ = self.object_pose("cube")
        dist = float(np.linalg.norm(pos[:2] - self.bowl_pos[:2]))
        inside = dist < scene.BOWL_RADIUS - scene.PICK_CUBE_HALF + 0.005
        resting = pos[2] < scene.TABLE_TOP + 2 * scene.BOWL_BASE_HALF + scene.PICK_CUBE_HALF + 0.01
        ee = float(np.linalg.norm(self.data.site_xpos[self._ee_site] - pos))
        return {"success": bool(inside and resting), "cube_to_bowl": dist, "cube_height": float(pos[2]),
                "ee_to_cube": ee}

    def _set_goal_configuration(self, data):
        _, yaw = self.object_pose("cube", data)
        cube_z = scene.TABLE_TOP + 2 * scene.BOWL_BASE_HALF + scene.PICK_CUBE_HALF
        self._place_free_body(data, "cube", [*self.bowl_pos[:2], cube_z], yaw)
        self._arm_to(data, self.goal_tcp())
        return 0.0

    def goal_tcp(self) -> np.ndarray:
        """Where the arm ends (and the goal image shows it): above the bowl, gripper open."""
        return np.array([*self.bowl_pos[:2], self.GOAL_TCP_Z])

    def _subgoal_configurations(self):
        """Home orientation: open above the cube, open around it, closed on it, lifted with it, over
        the bowl with it (then the goal: the cube in the bowl, the gripper open above it)."""
        from jepa_ac.envs.experts import LOW_Z, SAFE_Z

        cube_start = self._start_cube
        above_cube, at_cube = np.array([*cube_start[:2], SAFE_Z]), np.array([*cube_start[:2], LOW_Z])
        grip = cube_start - at_cube  # [3] the cube's offset from the TCP when grasped
        closed = 1.0 - scene.PICK_CUBE_HALF / scene.FINGER_OPEN  # fingers touching the cube's sides

        def arm_at(tcp, closedness, held):
            def configure(data):
                _, cube_yaw = self.object_pose("cube", data)
                self._place_free_body(data, "cube", tcp + grip if held else cube_start, cube_yaw)
                self._arm_to(data, tcp)
                return closedness
            return configure

        lifted = np.array([*cube_start[:2], self.GOAL_TCP_Z])
        over_bowl = np.array([*self.bowl_pos[:2], self.GOAL_TCP_Z])
        n = self.descent_waypoints
        descent = [above_cube + (at_cube - above_cube) * (i + 1) / (n + 1) for i in range(n)]
        return [arm_at(above_cube, 0.0, False), *(arm_at(p, 0.0, False) for p in descent), arm_at(at_cube, 0.0, False),
                arm_at(at_cube, closed, True), arm_at(lifted, closed, True), arm_at(over_bowl, closed, True)]
