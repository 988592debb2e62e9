"""Reading and writing checkpoints: upstream `.pt`, Hugging Face folders, and our own folders.

Every format is turned into `{"encoder": {name: array}, "predictor": {name: array}}` in the
torch parameter layout, then checked strictly against what the model expects: a missing,
unexpected or mis-shaped key raises `CheckpointError` naming it. Keys dropped on purpose are
listed here (e.g. upstream's unused `pos_embed`).

Our format is a folder with `config.json` (architecture + provenance) and `model.safetensors`
(keys `encoder.<name>` / `predictor.<name>`), written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from jepa_ac.model.config import EncoderConfig, PredictorConfig

FORMAT_NAME = "jepa_ac"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PARTS = ("encoder", "predictor")

# Where an upstream `.pt` keeps the encoder, in order of preference, when no key is named:
# V-JEPA 2 / 2-AC files: `encoder` (they also hold `target_encoder`). V-JEPA 2.1 files
# (`src/hub/backbones.py`): `ema_encoder` (the distilled ViT-B/L), `target_encoder` (ViT-g/G).
UPSTREAM_ENCODER_KEYS = ("encoder",)
UPSTREAM_2_1_ENCODER_KEYS = ("ema_encoder", "target_encoder", "encoder")

# Upstream encoders store a sin-cos `pos_embed` that RoPE models never use (the hub loads them
# with strict=False for that reason).
UPSTREAM_DROPPED = {"encoder": {"pos_embed"}, "predictor": set()}
# Hugging Face `VJEPA2Model` also holds the pretraining (mask) predictor and, for the video
# classification heads, a pooler and classifier: not part of the encoder.
HF_DROPPED_PREFIXES = ("predictor.", "pooler.", "classifier.")


class CheckpointError(ValueError):
    """A checkpoint does not match the architecture it is being loaded into."""


@dataclass
class LoadedCheckpoint:
    """Weights (torch layout) and whatever architecture the file itself states."""

    arrays: dict[str, dict[str, Any]]
    encoder_config: EncoderConfig | None = None
    predictor_config: PredictorConfig | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def detect_format(path: str | Path) -> str:
    """'upstream' (a torch `.pt`/`.pth` file), 'hf' (config.json with model_type vjepa2) or 'jepa_ac'."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_file():
        if path.suffix in (".pt", ".pth", ".tar"):
            return "upstream"
        raise CheckpointError(f"{path}: expected an upstream .pt file or a checkpoint folder")
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{path}: a checkpoint folder needs {CONFIG_FILE} and {WEIGHTS_FILE}")
    config = _read_json(config_path)
    if config.get("format") == FORMAT_NAME:
        return "jepa_ac"
    if config.get("model_type") == "vjepa2":
        return "hf"
    raise CheckpointError(
        f"{config_path}: neither a jepa_ac checkpoint (format={FORMAT_NAME!r}) nor a Hugging Face "
        f"V-JEPA 2 folder (model_type='vjepa2')"
    )


def read_checkpoint(
    path: str | Path, encoder_key: str | tuple[str, ...] = UPSTREAM_ENCODER_KEYS, upstream_predictor: bool = True
) -> LoadedCheckpoint:
    """Read any supported checkpoint into torch-layout arrays (and its stated configs, if any).

    `encoder_key` / `upstream_predictor` apply to upstream `.pt` files only (see `read_upstream`).
    """
    fmt = detect_format(path)
    if fmt == "upstream":
        return read_upstream(path, encoder_key, upstream_predictor)
    if fmt == "hf":
        return read_hf(path)
    return read_jepa_ac(path)


def read_checkpoint_for(
    path: str | Path,
    encoder_config: EncoderConfig | None,
    encoder_key: str | None = None,
    predictor_given: bool = False,
    load_predictor: bool = True,
) -> LoadedCheckpoint:
    """`read_checkpoint` for a known (or stated-in-file: None) encoder architecture.

    Upstream `.pt` files: the encoder is under `encoder_key` if named, else found by version:
    `encoder` (V-JEPA 2), or the first of `ema_encoder`, `target_encoder`, `encoder` (V-JEPA 2.1).
    A 2.1 file's `predictor` is its pretraining (mask) predictor, never an action-conditioned
    one: it is read only when a predictor architecture is given (`predictor_given`).
    """
    v2_1 = encoder_config is not None and encoder_config.is_v2_1
    keys = (encoder_key,) if encoder_key else (UPSTREAM_2_1_ENCODER_KEYS if v2_1 else UPSTREAM_ENCODER_KEYS)
    return read_checkpoint(path, keys, load_predictor and (predictor_given or not v2_1))


