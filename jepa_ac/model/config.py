"""Architecture configs for the V-JEPA 2 / 2.1 encoders and the V-JEPA 2-AC predictor.

Field names are the upstream constructor argument names (facebookresearch/vjepa2
`VisionTransformer`, `app/vjepa_2_1/...VisionTransformer` and `VisionTransformerPredictorAC`), so an
upstream config dict can be passed as keyword arguments. Unknown names raise `TypeError` (no
`**kwargs` swallowing typos).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

# Sanity caps far above every released model (ViT-G: width 1664, depth 48, 384 px): a config.json
# beyond them is a corrupt or hostile file, refused before any weight is allocated.
LIMITS = {"img_size": 4096, "patch_size": 256, "num_frames": 4096, "tubelet_size": 64, "in_chans": 16,
          "embed_dim": 16384, "predictor_embed_dim": 16384, "depth": 256, "num_heads": 512, "mlp_ratio": 64.0,
          "action_embed_dim": 64, "num_mask_tokens": 64}


def check_field_types(config: Any) -> None:
    """Each field holds its annotated type: a bool field a real bool (the JSON string "no" is
    not False), an int field an int (not a bool or 2.5), a float field a finite number; and every
    size is below `LIMITS`. Raises ValueError naming the field."""
    cls = type(config).__name__
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy scalar
            value = value.item()
            object.__setattr__(config, f.name, value)
        kind = str(f.type).replace(" ", "")
        if kind.endswith("|None"):
            if value is None:
                continue
            kind = kind.removesuffix("|None")
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        else:
            continue
        if not ok:
            raise ValueError(f"{cls}.{f.name} must be {dict(float='a finite number', int='an int', bool='a bool')[kind]}, "
                             f"got {value!r:.80} ({type(value).__name__})")
        if f.name in LIMITS and value > LIMITS[f.name]:
            raise ValueError(f"{cls}.{f.name}={value!r} is above the supported maximum {LIMITS[f.name]}")


def _check_positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"{type(config).__name__}.{name} must be > 0, got {value!r}")


def _check_divides(config: Any, size_name: str, part_name: str) -> None:
    size, part = getattr(config, size_name), getattr(config, part_name)
    if size % part:
        raise ValueError(
            f"{type(config).__name__}.{size_name}={size} must be a multiple of {part_name}={part}"
        )


def _check_head_dim(config: Any, width_name: str) -> None:
    width = getattr(config, width_name)
    _check_divides(config, width_name, "num_heads")
    head_dim = width // config.num_heads
    if head_dim % 2:
        raise ValueError(
            f"{type(config).__name__}: head dim {width_name}/num_heads = {head_dim} must be even for RoPE"
        )


# Arguments that only the V-JEPA 2.1 encoder (`app/vjepa_2_1/models/vision_transformer.py`) takes.
# Giving any of them (not None) makes a config a 2.1 config; the ones not given then take the
# upstream 2.1 defaults below. `img_temporal_dim_size=None` is also a valid 2.1 value (no image path).
V2_1_ARGS = ("img_temporal_dim_size", "interpolate_rope", "modality_embedding", "n_registers", "has_cls_first",
             "n_output_distillation")
V2_1_DEFAULTS = {"interpolate_rope": False, "modality_embedding": True, "n_registers": 0, "has_cls_first": False,
                 "n_output_distillation": 4}
# Upstream 2.1 picks the four hierarchical layers (`norms_block` taps) by depth, for these depths only.
V2_1_HIERARCHICAL_LAYERS = {12: (2, 5, 8, 11), 24: (5, 11, 17, 23), 40: (9, 19, 29, 39), 48: (11, 23, 37, 47)}
# `interpolate_rope` rescales positions to the grid the model was pretrained on: 256 px at patch 16
# (16 tokens a side), 252 px at patch 14 (18); upstream knows no other patch size.
V2_1_PRETRAINED_GRID = {16: 16, 14: 18}


@dataclass(frozen=True)
class EncoderConfig:
    """V-JEPA 2 / 2.1 video ViT: 3D tubelet patches, 3D RoPE attention, pre-norm blocks.

    V-JEPA 2 (the default): one final `norm`. V-JEPA 2.1 (`is_v2_1`: any of `V2_1_ARGS` given, as
    the 2.1 hub and training configs do): pairwise RoPE frequencies, positions optionally
    interpolated to the pretraining grid (`interpolate_rope`), an image patch embedding with
    tubelet 1 for inputs of `img_temporal_dim_size` frames, image/video modality embeddings, and
    four `norms_block` LayerNorms (the last one is the output; all four give hierarchical features).
    """

    img_size: int = 256
    patch_size: int = 16
    num_frames: int = 64
    tubelet_size: int = 2
    in_chans: int = 3
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    use_rope: bool = True
    uniform_power: bool = False  # only used by sin-cos position embeddings (not V-JEPA 2)
    use_silu: bool = False
    wide_silu: bool = True
    use_sdpa: bool = True
    norm_eps: float = 1e-6
    init_std: float = 0.02
    drop_path_rate: float = 0.0
    use_activation_checkpointing: bool = False
    handle_nonsquare_inputs: bool = True  # False: RoPE positions on the img_size grid (inputs must be that size)
    is_causal: bool = False  # V-JEPA 2.1 argument; True is not supported
    init_type: str = "default"  # V-JEPA 2.1 argument (weight init only); only "default" is supported
    # V-JEPA 2.1 only (None: not given), see V2_1_ARGS
    img_temporal_dim_size: int | None = None
    interpolate_rope: bool | None = None
    modality_embedding: bool | None = None
    n_registers: int | None = None
    has_cls_first: bool | None = None
    n_output_distillation: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.img_size, (tuple, list)):
            if len(set(self.img_size)) != 1:
                raise ValueError(f"EncoderConfig.img_size must be square, got {self.img_size!r}")
            object.__setattr__(self, "img_size", self.img_size[0])
        check_field_types(self)
        _check_positive(self, "img_size", "patch_size", "num_frames", "tubelet_size", "embed_dim",
                        "depth", "num_heads", "mlp_ratio", "norm_eps")
        _check_divides(self, "img_size", "patch_size")
        _check_head_dim(self, "embed_dim")
        if not self.use_rope:
            raise ValueError(
                "EncoderConfig.use_rope=False (sin-cos position embeddings, V-JEPA 1) is not supported; "
                "every V-JEPA 2 checkpoint uses RoPE"
            )
        if self.num_frames > 1 and self.num_frames % self.tubelet_size:
            raise ValueError(
                f"EncoderConfig.num_frames={self.num_frames} must be a multiple of tubelet_size={self.tubelet_size}"
            )
        if self.is_causal:
            raise ValueError("EncoderConfig.is_causal=True is not supported (no released V-JEPA 2 / 2.1 encoder "
                             "uses causal attention)")
        if self.init_type != "default":
            raise ValueError(f"EncoderConfig.init_type={self.init_type!r} is not supported (only 'default')")
        if self.is_v2_1:
            for name, value in V2_1_DEFAULTS.items():
                if getattr(self, name) is None:
                    object.__setattr__(self, name, value)
            self._check_v2_1()

    def _check_v2_1(self) -> None:
        """The 2.1 arguments this package implements (upstream semantics), with the reason for the rest."""
        if self.n_registers != 0:
            raise ValueError(
                f"EncoderConfig.n_registers={self.n_registers} is not supported: the upstream 2.1 encoder creates "
                "no register tokens (its RoPE would treat the last patch tokens as registers and fail on the "
                "position count), and no released model uses them; use n_registers=0"
            )
        if self.has_cls_first:
            raise ValueError(
                "EncoderConfig.has_cls_first=True is not supported: the upstream 2.1 encoder creates no class "
                "token (its RoPE would skip the first patch token and fail on the position count), and no "
                "released model uses one; use has_cls_first=False"
            )
        if self.depth not in V2_1_HIERARCHICAL_LAYERS:
            raise ValueError(
                f"EncoderConfig.depth={self.depth} is not supported for V-JEPA 2.1: upstream defines the "
                f"hierarchical (norms_block) layers only for depth {sorted(V2_1_HIERARCHICAL_LAYERS)}"
            )
        if self.n_output_distillation not in (1, 4):
            raise ValueError(
                f"EncoderConfig.n_output_distillation={self.n_output_distillation} is not supported: upstream "
                "defines 4 (all four hierarchical layers) or 1 (the last)"
            )
        if self.img_temporal_dim_size not in (None, 1):
            raise ValueError(
                f"EncoderConfig.img_temporal_dim_size={self.img_temporal_dim_size!r} is not supported: use 1 "
                "(images [B, C, 1, H, W] take the image patch embedding, as in every released 2.1 model) or None"
            )
        if self.num_frames == 1:
            raise ValueError("EncoderConfig.num_frames=1 (a 2D image ViT) is not supported for V-JEPA 2.1; "
                             "the 2.1 encoders are video models (num_frames > 1, images via img_temporal_dim_size=1)")
        if self.interpolate_rope and self.patch_size not in V2_1_PRETRAINED_GRID:
            raise ValueError(
                f"EncoderConfig.interpolate_rope=True needs patch_size 14 or 16 (upstream's pretraining grids), "
                f"got patch_size={self.patch_size}"
            )

    @property
    def is_v2_1(self) -> bool:
        """A V-JEPA 2.1 encoder: any of the 2.1-only arguments (`V2_1_ARGS`) is given."""
        return any(getattr(self, name) is not None for name in V2_1_ARGS)

    @property
    def is_video(self) -> bool:
        """Upstream uses a 3D (tubelet) patch embedding iff num_frames > 1."""
        return self.num_frames > 1

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        """Tokens per tubelet (a 2-frame clip gives this many tokens) or per image (2.1 image path)."""
        return self.grid_size**2

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def image_frames(self) -> int:
        """Frames one image becomes at the encoder input: 1 on the 2.1 image path (`img_temporal_dim_size`),
        else a tubelet of the frame repeated (V-JEPA 2-AC's convention)."""
        return self.img_temporal_dim_size if self.img_temporal_dim_size is not None else self.tubelet_size

    @property
    def hierarchical_layers(self) -> tuple[int, ...]:
        """Blocks (0-based) after which `norms_block[i]` taps the features (2.1 only)."""
        if not self.is_v2_1:
            raise ValueError("hierarchical features need a V-JEPA 2.1 encoder (this config is V-JEPA 2)")
        return V2_1_HIERARCHICAL_LAYERS[self.depth]

    @property
    def hierarchical_outputs(self) -> tuple[int, ...]:
        """Indices into `hierarchical_layers` concatenated by the hierarchical output (upstream
        `out_layers_distillation`): all four, or the last one for n_output_distillation=1."""
        layers = self.hierarchical_layers
        return tuple(range(len(layers))) if self.n_output_distillation == 4 else (len(layers) - 1,)

    def to_dict(self) -> dict[str, Any]:
        """All fields; a V-JEPA 2 config leaves out the fields added for 2.1 while they hold their
        defaults, so its config.json is what it was before 2.1 support."""
        values = dataclasses.asdict(self)
        if not self.is_v2_1:
            for f in dataclasses.fields(self):
                if f.name in _ADDED_FOR_V2_1 and values[f.name] == f.default:
                    del values[f.name]
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "EncoderConfig":
        return cls(**dict(values))


_ADDED_FOR_V2_1 = ("handle_nonsquare_inputs", "is_causal", "init_type", *V2_1_ARGS)


@dataclass(frozen=True)
class PredictorConfig:
    """V-JEPA 2-AC predictor: block-causal transformer over [action, state, (extrinsics), patches]."""

    img_size: int = 256
    patch_size: int = 16
    num_frames: int = 64
    tubelet_size: int = 2
    embed_dim: int | None = None  # encoder width; None = take it from the encoder
    predictor_embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    use_silu: bool = False
    wide_silu: bool = True
    is_frame_causal: bool = True
    use_rope: bool = True
    action_embed_dim: int = 7
    use_extrinsics: bool = False
    uniform_power: bool = True  # unused upstream; kept so upstream configs load
    norm_eps: float = 1e-6
    init_std: float = 0.02
    drop_path_rate: float = 0.0
    use_activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.img_size, (tuple, list)):
            if len(set(self.img_size)) != 1:
                raise ValueError(f"PredictorConfig.img_size must be square, got {self.img_size!r}")
            object.__setattr__(self, "img_size", self.img_size[0])
        check_field_types(self)
        _check_positive(self, "img_size", "patch_size", "num_frames", "tubelet_size",
                        "predictor_embed_dim", "depth", "num_heads", "mlp_ratio", "action_embed_dim",
                        "norm_eps")
        if self.embed_dim is not None:
            _check_positive(self, "embed_dim")
        _check_divides(self, "img_size", "patch_size")
        _check_head_dim(self, "predictor_embed_dim")
        if not self.use_rope:
            raise ValueError("PredictorConfig.use_rope=False is not supported; V-JEPA 2-AC uses RoPE")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def tokens_per_frame(self) -> int:
        return self.grid_size**2

    @property
    def cond_tokens(self) -> int:
        """Conditioning tokens per frame: action, state and optionally extrinsics."""
        return 3 if self.use_extrinsics else 2

    @property
    def head_dim(self) -> int:
        return self.predictor_embed_dim // self.num_heads

    def with_encoder(self, encoder: EncoderConfig) -> "PredictorConfig":
        """Fill `embed_dim` from the encoder and check the two agree on the token grid."""
        if self.embed_dim is not None and self.embed_dim != encoder.embed_dim:
            raise ValueError(
                f"PredictorConfig.embed_dim={self.embed_dim} does not match the encoder's "
                f"embed_dim={encoder.embed_dim}"
            )
        if self.grid_size != encoder.grid_size:
            raise ValueError(
                f"predictor token grid {self.grid_size}x{self.grid_size} (img_size {self.img_size}) does not "
                f"match the encoder's {encoder.grid_size}x{encoder.grid_size} (img_size {encoder.img_size})"
            )
        return dataclasses.replace(self, embed_dim=encoder.embed_dim)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PredictorConfig":
        return cls(**dict(values))


