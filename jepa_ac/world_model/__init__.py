"""The world model: an encoder and an action-conditioned predictor behind one backend.

`model` holds `WorldModel` and `load_world_model`; `multi_view` holds `MultiViewWorldModel` (one
world model per camera view, planning as one) and `add_view`; `checkpoints` reads and writes every
checkpoint layout (upstream .pt, Hugging Face folders, our own folder); `conversion` turns one
into our folder; `backends` run the networks in torch or MLX.
"""

from jepa_ac.world_model.model import (
    REPS_LAYER_NORM_EPS,
    WorldModel,
    add_ensemble_member,
    load_world_model,
    make_backend,
)
from jepa_ac.world_model.multi_view import MultiViewWorldModel, add_view

__all__ = ["REPS_LAYER_NORM_EPS", "MultiViewWorldModel", "WorldModel", "add_ensemble_member", "add_view",
           "load_world_model", "make_backend"]
