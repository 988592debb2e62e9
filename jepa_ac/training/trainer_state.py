"""The trainer state saved beside a checkpoint's weights, in formats that cannot run code.

    files = trainer_state_files(step=..., world_size=..., optimizer=opt.state_dict(), rng=rng_state(),
                                config={...}, modules={"model": model.state_dict()}, extra={"initial_std": 0.3})
    save_checkpoint(folder, arrays, ..., extra_files=files)   # weights and state land together, atomically
    state = read_trainer_state(folder)   # the same keys back, bit-exact; None if the folder has none

Two files: `trainer_state.safetensors` holds every tensor (optimizer moments and step counts, the
torch / CUDA RNG states, extra module weights such as pretraining's context encoder), and
`trainer_state.json` the rest (step, world size, config, optimizer hyper-parameters and its
param-group structure, the Python and NumPy RNG states, small extras). Neither format can
execute anything when read, so a checkpoint folder from elsewhere is as safe to resume or start
from as its `model.safetensors`. JSON floats are written with `repr`, so they round-trip exactly
and a resumed run stays bit-identical to an uninterrupted one.

`trainer_state.pt` (a pickle, written by jepa_ac before this format) is never unpickled: reading
a folder that holds only that file raises `CheckpointError` saying so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from jepa_ac.world_model.checkpoints import CheckpointError

STATE_JSON = "trainer_state.json"
STATE_TENSORS = "trainer_state.safetensors"
LEGACY_STATE = "trainer_state.pt"  # pickle: never loaded
FORMAT = "jepa_ac.trainer_state"
VERSION = 1


def has_trainer_state(folder: str | Path) -> bool:
    """Whether `folder` holds a trainer state in any format (the legacy pickle included)."""
    folder = Path(folder)
    return any((folder / name).is_file() for name in (STATE_JSON, STATE_TENSORS, LEGACY_STATE))


def trainer_state_files(
    *, step: int, world_size: int, optimizer: Mapping[str, Any], rng: Mapping[str, Any], config: Mapping[str, Any],
    modules: Mapping[str, Mapping[str, torch.Tensor]] | None = None, extra: Mapping[str, Any] | None = None,
) -> dict[str, Callable[[Path], None]]:
    """The two files as `save_checkpoint(extra_files=...)` writers (so they land atomically with the weights)."""
    tensors: dict[str, torch.Tensor] = {}
    rng_json = _rng_to_json(rng, tensors)
    optimizer_json = _optimizer_to_json(optimizer, tensors)
    for name, state in (modules or {}).items():
        if not name or "." in name:
            raise ValueError(f"module name {name!r} must be non-empty without '.'")
        for key, value in state.items():
            tensors[f"module.{name}.{key}"] = value
    record = {"format": FORMAT, "version": VERSION, "step": int(step), "world_size": int(world_size),
              "config": dict(config), "optimizer": optimizer_json, "rng": rng_json, "modules": sorted(modules or {}),
              "extra": dict(extra or {})}
    text = json.dumps(record, indent=1) + "\n"  # repr floats: exact round trip
    # safetensors wants contiguous CPU tensors that share no memory
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}

    def write_tensors(path: Path) -> None:
        from safetensors.torch import save_file

        save_file(tensors, str(path), metadata={"format": FORMAT})

    return {STATE_TENSORS: write_tensors, STATE_JSON: lambda path: path.write_text(text)}


def read_trainer_state(folder: str | Path) -> dict[str, Any] | None:
    """{"step", "world_size", "config", "optimizer" (a torch state_dict), "rng", "modules", "extra"};
    None if `folder` holds no trainer state. Raises `CheckpointError` naming the file for a legacy
    pickle, a missing half, or content that is not what `trainer_state_files` writes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    json_path, tensor_path = folder / STATE_JSON, folder / STATE_TENSORS
    if not json_path.exists() and not tensor_path.exists():
        if (folder / LEGACY_STATE).exists():
            raise CheckpointError(
                f"{folder / LEGACY_STATE} is a pickled trainer state from an earlier jepa_ac; it is not loaded "
                f"because unpickling a file can run arbitrary code. Its weights ({folder}/model.safetensors) are "
                f"safe: start a new run from them (--init-predictor / --init-from a copy of the folder without "
                f"{LEGACY_STATE}) instead of resuming")
        return None
    for path in (json_path, tensor_path):
        if not path.is_file():
            raise CheckpointError(f"{path} is missing: the trainer state in {folder} is incomplete")
    try:
        record = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{json_path} is not valid JSON: {err}") from None
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{tensor_path} is not a readable safetensors file: {err}") from None
    try:
        return _decode(record, tensors)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise CheckpointError(f"{json_path}: not a trainer state this jepa_ac writes ({type(err).__name__}: {err})") \
            from None