@dataclass(frozen=True)
class MaskPredictorConfig:
    """V-JEPA pretraining predictor: a narrow ViT that fills masked tokens from the context.

    Field names follow upstream `VisionTransformerPredictor`; `num_mask_tokens` is one learned
    mask token per mask generator (short-range, long-range, ...).
    """

    embed_dim: int = 192  # encoder width (input and output)
    predictor_embed_dim: int = 96
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    num_mask_tokens: int = 2
    norm_eps: float = 1e-6
    init_std: float = 0.02

    def __post_init__(self) -> None:
        check_field_types(self)
        _check_positive(self, "embed_dim", "predictor_embed_dim", "depth", "num_heads", "mlp_ratio",
                        "num_mask_tokens", "norm_eps")
        _check_head_dim(self, "predictor_embed_dim")

    @property
    def head_dim(self) -> int:
        return self.predictor_embed_dim // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _vit_parameters(width: int, depth: int, mlp_ratio: float) -> int:
    """Parameters of `depth` pre-norm ViT blocks (qkv and MLP with biases, two LayerNorms each)."""
    hidden = int(width * mlp_ratio)
    per_block = 4 * width + (3 * width * width + 3 * width) + (width * width + width) + 2 * width * hidden + hidden + width
    return depth * per_block


def estimated_parameters(config: EncoderConfig | PredictorConfig | MaskPredictorConfig) -> int:
    """About how many parameters `config` allocates (within a few percent), computed from the
    config alone so that a hostile config.json is refused before anything is allocated."""
    if isinstance(config, EncoderConfig):
        patch = config.in_chans * config.tubelet_size * config.patch_size**2 * config.embed_dim
        return patch + _vit_parameters(config.embed_dim, config.depth, config.mlp_ratio) + 4 * config.embed_dim
    width = config.predictor_embed_dim
    outer = config.embed_dim or width
    io = 2 * outer * width + 4 * config.action_embed_dim * width if isinstance(config, PredictorConfig) else 2 * outer * width
    return io + _vit_parameters(width, config.depth, config.mlp_ratio)


