"""MuJoCo Franka Panda gymnasium environments (reach, push, pick-and-place) and scripted experts.

    import gymnasium as gym
    import jepa_ac.envs  # registers the ids below (gymnasium >= 1.0 no longer loads entry points)
    env = gym.make("jepa_ac/FrankaReach-v0", image_size=256)
    expert = jepa_ac.envs.make_expert(env, noise=0.1, seed=0)

Importing this package picks a headless OpenGL backend (`MUJOCO_GL=egl` unless set) before
mujoco is imported, and registers the envs; mujoco itself is imported only when an env is made.
"""

from __future__ import annotations

from jepa_ac.envs.rendering import select_gl_backend

select_gl_backend()

ENV_IDS = {
    "jepa_ac/FrankaReach-v0": ("jepa_ac.envs.franka_env:FrankaReachEnv", 40),
    "jepa_ac/FrankaPush-v0": ("jepa_ac.envs.franka_env:FrankaPushEnv", 60),
    "jepa_ac/FrankaPickPlace-v0": ("jepa_ac.envs.franka_env:FrankaPickPlaceEnv", 60),
}

ENV_ALIASES = {"reach": "jepa_ac/FrankaReach-v0", "push": "jepa_ac/FrankaPush-v0",
               "pickplace": "jepa_ac/FrankaPickPlace-v0", "pick-and-place": "jepa_ac/FrankaPickPlace-v0"}


def resolve_env_id(name: str) -> str:
    """A Franka env id from its id or short name (reach, push, pickplace); ValueError naming both otherwise."""
    env_id = ENV_ALIASES.get(name, name)
    if env_id not in ENV_IDS:
        raise ValueError(f"unknown env {name!r}; use one of {list(ENV_IDS)} or {sorted(ENV_ALIASES)}")
    return env_id


def register_envs() -> None:
    """Register the Franka env ids with gymnasium (idempotent; also the `gymnasium.envs` entry point)."""
    import gymnasium

    for env_id, (entry_point, max_steps) in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, max_episode_steps=max_steps)


def __getattr__(name: str):
    # lazy: `import jepa_ac.envs` must stay cheap and must not import mujoco before the GL choice
    if name in ("FrankaEnv", "FrankaEnvConfig", "FrankaReachEnv", "FrankaPushEnv", "FrankaPickPlaceEnv"):
        from jepa_ac.envs import franka_env

        return getattr(franka_env, name)
    if name == "make_expert":
        from jepa_ac.envs.experts import make_expert

        return make_expert
    raise AttributeError(f"module 'jepa_ac.envs' has no attribute {name!r}")


register_envs()