def _decode(record: Any, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"format is {record.get('format') if isinstance(record, dict) else record!r}, "
                         f"expected {FORMAT!r}")
    if record.get("version") != VERSION:
        raise ValueError(f"version {record.get('version')!r}; this jepa_ac reads version {VERSION}")
    step, world = record["step"], record["world_size"]
    if not (_is_int(step) and step >= 0 and _is_int(world) and world >= 1):
        raise ValueError(f"step {step!r} / world_size {world!r} must be integers >= 0 / >= 1")
    modules: dict[str, dict[str, torch.Tensor]] = {name: {} for name in _str_list(record["modules"], "modules")}
    for key, value in tensors.items():
        if key.startswith("module."):
            name, _, sub = key[len("module."):].partition(".")
            if name not in modules:
                raise ValueError(f"tensor {key!r} belongs to no module listed in 'modules'")
            modules[name][sub] = value
    if not isinstance(record["config"], dict) or not isinstance(record["extra"], dict):
        raise ValueError("'config' and 'extra' must be objects")
    return {"step": step, "world_size": world, "config": record["config"], "extra": record["extra"],
            "optimizer": _optimizer_from_json(record["optimizer"], tensors), "rng": _rng_from_json(record["rng"], tensors),
            "modules": modules}


# -- optimizer --------------------------------------------------------------------------------