# Released V-JEPA 2 and 2.1 models (facebookresearch/vjepa2 `src/hub/backbones.py`). The hub's "vit_giant"
# is `vit_giant_xformers`: 22 heads of 64 dims; the 2.1 gigantic is `vit_gigantic_xformers`: 26 heads of 64.
V2_1_HUB_ARGS: dict[str, Any] = {"img_temporal_dim_size": 1, "interpolate_rope": True, "modality_embedding": True,
                                 "n_registers": 0, "has_cls_first": False, "n_output_distillation": 4}
ENCODER_PRESETS: dict[str, EncoderConfig] = {
    "vit_large": EncoderConfig(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
    "vit_huge": EncoderConfig(embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4.0),
    "vit_giant": EncoderConfig(embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
    "vit_giant_384": EncoderConfig(img_size=384, embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11),
    # V-JEPA 2.1 (`src/hub/backbones.py` `_make_vjepa2_1_model`): 384 px, 64 frames, head dim 64, the hub's
    # flags (img_temporal_dim_size=1, interpolate_rope=True) and the 2.1 defaults (modality embeddings,
    # no registers or class token, four hierarchical outputs).
    "vjepa2_1_vit_base_384": EncoderConfig(img_size=384, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0,
                                           **V2_1_HUB_ARGS),
    "vjepa2_1_vit_large_384": EncoderConfig(img_size=384, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0,
                                            **V2_1_HUB_ARGS),
    "vjepa2_1_vit_giant_384": EncoderConfig(img_size=384, embed_dim=1408, depth=40, num_heads=22, mlp_ratio=48 / 11,
                                            **V2_1_HUB_ARGS),
    "vjepa2_1_vit_gigantic_384": EncoderConfig(img_size=384, embed_dim=1664, depth=48, num_heads=26,
                                               mlp_ratio=64 / 13, **V2_1_HUB_ARGS),
}

PREDICTOR_PRESETS: dict[str, PredictorConfig] = {
    "vit_ac_giant": PredictorConfig(embed_dim=1408, predictor_embed_dim=1024, depth=24, num_heads=16),
}


def resolve_encoder_config(spec: str | EncoderConfig | Mapping[str, Any]) -> EncoderConfig:
    """A preset name, an `EncoderConfig`, or a dict of upstream constructor arguments."""
    if isinstance(spec, EncoderConfig):
        return spec
    if isinstance(spec, str):
        if spec not in ENCODER_PRESETS:
            raise ValueError(f"unknown encoder preset {spec!r}; known: {sorted(ENCODER_PRESETS)}")
        return ENCODER_PRESETS[spec]
    return EncoderConfig.from_dict(spec)


def resolve_predictor_config(spec: str | PredictorConfig | Mapping[str, Any]) -> PredictorConfig:
    """A preset name, a `PredictorConfig`, or a dict of upstream constructor arguments."""
    if isinstance(spec, PredictorConfig):
        return spec
    if isinstance(spec, str):
        if spec not in PREDICTOR_PRESETS:
            raise ValueError(f"unknown predictor preset {spec!r}; known: {sorted(PREDICTOR_PRESETS)}")
        return PREDICTOR_PRESETS[spec]
    return PredictorConfig.from_dict(spec)
