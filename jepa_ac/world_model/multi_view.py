"""`MultiViewWorldModel`: world models that each see their own camera, planning as one.

    wm = load_world_model("jepa_ac/assets/default_model")     # views.json: ["front", "side"]
    z = wm.encode(frame)        # frame [H, 2W, 3]: the views side by side -> [1, N_front + N_side, D]
    z = wm.encode(front_only)   # a frame of one view ([H, W, 3]) -> the first view's latent [1, N_front, D]

Each view is a whole world model (encoder, predictor, its own ensemble) trained on its camera. A
frame holds the views side by side, in `names` order; its latent is the views' latents joined over
tokens, each view rolls out its own tokens with its own predictor, and the L1 energy (a mean over
tokens) is the mean of the views' energies, since the views have equal token counts. A camera's
depth axis is where one view is least precise; another view sees that axis across the image.

A frame of a single view (narrower than 1.5 times its height) is the first view alone:
the first view's world model plans by itself, as a one-view checkpoint would. Goal and frame must
then show the same views.

In our checkpoint folder: the first view is the folder's own model, `views.json` names the views
in order, and each other view is our folder under `views/<name>/` (`add_view`).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from jepa_ac.files import write_json_atomic
from jepa_ac.model.preprocess import check_frames
from jepa_ac.world_model.checkpoints import CheckpointError, read_checkpoint_for, save_checkpoint
from jepa_ac.world_model.model import ENSEMBLE_DIR, SUBFOLDER_NAME, WorldModel

VIEWS_FILE = "views.json"  # {"format": "jepa_ac.views", "version": 1, "views": ["front", "side"]}
VIEWS_DIR = "views"
VIEWS_FORMAT = "jepa_ac.views"


class MultiViewWorldModel:
    """Several `WorldModel`s, one per camera view (`names`, in the frame's left-to-right order)."""

    def __init__(self, views: Sequence[WorldModel], names: Sequence[str], provenance: dict[str, Any] | None = None):
        if len(views) < 2 or len(views) != len(names):
            raise ValueError(f"a multi-view world model needs two or more views, one name each; got {len(views)} "
                             f"models and names {list(names)}")
        for name, wm in zip(names, views):
            if wm.encoder_config is None or wm.predictor_config is None:
                raise ValueError(f"view {name!r}: each view needs an encoder and a predictor")
        widths = {wm.encoder_config.embed_dim for wm in views}
        if len(widths) != 1:
            raise ValueError(f"the views' latents must have one width to be joined, got {sorted(widths)} "
                             f"for views {list(names)}")
        self.views, self.names = tuple(views), tuple(names)
        self.provenance = {**self.views[0].provenance, **(provenance or {}), "views": list(self.names)}
        self.members = tuple(m for wm in self.views for m in wm.members)  # any view's ensemble
        self._bounds = [int(b) for b in np.cumsum([0, *(wm.tokens_per_frame for wm in self.views)])]  # token offsets
        self.active = len(self.views)  # the leading views that plan (`using`): frames of every view are cut to them

    def using(self, count: int) -> "MultiViewWorldModel":
        """This model planning with its first `count` views only (the same networks): a frame holding
        every view is cut to those views, so a task set to fewer views plans the same from either frame."""
        if not 1 <= count <= len(self.views):
            raise ValueError(f"count must be in 1..{len(self.views)}, got {count!r}")
        other = copy.copy(self)
        other.active = count
        return other

    # -- frames and latents ----------------------------------------------------------------------

    @property
    def joined_tokens_per_frame(self) -> int:
        """N of a frame holding every view (`tokens_per_frame`, as all not defined here, is the first view's)."""
        return self._bounds[-1]

    def views_in(self, frames: np.ndarray) -> int:
        """How many views frames [T, H, W, 3] hold: all V of them when W >= (V - 0.5) * H, the first
        alone when W < 1.5 * H; a width between is an error."""
        _, h, w, _ = frames.shape
        count = len(self.views)
        if w >= (count - 0.5) * h:
            return count
        if w < 1.5 * h:
            return 1
        raise ValueError(f"a frame of {w} x {h} px holds neither one view nor all {count} "
                         f"({'+'.join(self.names)}) side by side (at least {(count - 0.5) * h:.0f} px wide)")

    def encode(self, frames: np.ndarray, batch_size: int = 16, **options: Any) -> Any:
        """uint8 [T, H, V*W, 3] (the views side by side) -> [T, N_1 + ... + N_V, D]; a frame of one
        view [T, H, W, 3] -> the first view's latents [T, N_1, D]."""
        frames = check_frames(frames)
        count = self.views_in(frames)
        width = frames.shape[2] // count
        count = min(count, self.active)
        parts = [wm.encode(frames[:, :, v * width:(v + 1) * width], batch_size, **options)
                 for v, wm in enumerate(self.views[:count])]
        return parts[0] if count == 1 else self.ops.concat(parts, axis=1)

    encode_frames = encode

    def split(self, z: Any) -> list[Any]:
        """Latents [..., N, D] of the first k views -> each view's [..., N_v, D] (k from N)."""
        n, bounds = z.shape[-2], self._bounds
        if n not in bounds[1:]:
            raise ValueError(f"a latent of {n} tokens fits no leading views of {'+'.join(self.names)} "
                             f"(token counts {bounds[1:]})")
        return [z[..., bounds[v]:bounds[v + 1], :] for v in range(bounds.index(n))]

    def _pairs(self, z: Any, z_goal: Any) -> list[tuple[WorldModel, Any, Any]]:
        zs, goals = self.split(z), self.split(z_goal)
        if len(zs) != len(goals):
            shown = lambda k: "+".join(self.names[:k])  # noqa: E731
            raise ValueError(f"the frame shows {shown(len(zs))} but the goal shows {shown(len(goals))}: give both "
                             f"with the same views side by side ({'+'.join(self.names)}), or both of the first view")
        return list(zip(self.views, zs, goals))

    # -- rollouts and energies -------------------------------------------------------------------

    def rollout(self, z_context: Any, state: Any, actions: Any) -> Any:
        """As `WorldModel.rollout`, each view with its own predictor: -> [S, H, N, D] over the views' tokens."""
        parts = [wm.rollout(z, state, actions) for wm, z in zip(self.views, self.split(z_context))]
        return parts[0] if len(parts) == 1 else self.ops.concat(parts, axis=2)

    def energy(self, z: Any, z_goal: Any, weights: Any = None) -> Any:
        self._pairs(z, z_goal)  # the same views on both sides
        return WorldModel.energy(self, z, z_goal, weights)

    def horizon_energy(self, imagined: Any, z_goal: Any, over: str = "last", weights: Any = None) -> Any:
        return WorldModel.horizon_energy(self, imagined, z_goal, over, weights)

    def goal_change_weights(self, z: Any, z_goal: Any, strength: float) -> Any:
        return WorldModel.goal_change_weights(self, z, z_goal, strength)

    def rollout_energy(self, z_context: Any, state: Any, actions: Any, z_goal: Any, over: str = "last",
                       weights: Any = None, ensemble: bool = False) -> Any:
        """The mean over views of each view's `rollout_energy` (with `ensemble`, each view that has
        members averages them first); `weights` [N] over all tokens are split per view."""
        pairs = self._pairs(z_context, z_goal)
        split_weights = [None] * len(pairs) if weights is None else self._split_weights(weights, len(pairs))
        energy = None
        for (wm, z, goal), w in zip(pairs, split_weights):
            e = wm.rollout_energy(z, state, actions, goal, over, w, ensemble and bool(wm.members))
            energy = e if energy is None else energy + e
        return energy / len(pairs)

    def ensemble_energy(self, energy: Any, z_context: Any, state: Any, actions: Any, z_goal: Any,
                        over: str = "last", weights: Any = None) -> Any:
        """The energy CEM scores candidates with under `ensemble` (`energy`, the first predictors', is
        recomputed: the views' ensembles differ)."""
        return self.rollout_energy(z_context, state, actions, z_goal, over, weights, ensemble=True)

    def _split_weights(self, weights: Any, count: int) -> list[Any]:
        """Token weights [N] over the joined views -> each view's slice (their per-view plain means
        average to the joined weighted mean, the views having equal token counts)."""
        bounds = self._bounds
        return [weights[bounds[v]:bounds[v + 1]] for v in range(count)]

    # -- everything else is the first view's ----------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        """What this class does not define (`predict`, `rollout_uncached`, `encode_image_file`, ...) is the
        first view's, the folder's own model: one-view code keeps working on a frame of that view."""
        if name.startswith("_") or name in ("views", "names"):  # private state, or read before __init__ ran (copy)
            raise AttributeError(name)
        return getattr(self.views[0], name)

    def save(self, path: str | Path, dtype: str | None = None, provenance: dict[str, Any] | None = None) -> Path:
        """Our folder: the first view's model, `views.json` and `views/<name>/` for the others."""
        path = Path(path)
        self.views[0].save(path, dtype, provenance)
        for name, wm in zip(self.names[1:], self.views[1:]):
            wm.save(path / VIEWS_DIR / name, dtype)
        write_views_file(path, self.names)
        return path


def for_view_setting(wm: Any, exterior_view: str | None) -> Any:
    """`wm` as a task set to `exterior_view` ("front+side", "front"; None: unset) plans with it: a
    multi-view model uses the leading views the setting names (`using`), so a frame of every view is
    cut to them, as the simulator would render them; any other model, or no setting, is unchanged.
    A setting that is not a leading part of the model's views is an error naming both."""
    names = getattr(wm, "names", None)
    if names is None or not exterior_view:
        return wm
    views = tuple(exterior_view.split("+"))
    if views != names[:len(views)]:
        raise ValueError(f"the exterior view setting {exterior_view!r} does not name this model's views "
                         f"{'+'.join(names)} or a leading part of them (e.g. {names[0]!r})")
    return wm if len(views) == len(names) else wm.using(len(views))


def write_views_file(folder: Path, names: Sequence[str]) -> Path:
    return write_json_atomic(Path(folder) / VIEWS_FILE, {"format": VIEWS_FORMAT, "version": 1, "views": list(names)})


def read_views_file(folder: Path) -> tuple[str, ...] | None:
    """The view names of our folder (None: a one-view folder), checked against its `views/` subfolders."""
    folder = Path(folder)
    path = folder / VIEWS_FILE
    if not path.is_file():
        if (folder / VIEWS_DIR).is_dir():
            raise CheckpointError(f"{folder} has a {VIEWS_DIR}/ folder but no {VIEWS_FILE} naming the views")
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not readable JSON ({err})") from None
    names = record.get("views") if isinstance(record, dict) else None
    if (not isinstance(record, dict) or record.get("format") != VIEWS_FORMAT or not isinstance(names, list)
            or len(names) < 2 or not all(isinstance(n, str) and SUBFOLDER_NAME.fullmatch(n) for n in names)
            or len(set(names)) != len(names)):
        raise CheckpointError(f"{path}: expected {{\"format\": \"{VIEWS_FORMAT}\", \"views\": [two or more distinct "
                              f"names of letters, digits, '_' or '-']}}, got {record!r:.200}")
    present = sorted(p.name for p in (folder / VIEWS_DIR).iterdir() if not p.name.startswith(".")) \
        if (folder / VIEWS_DIR).is_dir() else []
    missing, unexpected = sorted(set(names[1:]) - set(present)), sorted(set(present) - set(names[1:]))
    if missing or unexpected:
        raise CheckpointError(f"{folder}: {VIEWS_FILE} names the views {names} (the first is the folder's own "
                              f"model); missing under {VIEWS_DIR}/: {missing}, unexpected there: {unexpected}")
    return tuple(names)


def add_view(checkpoint: str | Path, source: str | Path, name: str, first_view: str | None = None) -> Path:
    """Add `source` (our folder: encoder + predictor, trained on camera `name`) as a view of our folder
    `checkpoint`, copied to `checkpoint/views/<name>/`, and record it in `views.json`. `first_view`
    names the camera of the folder's own model, needed when it has no views yet."""
    checkpoint = Path(checkpoint)
    if not SUBFOLDER_NAME.fullmatch(name):
        raise ValueError(f"view name must be letters, digits, '_' or '-', got {name!r}")
    names = read_views_file(checkpoint)
    if names is None:
        if not first_view:
            raise ValueError(f"{checkpoint} has no views yet: pass first_view, the camera its own model was trained on")
        names = (first_view,)
    if name in names:
        raise ValueError(f"{checkpoint} already has a view named {name!r} (views {list(names)})")
    ckpt = read_checkpoint_for(source, None, None, False, True)
    if "encoder" not in ckpt.arrays or "predictor" not in ckpt.arrays or ckpt.predictor_config is None:
        raise CheckpointError(f"{ckpt.source}: a view must be our folder with an encoder and a predictor")
    if (Path(source) / ENSEMBLE_DIR).is_dir():
        raise ValueError(f"{source} has an {ENSEMBLE_DIR}/: add the view without it, then its members with "
                         f"add_ensemble_member({checkpoint / VIEWS_DIR / name}, ...)")
    dtype = next(iter(ckpt.arrays["encoder"].values())).dtype.name
    save_checkpoint(checkpoint / VIEWS_DIR / name, ckpt.arrays, ckpt.encoder_config, ckpt.predictor_config,
                    {**ckpt.provenance, "view_source": str(source)}, dtype)
    write_views_file(checkpoint, (*names, name))
    return checkpoint / VIEWS_DIR / name