def _optimizer_to_json(state_dict: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """torch `Optimizer.state_dict()` -> JSON; per-parameter tensors go to `tensors`."""
    state_json: dict[str, dict[str, Any]] = {}
    for index, values in state_dict["state"].items():
        entry = {}
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                key = f"optimizer.{index}.{name}"
                tensors[key] = value
                entry[name] = {"tensor": key}
            else:
                entry[name] = {"value": _json_value(value, f"optimizer state {index}.{name}")}
        state_json[str(index)] = entry
    groups = [{k: _json_value(v, f"optimizer param_group {k}") for k, v in group.items()}
              for group in state_dict["param_groups"]]
    return {"state": state_json, "param_groups": groups}


def _optimizer_from_json(record: Any, tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    if not isinstance(record, dict) or not isinstance(record.get("param_groups"), list):
        raise ValueError("'optimizer' must hold 'state' and a 'param_groups' list")
    state: dict[int, dict[str, Any]] = {}
    for index, values in dict(record["state"]).items():
        entry = {}
        for name, value in dict(values).items():
            if "tensor" in value:
                if value["tensor"] not in tensors:
                    raise ValueError(f"optimizer state {index}.{name}: tensor {value['tensor']!r} is not in "
                                     f"{STATE_TENSORS}")
                entry[name] = tensors[value["tensor"]]
            else:
                entry[name] = value["value"]
        state[int(index)] = entry
    groups = []
    for group in record["param_groups"]:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list) \
                or not all(_is_int(p) for p in group["params"]):
            raise ValueError("each optimizer param group needs a 'params' list of integers")
        groups.append(dict(group))
    return {"state": state, "param_groups": groups}


def restore_trainer_state(state: Mapping[str, Any], optimizer: torch.optim.Optimizer, source: str) -> None:
    """Load the optimizer and RNG states of `read_trainer_state` into this process; a state that does
    not fit this run (group sizes, tensor shapes, RNG layout) is a `CheckpointError` naming `source`."""
    from jepa_ac.training.common import set_rng_state

    loaded = state["optimizer"]
    live_groups = optimizer.param_groups
    if len(loaded["param_groups"]) != len(live_groups):
        raise CheckpointError(f"{source}: the optimizer state has {len(loaded['param_groups'])} parameter groups, "
                              f"this run {len(live_groups)}")
    shapes = {}
    for index, (group, live) in enumerate(zip(loaded["param_groups"], live_groups)):
        if len(group["params"]) != len(live["params"]):
            raise CheckpointError(f"{source}: optimizer parameter group {index} holds {len(group['params'])} "
                                  f"parameters, this run's {len(live['params'])} (another architecture?)")
        shapes.update({i: tuple(p.shape) for i, p in zip(group["params"], live["params"])})
        for key, value in live.items():  # JSON has no tuples: give values the live optimizer's types (betas)
            if isinstance(value, tuple) and isinstance(group.get(key), list):
                group[key] = tuple(group[key])
    for index, values in loaded["state"].items():
        if index not in shapes:
            raise CheckpointError(f"{source}: optimizer state for parameter {index}, which no group lists")
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.ndim and tuple(value.shape) != shapes[index]:
                raise CheckpointError(f"{source}: optimizer state {index}.{name} has shape {list(value.shape)}, "
                                      f"the parameter {list(shapes[index])}")
    try:
        optimizer.load_state_dict(loaded)
        set_rng_state(state["rng"])
    except (ValueError, TypeError, RuntimeError, KeyError) as err:
        raise CheckpointError(f"{source}: the trainer state does not fit this run: {err}") from None


# -- RNG ----------------------------------------------------------------------------------------


def _rng_to_json(rng: Mapping[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    version, internal, gauss = rng["python"]
    kind, key, pos, has_gauss, cached = rng["numpy"]
    tensors["rng.torch"] = rng["torch"]
    for i, cuda in enumerate(rng.get("cuda", [])):
        tensors[f"rng.cuda.{i}"] = cuda
    return {"python": {"version": version, "internal": list(internal), "gauss": gauss},
            "numpy": {"kind": kind, "key": np.asarray(key).tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                      "cached_gaussian": float(cached)},
            "cuda": len(rng.get("cuda", []))}


def _rng_from_json(record: Any, tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    py, npy = record["python"], record["numpy"]
    internal = py["internal"]
    if not (isinstance(internal, list) and all(_is_int(v) for v in internal)):
        raise ValueError("rng.python.internal must be a list of integers")
    key = np.asarray(npy["key"], dtype=np.uint64)
    if key.shape != (624,) or key.max(initial=0) >= 2**32:
        raise ValueError(f"rng.numpy.key must be 624 uint32 values, got shape {list(key.shape)}")
    torch_state = tensors.get("rng.torch")
    if torch_state is None or torch_state.dtype != torch.uint8 or torch_state.shape != torch.get_rng_state().shape:
        raise ValueError(f"the torch RNG state (rng.torch) must be uint8 {list(torch.get_rng_state().shape)}")
    state = {"python": (int(py["version"]), tuple(internal), None if py["gauss"] is None else float(py["gauss"])),
             "numpy": (str(npy["kind"]), key.astype(np.uint32), int(npy["pos"]), int(npy["has_gauss"]),
                       float(npy["cached_gaussian"])),
             "torch": tensors["rng.torch"]}
    if record.get("cuda"):
        state["cuda"] = [tensors[f"rng.cuda.{i}"] for i in range(int(record["cuda"]))]
    return state


# -- helpers ------------------------------------------------------------------------------------


def _json_value(value: Any, what: str) -> Any:
    """A plain JSON value (tuples become lists); anything else is a bug in the caller, named."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v, what) for k, v in value.items()}
    raise TypeError(f"{what}: {type(value).__name__} cannot be stored in {STATE_JSON}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what!r} must be a list of names")
    return value