# -- upstream torch hub files ---------------------------------------------------------------


def read_upstream(
    path: str | Path, encoder_key: str | tuple[str, ...] = UPSTREAM_ENCODER_KEYS, with_predictor: bool = True
) -> LoadedCheckpoint:
    """`vitl.pt`, `vjepa2-ac-vitg.pt`, `vjepa2_1_vitb_dist_vitG_384.pt`, ...: the encoder under the first
    of `encoder_key` (a key or keys in order of preference) the file has, keys prefixed
    `module.backbone.`; `predictor` keys prefixed `module.` (read if `with_predictor`).
    Architecture is not stored: pass it as a preset or config."""
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            f"reading the upstream checkpoint {path} needs torch (pip install 'jepa_ac[torch]'); "
            "or convert it once to a jepa_ac folder on a machine with torch"
        ) from err
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt/foreign files
        lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
        unsupported = [line for line in lines if "Unsupported global" in line]
        if unsupported:  # a pickle that names code to call: refused by weights_only, never run
            raise CheckpointError(f"{path}: refused: the file holds Python objects other than tensors and plain "
                                  f"containers, which could run code when loaded ({unsupported[0][:200]})") from None
        reason = next((line for line in lines if "invalid load key" in line or "Error" in line), lines[-1])
        raise CheckpointError(f"{path}: not a readable torch checkpoint: {reason[:300]}") from None
    keys = (encoder_key,) if isinstance(encoder_key, str) else tuple(encoder_key)
    found = next((k for k in keys if isinstance(blob, Mapping) and k in blob), None)
    if found is None:
        present = list(blob) if isinstance(blob, Mapping) else type(blob).__name__
        wanted = " or ".join(repr(k) for k in keys)
        raise CheckpointError(f"{path}: expected a dict with {wanted} (and 'predictor'), found {present}")
    for part in (found, "predictor"):
        state = blob.get(part)
        if part in blob and not (isinstance(state, Mapping) and all(isinstance(v, torch.Tensor) for v in state.values())):
            raise CheckpointError(f"{path}: {part!r} must map parameter names to tensors, got {type(state).__name__}")
    arrays = {"encoder": _strip_prefixes(blob[found], ("module.", "backbone."))}
    provenance = {"source_format": "upstream", "source": str(path), "encoder_key": found}
    if "predictor" in blob:
        if with_predictor:
            arrays["predictor"] = _strip_prefixes(blob["predictor"], ("module.",))
        else:
            provenance["predictor_not_read"] = True
    return LoadedCheckpoint(arrays, provenance=provenance, source=str(path))


