"""jepa_ac: robot planning with action-conditioned V-JEPA 2 world models.

    import jepa_ac
    wm = jepa_ac.load_world_model(path, encoder="vit_giant", predictor="vit_ac_giant")
    planner = jepa_ac.CEMPlanner(wm, jepa_ac.CEMConfig(samples=800, iterations=10, topk=10, horizon=1))
    action = planner.plan(frame_uint8, state, goal_uint8)

Importing the package does not import torch or MLX (the robot-side client needs neither).
"""

from jepa_ac.model.config import (
    ENCODER_PRESETS,
    PREDICTOR_PRESETS,
    EncoderConfig,
    PredictorConfig,
)
from jepa_ac.planning import ActionSpec, CEMConfig, CEMPlanner, PlanningPolicy

__version__ = "0.1.0"

__all__ = [
    "ENCODER_PRESETS", "PREDICTOR_PRESETS", "EncoderConfig", "PredictorConfig", "ActionSpec", "CEMConfig",
    "CEMPlanner", "PlanningPolicy", "WorldModel", "load_world_model", "add_ensemble_member", "CheckpointError",
    "MultiViewWorldModel", "add_view",
]


def __getattr__(name: str):
    # world_model imports checkpoints/backends lazily-friendly; keep `import jepa_ac` light
    if name in ("WorldModel", "load_world_model", "add_ensemble_member", "MultiViewWorldModel", "add_view"):
        from jepa_ac import world_model

        return getattr(world_model, name)
    if name == "CheckpointError":
        from jepa_ac.world_model.checkpoints import CheckpointError

        return CheckpointError
    raise AttributeError(f"module 'jepa_ac' has no attribute {name!r}")
