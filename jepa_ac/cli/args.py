"""Flags shared by the command-line tools (`plan`, `serve`, `evaluate`, `energy_landscape`).

    parser = argparse.ArgumentParser()
    add_model_args(parser)                       # --checkpoint --encoder --predictor --arch --backend --device
                                                 # --dtype --threads
    add_planning_args(parser)                    # --config/--planning FILE, --set KEY=VALUE and its shortcuts
    add_env_hook_args(parser)                    # --state-hook --frame-hook --success-hook --goal-hook --action-hook
    args = parser.parse_args()
    wm = load_model_from_args(args)              # --checkpoint omitted -> the shipped default model
    defaults = planning_from_args(args, "jepa_ac/FrankaPush-v0", seed=0)  # planning.json + env overrides + --set
    defaults, adapter = env_from_args(args, "my_hooks:FetchReach-v4", seed=0)  # any env: + its EnvAdapter

Upstream `.pt` files carry no architecture: pass `--encoder vit_giant --predictor vit_ac_giant`, or
`--arch FILE.json` holding `{"encoder": {...}, "predictor": {...}}` upstream constructor args.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from jepa_ac.cli.overrides import Set, add_settings_args, apply_settings, load_settings
from jepa_ac.world_model.precision import PRECISIONS, choose_planning_dtype

DEFAULT_CHECKPOINT = Path(__file__).parents[1] / "assets" / "default_model"
BACKENDS = ("torch", "mlx")


def add_model_args(parser: argparse.ArgumentParser, checkpoint_help: str | None = None) -> argparse._ArgumentGroup:
    """Add the model group to `parser`; `--checkpoint` defaults to None (callers pick the fallback)."""
    model = parser.add_argument_group("model")
    model.add_argument("--checkpoint", type=Path, default=None,
                       help=checkpoint_help or "upstream .pt, HF folder or jepa_ac folder")
    model.add_argument("--encoder", help="encoder preset for upstream .pt files (e.g. vit_giant)")
    model.add_argument("--predictor", help="predictor preset for upstream .pt files (e.g. vit_ac_giant)")
    model.add_argument("--arch", type=Path, help="JSON with 'encoder'/'predictor' upstream constructor args")
    model.add_argument("--backend", default="torch", choices=BACKENDS)
    model.add_argument("--device", default=None, help="torch: cpu / cuda / cuda:1; mlx: cpu / gpu")
    model.add_argument("--dtype", default="auto", choices=PRECISIONS,
                       help="the networks' dtype (default: auto = bfloat16 on CUDA and on CPUs with bf16 dot products, "
                            "AMX or AVX512-BF16, else float32; energies and CEM stay float32)")
    model.add_argument("--threads", type=int, default=None,
                       help="torch CPU threads; planning runs its CEM samples on this many worker threads of one "
                            "torch thread each (default: OMP_NUM_THREADS if set, else torch's one per physical core "
                            "with OMP_WAIT_POLICY=PASSIVE, so threads sleep rather than spin at barriers on a shared CPU)")
    return model


def default_threads(
    environ: Mapping[str, str] | None = None, cpus: int | None = None, openmp_started: bool | None = None
) -> tuple[int | None, dict[str, str]]:
    """How the CLIs set up torch's CPU threads when --threads is not given: (threads to set, or None
    for torch's own default of one per physical core; environment variables to set before torch loads).

    - OMP_NUM_THREADS set: nothing (torch honours it).
    - OpenMP not loaded yet in this process (`openmp_started`; None: look): torch's default threads,
      with OMP_WAIT_POLICY=PASSIVE unless the user set a policy, so idle threads sleep at barriers
      instead of spinning.
    - OpenMP already loaded (torch imported before, e.g. from Python): its policy is fixed, so half
      the CPUs this process may use (`cpus`; None: its affinity), at least 1.

    Measured on the 2-core build host (experiments/latency/README.md#threads): whenever another process
    wanted a core, 2 spinning threads (torch's default there) took 1.8-11x longer per planning step
    than 1 thread; 2 passive threads never stalled, and were between 1.32x slower and 1.46x faster
    than 1 thread.
    """
    environ = os.environ if environ is None else environ
    if environ.get("OMP_NUM_THREADS"):
        return None, {}
    if openmp_started is None:
        openmp_started = openmp_loaded()
    if not openmp_started:
        return None, ({} if environ.get("OMP_WAIT_POLICY") else {"OMP_WAIT_POLICY": "PASSIVE"})
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // 2), {}


def let_idle_threads_sleep() -> None:
    """What a training CLI does before it loads torch: OMP_WAIT_POLICY=PASSIVE unless OMP_NUM_THREADS or
    a policy is set, or OpenMP is already loaded (its policy is then fixed); torch keeps its default
    thread count (`--threads` sets another). Measured on the 2-core build host
    (experiments/latency/training_threads): alone, passive threads train as fast as spinning ones;
    two trainings at once took 2.3x longer per step with spinning threads, and with passive ones
    about as long as with one thread each."""
    if not openmp_loaded():
        os.environ.update(default_threads(openmp_started=False)[1])


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime is already loaded in this process (it reads OMP_* variables once, at load)."""
    if "torch" in sys.modules:
        return True
    maps = Path("/proc/self/maps")
    return maps.is_file() and any(name in maps.read_text() for name in ("libgomp", "libiomp", "libomp"))


def set_threads(threads: int | None) -> int | None:
    """Set up torch's CPU threads: `threads`, or `default_threads()` when None. Returns the number set
    (None: torch's default)."""
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    if threads is None:
        threads, variables = default_threads()
        os.environ.update(variables)  # before torch loads OpenMP below
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    return threads


def planning_dtype(args: argparse.Namespace) -> str:
    """The dtype name `--dtype` asks for on `--backend`/`--device` ("auto" resolved for this host)."""
    return choose_planning_dtype(args.device, getattr(args, "dtype", "auto"), args.backend)


def resolve_checkpoint(path: str | Path | None) -> Path:
    """`path`, or the shipped default model when None; a clear error if it is missing."""
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return path
    if not (DEFAULT_CHECKPOINT / "config.json").is_file() or not (DEFAULT_CHECKPOINT / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"no --checkpoint given and the shipped default model is missing ({DEFAULT_CHECKPOINT} needs "
            "config.json + model.safetensors); pass --checkpoint PATH (e.g. --checkpoint "
            "tests/fixtures/vjepa2_ac_tiny.pt --arch tests/fixtures/vjepa2_ac_tiny.json)"
        )
    return DEFAULT_CHECKPOINT


def architecture_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    """(encoder, predictor) architecture arguments for `load_world_model` from --encoder/--predictor/--arch."""
    encoder, predictor = args.encoder, args.predictor
    if args.arch is not None:
        if not Path(args.arch).is_file():
            raise FileNotFoundError(f"--arch file not found: {args.arch}")
        arch = json.loads(Path(args.arch).read_text())
        if not isinstance(arch, dict):
            raise ValueError(f"{args.arch}: expected a JSON object with 'encoder'/'predictor' entries")
        encoder, predictor = arch.get("encoder", encoder), arch.get("predictor", predictor)
    return encoder, predictor


def load_model_from_args(args: argparse.Namespace):
    """The world model the model flags describe (`--checkpoint` None -> the shipped default)."""
    import jepa_ac

    checkpoint = resolve_checkpoint(args.checkpoint)
    encoder, predictor = architecture_from_args(args)
    if args.backend == "torch":
        set_threads(getattr(args, "threads", None))
    return jepa_ac.load_world_model(checkpoint, encoder=encoder, predictor=predictor,
                                    backend=args.backend, device=args.device, dtype=planning_dtype(args))


def add_planning_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """`--config`/`--planning FILE`, `--set KEY=VALUE ...` and its shortcut flags (`jepa_ac.cli.overrides`)."""
    group = parser.add_argument_group(
        "planning settings (planning.json beside the checkpoint, else V-JEPA 2-AC's CEM settings); each flag "
        "below is a shortcut for --set, e.g. --samples 64 is --set cem.samples=64")
    add_settings_args(group, "planning settings, YAML or JSON (default: <checkpoint>/planning.json)", "--planning")
    for name in ("samples", "iterations", "topk", "horizon"):
        group.add_argument(f"--{name}", action=Set, key=f"cem.{name}", help=f"--set cem.{name}")
    group.add_argument("--cem", action=Set, prefix="cem.", nargs="+", metavar="FIELD=VALUE",
                       help="--set cem.FIELD=VALUE: any CEMConfig field (e.g. warm_start=true keep_elites=0.3)")
    group.add_argument("--image-size", action=Set, key="env.image_size", help="env render size in px")
    group.add_argument("--exterior-view", action=Set, key="env.exterior_view",
                       help="the Franka envs' camera view: front, side or wrist, or several joined by '+' (front+side) "
                            "(default: planning.json's env.exterior_view, the view the model was trained on)")
    group.add_argument("--max-steps", action=Set, key="mpc.max_steps", help="MPC step budget per episode")
    group.add_argument("--patience", action=Set, key="mpc.patience", convert=lambda t: "null" if t == "0" else t,
                       help="stop after this many steps without a lower latent distance (0 = never)")
    group.add_argument("--min-improvement", action=Set, key="mpc.min_improvement",
                       help="a drop smaller than this does not count as improving")
    group.add_argument("--subgoals", action=Set, key="mpc.subgoals", nargs=0, const="true",
                       help="aim at the env's sub-goal images (e.g. above the cube, grasped, lifted) one after "
                            "another before the goal (default: planning.json's mpc.subgoals)")
    group.add_argument("--no-subgoals", action=Set, key="mpc.subgoals", nargs=0, const="false")
    group.add_argument("--mpc", action=Set, prefix="mpc.", nargs="+", metavar="FIELD=VALUE",
                       help="--set mpc.FIELD=VALUE: any MPCConfig field (e.g. subgoal_patience=2 subgoal_max_steps=12)")
    return group


def planning_from_args(args: argparse.Namespace, env_id: str | None, seed: int, for_env: bool = True):
    """The planning file (--config, or beside the checkpoint / the shipped default) with `env_id`'s
    overrides (None: its default env; `for_env=False`: none), then `--set` and its shortcuts.
    `seed` is the CEM seed. A bad flag value or planning file exits with a message (SystemExit)."""
    try:
        return _planning_from_args(args, env_id, seed, for_env)
    except (ValueError, FileNotFoundError) as err:  # a bad flag or planning file: a message, not a traceback
        raise SystemExit(f"error: {err}") from None


def base_planning(args: argparse.Namespace):
    """The planning file (--config, or beside the checkpoint / the shipped default), before any env's overrides."""
    from jepa_ac.planning.defaults import PlanningDefaults

    if getattr(args, "config", None) is not None:
        return PlanningDefaults.from_dict(load_settings(args.config), source=str(args.config))
    return PlanningDefaults.for_checkpoint(args.checkpoint if args.checkpoint is not None else DEFAULT_CHECKPOINT)


def apply_flags(defaults, args: argparse.Namespace, seed: int):
    """`defaults` (one env's or task's) with `--set` and its shortcuts on top, `seed` as the CEM seed and
    the view checked. `--samples` without `--topk` caps top-k at the samples."""
    from jepa_ac.planning.defaults import SECTIONS

    schema = {name: type(getattr(defaults, name)) for name in SECTIONS}
    sections = apply_settings({}, getattr(args, "overrides", None) or [], schema)
    cem = sections.setdefault("cem", {})
    cem["seed"] = seed
    if isinstance(cem.get("samples"), int) and "topk" not in cem:
        cem["topk"] = min(defaults.cem.topk, cem["samples"])
    defaults = defaults.replace("command line", **sections)
    if defaults.env.exterior_view is not None:  # an unknown view: this message, not a traceback from the env
        from jepa_ac.envs import FrankaEnvConfig

        FrankaEnvConfig(exterior_view=defaults.env.exterior_view)
    return defaults


def _planning_from_args(args: argparse.Namespace, env_id: str | None, seed: int, for_env: bool):
    base = base_planning(args)
    return apply_flags(base.for_env(env_id) if for_env else base, args, seed)


# -- any env: hooks and planning derived from the training data ------------------------------------


def add_env_hook_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The hooks of an env that is not ours (`jepa_ac.robot.env_adapter`); each defaults to the one the
    checkpoint's data was recorded with (its control.json), else the adapter's default."""
    group = parser.add_argument_group(
        "your own env (--env module:EnvId; jepa_ac.robot.env_adapter): hooks are module:function, called as fn(obs) "
        "or fn(obs, env); default: those the checkpoint's training data was recorded with")
    group.add_argument("--state-hook", help="obs -> [x, y, z, roll, pitch, yaw, gripper] (m, rad, closedness 0..1)")
    group.add_argument("--frame-hook", help="obs -> uint8 [H, W, 3] (default: the obs image or env.render())")
    group.add_argument("--success-hook", help="obs -> bool (default: info['success'] or info['is_success'])")
    group.add_argument("--goal-hook", help="reset obs -> the goal image, or a list of sub-goal images then the goal "
                                           "(default: the env's goal_image())")
    group.add_argument("--action-hook", help="(move [7], obs, env) -> the env's action for one env step (default: "
                                             "the data's command fit, held for control rate / training fps steps)")
    return group


def resolve_env_name(name: str) -> str:
    """A Franka env's id from its id or short name (reach, push, pickplace); any other env as given:
    "module:EnvId" (module imported first) or an id gymnasium has registered."""
    from jepa_ac.envs import resolve_env_id

    try:
        return resolve_env_id(name)
    except ValueError as err:
        if ":" in name:
            return name
        import gymnasium

        if name in gymnasium.registry:
            return name
        raise ValueError(f"{err}, or module:EnvId for any other gymnasium env (module registers EnvId)") from None


def is_franka_env(env_id: str | None) -> bool:
    from jepa_ac.envs import ENV_IDS

    return env_id is None or env_id in ENV_IDS


def checkpoint_control(args: argparse.Namespace):
    """The control record beside `--checkpoint` (None: none, or the shipped default model)."""
    from jepa_ac.planning.checkpoint_control import CheckpointControl

    return CheckpointControl.for_checkpoint(args.checkpoint) if args.checkpoint is not None else None


def default_env(args: argparse.Namespace) -> str | None:
    """The env to plan in when --env is not given, if not planning.json's: for a checkpoint with no
    planning.json of its own, the env of its training data (whatever --planning gives)."""
    from jepa_ac.planning.defaults import PLANNING_FILE

    has_planning = args.checkpoint is not None and (Path(args.checkpoint) / PLANNING_FILE).is_file()
    control = None if has_planning else checkpoint_control(args)
    if control is not None and control.env_id is not None and not is_franka_env(control.env_id):
        return control.env_id
    return None


def env_from_args(args: argparse.Namespace, env_id: str, seed: int):
    """(planning defaults, `EnvAdapter` or None) to plan in `env_id`: for the Franka envs,
    `planning_from_args` and no adapter. For any other env: planning.json's settings if it names the
    env, else derived from the checkpoint's training data (control.json), with the flags on top; the
    adapter takes the hooks the data was recorded with, replaced by the `--*-hook` flags, and the
    data's command fit. Errors exit with a message (SystemExit)."""
    if is_franka_env(env_id):
        return planning_from_args(args, env_id, seed), None
    try:
        return _env_from_args(args, env_id, seed)
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


def _env_from_args(args: argparse.Namespace, env_id: str, seed: int):
    from jepa_ac.planning.checkpoint_control import planning_for_env
    from jepa_ac.planning.defaults import PLANNING_FILE
    from jepa_ac.robot.env_adapter import HOOKS, AdapterSpec, EnvAdapter

    base = base_planning(args)
    from_file = getattr(args, "config", None) is not None or (Path(args.checkpoint or DEFAULT_CHECKPOINT)
                                                               / PLANNING_FILE).is_file()
    named = from_file and (env_id == base.env_id or env_id in base.env_overrides)
    control = checkpoint_control(args)
    ours = control is not None and control.names(env_id)  # the checkpoint was trained on this env's data
    if named:
        defaults = base.for_env(env_id)
    elif ours:
        defaults = planning_for_env(base, control, env_id)
    else:
        trained = f"data of {control.env_id}" if control is not None and control.env_id else "unknown data"
        raise ValueError(f"no planning settings for {env_id}: the checkpoint's planning.json does not name it and the "
                         f"checkpoint was trained on {trained}; pass --planning FILE, or a --checkpoint trained on "
                         f"{env_id}'s data (train_predictor stores its control contract as control.json)")
    defaults = apply_flags(defaults, args, seed)
    if ours and ":" not in env_id:  # the module that registers the id, as the data was recorded
        env_id = control.env_id
    spec = AdapterSpec.from_options(env_id, control.env_options if ours else {})
    spec = spec.replace(**{name: getattr(args, f"{name}_hook", None) for name in HOOKS})
    adapter = EnvAdapter.load(spec, control.contract if ours else None, defaults.env.image_size)
    return defaults, adapter
