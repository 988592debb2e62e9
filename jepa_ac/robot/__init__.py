"""Robot-side control: the `Robot`/`Policy` interfaces, adapters, the safety layer and the MPC loop.

    from jepa_ac.robot import GymRobot, SafetyLayer, load_safety_config, run_episode
    from jepa_ac.serving.client import PlannerClient

    robot = GymRobot(gymnasium.make("jepa_ac/FrankaReach-v0", image_size=64))
    robot.reset(seed=0)
    with PlannerClient("ws://127.0.0.1:8765") as policy:
        result = run_episode(robot, policy, robot.goal_image(), max_steps=20,
                             safety=SafetyLayer(load_safety_config()))

Nothing here imports torch or MLX.
"""

from jepa_ac.robot.adapters import DroidRobot, GymRobot
from jepa_ac.robot.env_adapter import AdapterSpec, EnvAdapter
from jepa_ac.robot.loop import EpisodeResult, StepRecord, run_episode
from jepa_ac.robot.protocol import Policy, Robot
from jepa_ac.robot.safety import SafeAction, SafetyConfig, SafetyLayer, SafetyStop, load_safety_config

__all__ = [
    "AdapterSpec", "DroidRobot", "EnvAdapter", "GymRobot", "EpisodeResult", "StepRecord", "run_episode", "Policy",
    "Robot", "SafeAction", "SafetyConfig", "SafetyLayer", "SafetyStop", "load_safety_config",
]
