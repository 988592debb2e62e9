"""`WorldModel`: a frozen encoder + AC predictor on one backend, and `load_world_model`.

    wm = load_world_model("vjepa2-ac-vitg.pt", encoder="vit_giant", predictor="vit_ac_giant")
    z = wm.encode(frames)                       # [T, H, W, 3] uint8 -> [T, N, D]
    z_next = wm.predict(z_flat, actions, states)  # upstream predictor call

    enc = load_world_model("vjepa2_1_vitl_dist_vitG_384.pt", encoder="vjepa2_1_vit_large_384")
    z = enc.encode(image)                       # [H, W, 3] -> [1, N, D] (2.1 image path)
    z = enc.encode(clip)                        # [T, H, W, 3] -> [T/2, N, D] (2.1 video path)
    h = enc.encode(image, hierarchical=True)    # [1, N, 4*D]

The rollout and energy used by planning are written once here against `ArrayOps`; the backend
only runs the networks.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.world_model.checkpoints import (
    UPSTREAM_DROPPED,
    CheckpointError,
    check_allocation,
    match_arrays,
    read_checkpoint_for,
    save_checkpoint,
    weights_hash,
)
from jepa_ac.model.config import EncoderConfig, PredictorConfig, resolve_encoder_config, resolve_predictor_config
from jepa_ac.model.preprocess import check_frames, frames_to_clip, frames_to_tubelets

if TYPE_CHECKING:
    from jepa_ac.world_model.multi_view import MultiViewWorldModel

BACKENDS = ("torch", "mlx")
REPS_LAYER_NORM_EPS = 1e-5  # upstream `F.layer_norm(h, (D,))` default
ENSEMBLE_DIR = "ensemble"  # our checkpoint folder's extra predictors: ensemble/<name>/ (predictor-only folders)
SUBFOLDER_NAME = re.compile(r"[A-Za-z0-9_-]+")  # names of ensemble/<name>/ and views/<name>/ folders


def make_backend(
    name: str,
    encoder_config: EncoderConfig | None,
    predictor_config: PredictorConfig | None,
    device: Any = None,
    dtype: Any = None,
):
    """Instantiate a backend by name ("torch" or "mlx")."""
    if name == "torch":
        from jepa_ac.world_model.backends.torch_backend import TorchBackend

        return TorchBackend(encoder_config, predictor_config, device=device, dtype=dtype)
    if name == "mlx":
        try:
            from jepa_ac.world_model.backends.mlx_backend import MLXBackend
        except ImportError as err:
            raise ImportError(f"backend='mlx' needs MLX (pip install 'jepa_ac[mlx]'): {err}") from err
        return MLXBackend(encoder_config, predictor_config, device=device, dtype=dtype)
    raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")


class WorldModel:
    """Frozen V-JEPA 2 / 2.1 encoder + V-JEPA 2-AC predictor (either may be absent)."""

    def __init__(
        self,
        backend: Any,
        encoder_config: EncoderConfig | None,
        predictor_config: PredictorConfig | None,
        provenance: Mapping[str, Any] | None = None,
        normalize_reps: bool = True,
        members: Sequence["WorldModel"] = (),
        member_names: Sequence[str] | None = None,
    ) -> None:
        self.backend = backend
        self.ops = backend.ops
        self.encoder_config = encoder_config
        self.predictor_config = predictor_config
        self.provenance = dict(provenance or {})
        self.normalize_reps = normalize_reps
        self.members = tuple(members)  # ensemble: more predictors on this encoder's latents (predictor-only models)
        self.member_names = tuple(member_names) if member_names is not None else tuple(
            f"member{k}" for k in range(1, len(self.members) + 1))  # their folder names under ensemble/
        if len(self.member_names) != len(self.members):
            raise ValueError(f"{len(self.members)} ensemble members but {len(self.member_names)} names")

    # -- encoder ---------------------------------------------------------------------------

    @property
    def tokens_per_frame(self) -> int:
        return self._require("encoder").tokens_per_frame

    @property
    def image_size(self) -> int:
        return self._require("encoder").img_size

    def encode(
        self, frames: np.ndarray, batch_size: int = 16, hierarchical: bool = False, keep_aspect: bool = False,
        size: int | None = None,
    ) -> Any:
        """uint8 frames -> latents [T', N, D], layer-normed over D without affine (see below).

        V-JEPA 2 encoder: [T, H, W, 3] (or [H, W, 3]) -> [T, N, D], each frame on its own
        (`encode_frames`: the frame repeated into a 2-frame tubelet).
        V-JEPA 2.1 encoder: an image [H, W, 3] (or a single frame [1, H, W, 3]) takes the image path
        (T = 1, image patch embedding and image modality embedding) -> [1, N, D]; a clip
        [T, H, W, 3] with T > 1 is one video (`encode_clip`: video patch embedding and modality
        embedding) -> [T / tubelet_size, N, D]. To encode frames one by one use `encode_frames`.

        The latents are the encoder output (V-JEPA 2: its final `norm`; 2.1: its last `norms_block`,
        the upstream default output) layer-normed over D without affine parameters (eps 1e-5,
        upstream `normalize_reps`), for both versions: that is the space the AC predictor is trained
        in, rollouts layer-norm every predicted frame the same way, and the planner's L1 energy
        compares those with encoded goals. `WorldModel(normalize_reps=False)` or `backend.encode`
        give the raw upstream output.

        hierarchical (2.1 only): the four `norms_block` outputs concatenated -> [T', N, 4 * D], each
        D-wide level layer-normed on its own (so `[..., -D:]` equals the plain output).
        keep_aspect: keep the input's aspect (shorter side to `size`, each side cropped to a multiple
        of the patch size) instead of a centre-cropped square; N is then the tokens of that grid.
        size: the (shorter) side in pixels; None: the model's img_size.
        """
        config = self._require("encoder")
        frames = check_frames(frames)
        if config.is_v2_1 and len(frames) > 1:
            return self.encode_clip(frames, hierarchical=hierarchical, keep_aspect=keep_aspect, size=size)
        return self.encode_frames(frames, batch_size, hierarchical=hierarchical, keep_aspect=keep_aspect, size=size)

    def encode_frames(
        self, frames: np.ndarray, batch_size: int = 16, hierarchical: bool = False, keep_aspect: bool = False,
        size: int | None = None,
    ) -> Any:
        """Each frame on its own: uint8 [T, H, W, 3] (or [H, W, 3]) -> latents [T, N, D] (as `encode`).

        What planning, latent datasets and predictor training use (V-JEPA 2-AC encodes every frame
        separately). A frame becomes `config.image_frames` input frames: a 2-frame tubelet of the
        frame repeated (V-JEPA 2), or one frame on the image path (V-JEPA 2.1).
        """
        config = self._require("encoder")
        frames = check_frames(frames)
        outputs = []
        for start in range(0, len(frames), batch_size):
            clip = frames_to_tubelets(frames[start : start + batch_size], size or config.img_size, config.image_frames,
                                      keep_aspect, config.patch_size)  # [b, 3, image_frames, H, W]
            outputs.append(self.backend.encode(clip, hierarchical=hierarchical))  # [b, N, D]
        z = outputs[0] if len(outputs) == 1 else self.ops.concat(outputs, axis=0)
        return self._normalize(z)

    def encode_clip(
        self, frames: np.ndarray, hierarchical: bool = False, keep_aspect: bool = False, size: int | None = None
    ) -> Any:
        """A video: uint8 [T, H, W, 3] -> latents [T', N, D] (as `encode`), T' = T / tubelet_size,
        or T' = 1 for a single frame on the V-JEPA 2.1 image path."""
        config = self._require("encoder")
        frames = check_frames(frames)
        clip = frames_to_clip(frames, size or config.img_size, keep_aspect, config.patch_size)  # [1, 3, T, H, W]
        z = self.backend.encode(clip, hierarchical=hierarchical)  # [1, T'*N, D]
        steps = len(frames) if len(frames) == config.img_temporal_dim_size else len(frames) // config.tubelet_size
        return self._normalize(z.reshape(steps, z.shape[1] // steps, z.shape[2]))  # [T', N, D]

    def _normalize(self, z: Any) -> Any:
        """Layer-norm each D-wide level of z [..., N, L*D] on its own (L = 1, or the hierarchical levels)."""
        if not self.normalize_reps:
            return z
        D = self.encoder_config.embed_dim
        if z.shape[-1] == D:
            return self.ops.layer_norm(z, REPS_LAYER_NORM_EPS)
        levels = z.reshape(*z.shape[:-1], z.shape[-1] // D, D)  # [..., N, L, D]
        return self.ops.layer_norm(levels, REPS_LAYER_NORM_EPS).reshape(z.shape)

    def encode_image_file(self, path: str | Path) -> Any:
        """An image file -> latents [1, N, D]."""
        from jepa_ac.model.preprocess import load_image

        return self.encode(load_image(path))

    # -- predictor ---------------------------------------------------------------------------

    def predict(self, z: Any, actions: Any, states: Any, extrinsics: Any = None) -> Any:
        """Upstream predictor call: z [B, T*N, D], actions/states [B, T, 7] -> [B, T*N, D] (raw)."""
        self._require("predictor")
        for name, value in (("actions", actions), ("states", states)):
            if not np.all(np.isfinite(self.ops.to_numpy(value))):
                raise ValueError(f"{name} contain NaN or inf")
        return self.backend.predict(z, actions, states, extrinsics)

    def rollout(self, z_context: Any, state: Any, actions: Any) -> Any:
        """Imagine H steps from one context frame under S candidate action sequences.

        z_context [1, N, D] (layer-normed), state [1, 7], actions [S, H, 7] -> latents [S, H, N, D].
        Backends with a cached rollout (torch: context embedded once, key/value cache over frames)
        run it; the result equals `rollout_uncached`.
        """
        fast = getattr(self.backend, "rollout", None)
        if fast is not None and self._require("predictor").is_frame_causal:
            return fast(z_context, state, actions, REPS_LAYER_NORM_EPS if self.normalize_reps else None)
        return self.rollout_uncached(z_context, state, actions)

    def rollout_uncached(self, z_context: Any, state: Any, actions: Any) -> Any:
        """`rollout` as upstream's planning loop: each step re-runs the predictor on every frame so
        far, keeps the last frame's tokens (layer-normed), and advances the state by the DROID pose
        composition. Shapes as `rollout`.
        """
        ops = self.ops
        S, H, _ = actions.shape
        N, D = z_context.shape[-2:]
        frames = ops.broadcast_to(z_context.reshape(1, N, D), (S, N, D))  # [S, t*N, D]
        states = ops.broadcast_to(state.reshape(1, 1, 7), (S, 1, 7))  # [S, t, 7]
        predicted = []
        for h in range(H):
            out = self.backend.predict(frames, actions[:, : h + 1], states)  # [S, (h+1)*N, D]
            z_next = out[:, -N:]  # [S, N, D]
            if self.normalize_reps:
                z_next = ops.layer_norm(z_next, REPS_LAYER_NORM_EPS)
            predicted.append(z_next)
            if h + 1 < H:
                frames = ops.concat([frames, z_next], axis=1)  # [S, (h+2)*N, D]
                next_state = pose.apply_action(states[:, -1], actions[:, h])  # [S, 7]
                states = ops.concat([states, next_state[:, None]], axis=1)  # [S, h+2, 7]
        return ops.stack(predicted, axis=1)  # [S, H, N, D]

    def energy(self, z: Any, z_goal: Any, weights: Any = None) -> Any:
        """L1 distance (mean over N*D) between latents [..., N, D] and a goal broadcast to them -> [...].
        `weights` [N] (mean 1, from `goal_change_weights`) weigh the tokens; None is upstream's plain mean."""
        if weights is None:
            return self.ops.mean(self.ops.abs(z - z_goal), axis=(-2, -1))
        return self.ops.mean(self.ops.mean(self.ops.abs(z - z_goal), axis=-1) * weights, axis=-1)

    def rollout_energy(self, z_context: Any, state: Any, actions: Any, z_goal: Any, over: str = "last",
                       weights: Any = None, ensemble: bool = False) -> Any:
        """Energy of each candidate's imagined rollout -> [S]: of its last frame (`over="last"`, upstream),
        or the lowest over its frames (`over="min"`: the closest the sequence comes to the goal).
        `ensemble`: the mean of this predictor's and every member's energy (one rollout each)."""
        imagined = self.rollout(z_context, state, actions)  # [S, H, N, D]
        energy = self.horizon_energy(imagined, z_goal, over, weights)
        return self.ensemble_energy(energy, z_context, state, actions, z_goal, over, weights) if ensemble else energy

    def ensemble_energy(self, energy: Any, z_context: Any, state: Any, actions: Any, z_goal: Any, over: str = "last",
                        weights: Any = None) -> Any:
        """The mean of `energy` [S] (this predictor's, for these candidates) and every member's energy
        for the same candidates (one rollout each; arguments as `rollout_energy`)."""
        if not self.members:
            raise ValueError("ensemble planning asked for, but this world model has no ensemble members "
                             "(a checkpoint folder's ensemble/ predictors; see add_ensemble_member)")
        for member in self.members:
            energy = energy + member.rollout_energy(z_context, state, actions, z_goal, over, weights)
        return energy / (1 + len(self.members))

    def member(self, name: str) -> "WorldModel":
        """The ensemble member stored as `ensemble/<name>/` (a predictor on this encoder's latents)."""
        if name not in self.member_names:
            raise ValueError(f"this world model has no ensemble member {name!r}; its members: "
                             f"{list(self.member_names) or 'none'} (a checkpoint folder's ensemble/ predictors)")
        return self.members[self.member_names.index(name)]

    def horizon_energy(self, imagined: Any, z_goal: Any, over: str = "last", weights: Any = None) -> Any:
        """Energy of imagined rollouts [S, H, N, D] against a goal [1, N, D] -> [S] (`over`: "last" or
        "min"; `weights` as `energy`)."""
        if over == "last":
            return self.energy(imagined[:, -1], z_goal, weights)
        if over == "min":
            return self.ops.min(self.energy(imagined, z_goal[:, None], weights), axis=1)  # per step [S, H] -> [S]
        raise ValueError(f"over must be 'last' or 'min', got {over!r}")

    def goal_change_weights(self, z: Any, z_goal: Any, strength: float) -> Any:
        """Token weights [N] (mean 1) that favour where the goal differs from the frame `z` [1, N, D]:
        `(1 - strength) + strength * d / mean(d)`, d the per-token L1 distance. Where the goal moves an
        object or the arm, those tokens count more than the unchanged table and background."""
        d = self.ops.to_numpy(self.ops.mean(self.ops.abs(z - z_goal), axis=-1))[0].astype(np.float64)  # [N]
        relative = d / max(float(d.mean()), 1e-12)
        return self.ops.asarray(((1.0 - strength) + strength * relative).astype(np.float32))

    # -- saving ------------------------------------------------------------------------------

    def save(self, path: str | Path, dtype: str | None = None, provenance: Mapping[str, Any] | None = None) -> Path:
        """Write our checkpoint folder (config.json + model.safetensors)."""
        arrays = {part: self.backend.state_arrays(part) for part in self.parts}
        meta = {**self.provenance, **dict(provenance or {})}
        path = save_checkpoint(path, arrays, self.encoder_config, self.predictor_config, meta, dtype)
        if self.members:
            encoder_sha256 = stored_weights_hash(arrays["encoder"], dtype)
            for name, member in zip(self.member_names, self.members):  # each atomically, after their folder
                member.save(Path(path) / ENSEMBLE_DIR / name, dtype, {"encoder_sha256": encoder_sha256})
        return path

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(p for p, c in (("encoder", self.encoder_config), ("predictor", self.predictor_config)) if c)

    def encoder_hash(self) -> str:
        """sha256 of the encoder weights: identifies the latent space (e.g. for caches)."""
        return weights_hash(self.backend.state_arrays("encoder"))

    def _require(self, part: str) -> Any:
        config = self.encoder_config if part == "encoder" else self.predictor_config
        if config is None:
            raise ValueError(f"this world model has no {part} (loaded from {self.provenance.get('source', '?')})")
        return config


def load_world_model(
    path: str | Path,
    encoder: str | EncoderConfig | Mapping[str, Any] | None = None,
    predictor: str | PredictorConfig | Mapping[str, Any] | None = None,
    backend: str = "torch",
    device: Any = None,
    dtype: Any = None,
    encoder_key: str | None = None,
    load_predictor: bool = True,
    load_members: bool = True,
    load_views: bool = True,
) -> "WorldModel | MultiViewWorldModel":
    """Load a world model from an upstream `.pt`, a Hugging Face folder or our checkpoint folder.

    `encoder` / `predictor` give the architecture (preset name, config or upstream kwargs dict);
    they are required for upstream `.pt` files, which store none, and optional otherwise (if
    given they must match the file). Loading is strict; the model comes back frozen.

    Upstream `.pt` files: `encoder_key` names the entry holding the encoder; None finds it:
    `encoder` for V-JEPA 2, and for a V-JEPA 2.1 `encoder` config the first of `ema_encoder`
    (released ViT-B/L), `target_encoder` (ViT-g/G), `encoder`. A 2.1 file's `predictor` is its
    pretraining (mask) predictor, not an action-conditioned one: with `predictor=None` it is not
    read, and the result is an encoder-only world model.

    Our folder may hold an ensemble: more predictors trained on the same encoder, each a
    predictor-only folder under `ensemble/` (`add_ensemble_member`). They load as `wm.members`
    (with `load_members`), on the same backend and dtype, after checking that each was made for
    this folder's encoder (its `encoder_sha256`); planning averages their energies where
    `CEMConfig.ensemble` asks for it.

    Our folder may hold more camera views (`views.json`, `views/<name>/`; `add_view`): with
    `load_views` (and the predictor loaded) it loads as a `MultiViewWorldModel` whose first view is
    the folder's own model. Without, or with `load_predictor=False`, the folder's own model alone.
    """
    given = resolve_encoder_config(encoder) if encoder is not None else None
    ckpt = read_checkpoint_for(path, given, encoder_key, predictor is not None, load_predictor)
    enc_cfg = _pick_config(ckpt.encoder_config, encoder, resolve_encoder_config, "encoder", ckpt.source)
    if enc_cfg is None and "encoder" in ckpt.arrays:
        raise CheckpointError(
            f"{ckpt.source} does not state its architecture: pass encoder= (a preset such as 'vit_giant', "
            "an EncoderConfig, or upstream kwargs)"
        )
    pred_cfg = None
    if load_predictor and "predictor" in ckpt.arrays:
        pred_cfg = _pick_config(ckpt.predictor_config, predictor, resolve_predictor_config, "predictor", ckpt.source)
        if pred_cfg is not None and enc_cfg is not None:
            try:
                pred_cfg = pred_cfg.with_encoder(enc_cfg)
            except ValueError as err:
                raise CheckpointError(f"{ckpt.source}: {err}") from None
    elif predictor is not None:
        raise CheckpointError(f"{ckpt.source}: predictor={predictor!r} was given but the checkpoint has no predictor")
    for part, cfg in (("encoder", enc_cfg), ("predictor", pred_cfg)):
        if cfg is not None:
            check_allocation(part, cfg, ckpt.arrays.get(part), ckpt.source)
    model_backend = make_backend(backend, enc_cfg, pred_cfg, device=device, dtype=dtype)
    for part, cfg in (("encoder", enc_cfg), ("predictor", pred_cfg)):
        if cfg is None:
            continue
        dropped = UPSTREAM_DROPPED[part] if ckpt.provenance.get("source_format") == "upstream" else set()
        arrays = match_arrays(part, ckpt.arrays[part], model_backend.parameter_shapes(part), ckpt.source, dropped)
        model_backend.load_arrays(part, arrays)
    members: dict[str, WorldModel] = {}
    if load_members and pred_cfg is not None and enc_cfg is not None and (Path(path) / ENSEMBLE_DIR).is_dir():
        members = _load_members(Path(path), enc_cfg, stored_weights_hash(ckpt.arrays["encoder"]), backend, device, dtype)
    wm = WorldModel(model_backend, enc_cfg, pred_cfg, provenance=ckpt.provenance, members=tuple(members.values()),
                    member_names=tuple(members))
    if load_views and pred_cfg is not None and Path(path).is_dir():
        from jepa_ac.world_model.multi_view import VIEWS_DIR, MultiViewWorldModel, read_views_file

        names = read_views_file(Path(path))
        if names is not None:
            others = [load_world_model(Path(path) / VIEWS_DIR / name, backend=backend, device=device, dtype=dtype,
                                       load_members=load_members, load_views=False) for name in names[1:]]
            try:
                return MultiViewWorldModel([wm, *others], names)
            except ValueError as err:
                raise CheckpointError(f"{path}: {err}") from None
    return wm


def stored_weights_hash(arrays: Mapping[str, Any], dtype: str | None = None) -> str:
    """`weights_hash` of arrays as a checkpoint stores them (floating point cast to `dtype` if given, as
    `save_checkpoint` writes them): identifies the encoder an ensemble member was made for."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if dtype is not None:
        arrays = {k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in arrays.items()}
    return weights_hash(arrays)


def _load_members(folder: Path, enc_cfg: EncoderConfig, encoder_sha256: str, backend: str, device: Any,
                  dtype: Any) -> dict[str, WorldModel]:
    """The predictor-only folders under `folder/ensemble/` by name, in name order, each checked against the encoder."""
    members = {}
    for sub in sorted(p for p in (folder / ENSEMBLE_DIR).iterdir() if not p.name.startswith(".")):
        member = load_world_model(sub, backend=backend, device=device, dtype=dtype, load_members=False)
        if member.encoder_config is not None or member.predictor_config is None:
            raise CheckpointError(f"{sub}: an ensemble member must be a predictor-only checkpoint folder "
                                  f"(add_ensemble_member writes one)")
        made_for = member.provenance.get("encoder_sha256")
        if made_for != encoder_sha256:
            raise CheckpointError(f"{sub}: this ensemble member was made for another encoder (encoder_sha256 "
                                  f"{made_for!r}, this folder's encoder is {encoder_sha256!r})")
        try:
            member.predictor_config = member.predictor_config.with_encoder(enc_cfg)
        except ValueError as err:
            raise CheckpointError(f"{sub}: {err}") from None
        members[sub.name] = member
    return members


def add_ensemble_member(checkpoint: str | Path, source: str | Path, name: str) -> Path:
    """Add `source`'s predictor to the ensemble of our checkpoint folder `checkpoint`, as the
    predictor-only folder `checkpoint/ensemble/<name>/` (written atomically, in the dtype the
    checkpoint stores its encoder in). `source` must be our folder with the same encoder weights
    (e.g. another `train_predictor` run on the same encoder, or another seed): the energies of
    predictors trained on different latent spaces cannot be averaged."""
    if not SUBFOLDER_NAME.fullmatch(name):
        raise ValueError(f"ensemble member name must be letters, digits, '_' or '-', got {name!r}")
    target = read_checkpoint_for(checkpoint, None, None, False, True)
    member = read_checkpoint_for(source, None, None, False, True)
    for ckpt, what in ((target, "checkpoint"), (member, "source")):
        if "encoder" not in ckpt.arrays or "predictor" not in ckpt.arrays or ckpt.predictor_config is None:
            raise CheckpointError(f"{ckpt.source}: the {what} must be our folder with an encoder and a predictor")
    dtype = next(iter(target.arrays["encoder"].values())).dtype.name
    encoder = target.arrays["encoder"]
    other = {k: np.asarray(v).astype(dtype) for k, v in member.arrays["encoder"].items()}
    if set(other) != set(encoder) or any(not np.array_equal(other[k], np.asarray(encoder[k])) for k in encoder):
        raise CheckpointError(f"{source}'s encoder differs from {checkpoint}'s: an ensemble member must be trained "
                              "on the same encoder's latents")
    try:
        member.predictor_config.with_encoder(target.encoder_config)
    except ValueError as err:
        raise CheckpointError(f"{source}: {err}") from None
    provenance = {**member.provenance, "encoder_sha256": stored_weights_hash(encoder), "ensemble_source": str(source)}
    return save_checkpoint(Path(checkpoint) / ENSEMBLE_DIR / name, {"predictor": member.arrays["predictor"]}, None,
                           member.predictor_config, provenance, dtype)


def _pick_config(stated, given, resolve, part: str, source: str):
    if given is None:
        if stated is None and part == "predictor":
            raise CheckpointError(
                f"{source} has a predictor but does not state its architecture: pass predictor= "
                "(a preset such as 'vit_ac_giant', a PredictorConfig, or upstream kwargs), or load_predictor=False"
            )
        return stated
    config = resolve(given)
    if stated is not None:
        mismatched = [f.name for f in dataclasses.fields(config)
                      if f.name != "embed_dim" and f.name in _ARCH_FIELDS
                      and getattr(config, f.name) != getattr(stated, f.name)]
        if mismatched:
            k = mismatched[0]
            raise CheckpointError(
                f"{source}: {part}={given!r} disagrees with the checkpoint's own config on {k} "
                f"({getattr(config, k)!r} vs {getattr(stated, k)!r})"
            )
    return config


# Fields that change the weights' shapes or the computation (training-only fields may differ).
_ARCH_FIELDS = {
    "img_size", "patch_size", "tubelet_size", "in_chans", "embed_dim", "depth", "num_heads", "mlp_ratio",
    "qkv_bias", "use_rope", "use_silu", "wide_silu", "norm_eps", "predictor_embed_dim", "is_frame_causal",
    "action_embed_dim", "use_extrinsics", "handle_nonsquare_inputs", "img_temporal_dim_size", "interpolate_rope",
    "modality_embedding", "n_registers", "has_cls_first", "n_output_distillation",
}