def _strip_prefixes(state: Mapping[str, Any], prefixes: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        name = key
        for prefix in prefixes:
            name = name.removeprefix(prefix)
        out[name] = value
    return out


# -- Hugging Face facebook/vjepa2-* folders -------------------------------------------------


def hf_encoder_config(config: Mapping[str, Any]) -> EncoderConfig:
    """A Hugging Face `VJEPA2Config` dict -> `EncoderConfig`."""
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(f"Hugging Face V-JEPA 2 config: hidden_act={act!r} is not supported (expected 'gelu')")
    return EncoderConfig(
        img_size=config.get("crop_size", 256),
        patch_size=config.get("patch_size", 16),
        num_frames=config.get("frames_per_clip", 64),
        tubelet_size=config.get("tubelet_size", 2),
        in_chans=config.get("in_chans", 3),
        embed_dim=config.get("hidden_size", 1024),
        depth=config.get("num_hidden_layers", 24),
        num_heads=config.get("num_attention_heads", 16),
        mlp_ratio=config.get("mlp_ratio", 4.0),
        qkv_bias=config.get("qkv_bias", True),
        norm_eps=config.get("layer_norm_eps", 1e-6),
    )


def hf_to_upstream_names(hf: Mapping[str, Any]) -> dict[str, Any]:
    """Rename `VJEPA2Model` encoder weights to upstream names, joining q/k/v into `attn.qkv`."""
    out: dict[str, Any] = {}
    qkv: dict[tuple[str, str], dict[str, Any]] = {}
    for key, value in hf.items():
        key = key.removeprefix("vjepa2.")
        if key.startswith(HF_DROPPED_PREFIXES):
            continue
        if not key.startswith("encoder."):
            out[key] = value  # unknown: left for the strict check to report
            continue
        name = key.removeprefix("encoder.")
        name = name.replace("embeddings.patch_embeddings.proj.", "patch_embed.proj.")
        name = name.replace("layernorm.", "norm.") if name.startswith("layernorm.") else name
        if name.startswith("layer."):
            name = "blocks." + name.removeprefix("layer.")
            name = name.replace(".attention.proj.", ".attn.proj.")
            for part in ("query", "key", "value"):
                tag = f".attention.{part}."
                if tag in name:
                    block, suffix = name.split(tag)
                    qkv.setdefault((block, suffix), {})[part] = value
                    break
            else:
                out[name] = value
            continue
        out[name] = value
    for (block, suffix), parts in qkv.items():
        missing = [p for p in ("query", "key", "value") if p not in parts]
        if missing:
            raise CheckpointError(f"Hugging Face checkpoint: {block} has no attention.{missing[0]}.{suffix}")
        out[f"{block}.attn.qkv.{suffix}"] = np.concatenate(
            [np.asarray(parts[p]) for p in ("query", "key", "value")], axis=0
        )
    return out


def read_hf(path: str | Path) -> LoadedCheckpoint:
    """A `facebook/vjepa2-*` folder (config.json + model.safetensors): the encoder only."""
    path = Path(path)
    config = _read_json(path / CONFIG_FILE)
    try:
        encoder_config = hf_encoder_config(config)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path / CONFIG_FILE}: {err}") from None
    arrays = hf_to_upstream_names(_read_safetensors(path / WEIGHTS_FILE))
    provenance = {"source_format": "hf", "source": str(path), "hf_architectures": config.get("architectures")}
    return LoadedCheckpoint({"encoder": arrays}, encoder_config=encoder_config,
                            provenance=provenance, source=str(path))


# -- our own folders --------------------------------------------------------------------------


def read_jepa_ac(path: str | Path) -> LoadedCheckpoint:
    path = Path(path)
    config = _read_json(path / CONFIG_FILE)
    version = config.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path / CONFIG_FILE}: format_version must be an integer, got {version!r:.80}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {config['format_version']} is newer than this jepa_ac supports ({FORMAT_VERSION})"
        )
    # the architecture is checked before any weight is read or allocated
    enc = parse_config(EncoderConfig, config.get("encoder"), path / CONFIG_FILE, "encoder")
    pred = parse_config(PredictorConfig, config.get("predictor"), path / CONFIG_FILE, "predictor")
    provenance = config.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise CheckpointError(f"{path / CONFIG_FILE}: provenance must be a mapping, got {type(provenance).__name__}")
    flat = _read_safetensors(path / WEIGHTS_FILE)
    arrays: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        part, _, name = key.partition(".")
        if part not in PARTS or not name:
            raise CheckpointError(f"{path / WEIGHTS_FILE}: unexpected key {key!r} (expected 'encoder.*' or 'predictor.*')")
        arrays.setdefault(part, {})[name] = value
    for part, cfg in (("encoder", enc), ("predictor", pred)):
        if (cfg is None) != (part not in arrays):
            raise CheckpointError(f"{path}: config.json and {WEIGHTS_FILE} disagree on whether there is a {part}")
    return LoadedCheckpoint(arrays, enc, pred, dict(provenance), str(path))


def parse_config(cls: type, values: Any, source: str | Path, part: str) -> Any:
    """`cls(**values)` from a JSON mapping (None or {} -> None), with any error naming the file and
    the field: unknown names, wrong types (a string for a bool) and out-of-range sizes."""
    if not values:
        return None
    if not isinstance(values, Mapping):
        raise CheckpointError(f"{source}: {part!r} must be a mapping of {cls.__name__} fields, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in values if k not in names)
    if unknown:
        raise CheckpointError(f"{source}: {part} has unknown field(s) {unknown}; {cls.__name__} fields are {sorted(names)}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{source}: {part}: {err}") from None


# Weights are built in fp32 (4 bytes a parameter); refuse configs that would not fit in memory.
_BYTES_PER_PARAMETER = 4


def check_allocation(part: str, config: Any, arrays: Mapping[str, Any] | None, source: str) -> None:
    """Refuse, before allocating, a `config` whose model is far larger than the weights that are
    to fill it (a hostile or mismatched config.json), or larger than this machine's memory."""
    from jepa_ac.model.config import estimated_parameters

    wanted = estimated_parameters(config)
    if arrays is not None:
        held = sum(int(np.prod(np.shape(v))) for v in arrays.values())
        if wanted > 1.5 * held + 1_000_000:
            raise CheckpointError(
                f"{source}: the {part} architecture needs about {wanted:,} parameters but the checkpoint holds "
                f"{held:,}; refusing to allocate (is the config for another model size?)"
            )
    memory = _physical_memory()
    if memory and wanted * _BYTES_PER_PARAMETER > memory:
        raise CheckpointError(
            f"{source}: the {part} architecture needs about {wanted * _BYTES_PER_PARAMETER / 2**30:.1f} GiB of weights, "
            f"more than this machine's {memory / 2**30:.1f} GiB of memory"
        )


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def save_checkpoint(
    path: str | Path,
    arrays: Mapping[str, Mapping[str, np.ndarray]],
    encoder_config: EncoderConfig | None,
    predictor_config: PredictorConfig | None,
    provenance: Mapping[str, Any] | None = None,
    dtype: str | None = None,
    extra_files: Mapping[str, Callable[[Path], None]] | None = None,
) -> Path:
    """Write our folder format atomically (temp folder in the same parent, then rename).

    `dtype` ("float16", "bfloat16" is not numpy-representable so use "float16"/"float32") casts
    floating-point weights on the way out; configs and provenance go to config.json.
    `extra_files` maps a file name to a writer called with its path inside the temp folder
    (e.g. a trainer's optimizer state), so it lands atomically with the weights.
    """
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {}
    for part, tensors in arrays.items():
        for name, value in tensors.items():
            value = np.ascontiguousarray(value)
            if dtype is not None and np.issubdtype(value.dtype, np.floating):
                value = value.astype(dtype)
            flat[f"{part}.{name}"] = value
    config = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "encoder": encoder_config.to_dict() if encoder_config else None,
        "predictor": predictor_config.to_dict() if predictor_config else None,
        "provenance": dict(provenance or {}),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        save_file(flat, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        for name, write in (extra_files or {}).items():
            write(tmp / name)
        for f in tmp.iterdir():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


# -- strict matching ----------------------------------------------------------------------------


def match_arrays(
    part: str,
    arrays: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    source: str,
    dropped: set[str] = frozenset(),
) -> dict[str, Any]:
    """Check a name->array dict against the expected name->shape dict; return it without `dropped`.

    Raises `CheckpointError` that names the first bad key, then lists all of them.
    """
    given = {k: v for k, v in arrays.items() if k not in dropped}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{k}: checkpoint {tuple(np.shape(given[k]))} vs model {expected[k]}"
        for k in expected
        if k in given and tuple(np.shape(given[k])) != tuple(expected[k])
    ]
    if missing or unexpected or misshaped:
        first = (misshaped or [f"missing {k}" for k in missing] or [f"unexpected {k}" for k in unexpected])[0]
        lines = [f"{source}: the {part} weights do not match the architecture; first bad key: {first}"]
        if misshaped:
            lines.append(f"  mis-shaped ({len(misshaped)}): " + "; ".join(misshaped[:8]))
        if missing:
            lines.append(f"  missing ({len(missing)}): " + ", ".join(missing[:8]))
        if unexpected:
            lines.append(f"  unexpected ({len(unexpected)}): " + ", ".join(unexpected[:8]))
        lines.append("  (is this checkpoint for another model size? pass the matching encoder=/predictor= preset)")
        raise CheckpointError("\n".join(lines))
    return given


def weights_hash(arrays: Mapping[str, Any]) -> str:
    """A stable sha256 over names, shapes, dtypes and bytes (e.g. to key a latent cache)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(np.asarray(arrays[name]))
        digest.update(f"{name}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


_MAX_JSON_BYTES = 16 * 2**20  # a config.json is a few kB; refuse to parse a huge one


def _read_json(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes; a config file is at most {_MAX_JSON_BYTES:,}")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise CheckpointError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except TypeError as err:  # numpy has no bfloat16: widen BF16 tensors to float32 (exact)
        if "bfloat16" not in str(err):
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
        from jepa_ac.world_model.safetensors_io import read_safetensors

        try:
            return read_safetensors(path)
        except ValueError as err2:
            raise CheckpointError(str(err2)) from err2
    except Exception as err:  # safetensors raises its own error types for truncated files
        raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
