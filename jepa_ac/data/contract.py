"""The control contract of a recording, measured from its data, and the planning defaults it implies.

    contract = contract_for_dataset("data/my_env")                  # or DatasetInfo.load(...).control
    planning = planning_defaults(contract, env_id="my_pkg:MyEnv-v0", image_size=128)  # planning.json dict
    safety = safety_limits(contract)                                # SafetyConfig dict

    python -m jepa_ac.data.contract data/my_env --write --planning-out planning.json --safety-out safety.yaml

A world model trained on a recording only knows the moves that recording made: how often the robot
was commanded (`control_hz`), how far one step went (`step_p95`, per action dim), where the hand
went (`position_min/max`), and, where commands were recorded, how the achieved state change
relates to the command (`command_to_delta`, `action_scale`). `collect` and `Recorder` store the
contract in `dataset_info.json`; datasets without one (older ones, LeRobot, released DROID) get
it measured on demand. Achieved moves are V-JEPA 2-AC actions between consecutive states
(`jepa_ac.model.pose.action_between`), so every number is in the units the planner searches.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from jepa_ac.model import pose
from jepa_ac.data.episode import EpisodeCommands
from jepa_ac.data.layout import COMMAND_SPACES, STEP_PERCENTILE, ControlContract

logger = logging.getLogger(__name__)

MAX_COMMAND_LAG = 2  # rows a command's effect may trail it (real controllers lag)
STILL_ROTATION = 1e-3  # rad per step: below this at the percentile, rotation never moved
STILL_GRIPPER = 1e-3  # closedness range below this: the gripper never moved
_MIN_VARIANCE = 1e-12


# -- measuring --------------------------------------------------------------------------------


def measure_contract(
    episodes: Iterable[tuple[np.ndarray, np.ndarray | None]],
    control_hz: float,
    command_space: str | None = None,
    command_source: str | None = None,
    stride: int = 1,
) -> ControlContract:
    """The contract of episodes given as (states [T, 7], commands [T, k] or None), recorded at `control_hz`.

    Step statistics use moves between rows `stride` apart (a clip rate of control_hz / stride);
    the command fit always uses consecutive rows. Commands are ignored when `command_space` is None.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if command_space is not None and command_space not in COMMAND_SPACES:
        raise ValueError(f"command_space must be one of {COMMAND_SPACES} or None, got {command_space!r}")
    moves, positions, grippers, fit_states, fit_commands = [], [], [], [], []
    count = 0
    for states, commands in episodes:
        states = pose.check_states(states, "episode states")  # [T, 7]
        count += 1
        positions.append(states[:, pose.POSITION])
        grippers.append(states[:, pose.GRIPPER])
        if len(states) > stride:
            moves.append(pose.actions_from_states(states[::stride]))  # [T', 7]
        if command_space is not None and commands is not None and len(states) > 1:
            commands = np.asarray(commands, np.float64).reshape(len(states), -1)  # [T, k]
            if not np.all(np.isfinite(commands[:-1])):
                raise ValueError("commands contain NaN or inf")
            fit_states.append(states)
            fit_commands.append(commands)
    if not count:
        raise ValueError("no episodes to measure a control contract from")
    if not moves:
        raise ValueError(f"no episode has more than {stride} rows: no moves to measure")
    move = np.concatenate(moves)  # [M, 7]
    magnitude = np.abs(move)
    rotation = np.linalg.norm(move[:, pose.ROTATION], axis=1)  # small-angle proxy of the rotation angle (rad)
    position = np.concatenate(positions)  # [R, 3]
    gripper = np.concatenate(grippers)
    fit = _fit_commands(fit_states, fit_commands, command_space) if fit_states else {}
    return ControlContract(
        control_hz=float(control_hz), step_hz=float(control_hz) / stride, episodes=count, transitions=len(move),
        step_p95=tuple(np.percentile(magnitude, STEP_PERCENTILE, axis=0)), step_max=tuple(magnitude.max(axis=0)),
        translation_max=float(np.linalg.norm(move[:, pose.POSITION], axis=1).max()), rotation_max=float(rotation.max()),
        position_min=tuple(position.min(axis=0)), position_max=tuple(position.max(axis=0)),
        gripper_min=float(gripper.min()), gripper_max=float(gripper.max()),
        command_space=command_space if fit else None, command_source=command_source if fit else None, **fit,
    )


def _fit_commands(states: Sequence[np.ndarray], commands: Sequence[np.ndarray], space: str | None) -> dict[str, Any]:
    """Least-squares map from the command at row t to the move from t+lag to t+lag+1, best lag."""
    dims = {c.shape[1] for c in commands}
    if len(dims) != 1:
        raise ValueError(f"episodes record commands of different sizes {sorted(dims)}")
    k = dims.pop()
    if space == "delta_pose" and k != 7:
        raise ValueError(f"delta_pose commands must have 7 dims, got {k}")
    best = None
    for lag in range(MAX_COMMAND_LAG + 1):
        xs, ys = [], []
        for s, c in zip(states, commands):
            moves = pose.actions_from_states(s)  # [T-1, 7]; move t: row t -> t+1
            n = len(moves) - lag
            if n > 0:
                xs.append(c[:n])
                ys.append(moves[lag : lag + n])
        if not xs:
            continue
        x, y = np.concatenate(xs), np.concatenate(ys)  # [P, k], [P, 7]
        if len(x) < k + 2:
            continue
        design = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # [P, k+1]
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)  # [k+1, 7]
        resid = y - design @ coef
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        r2 = [None if t < _MIN_VARIANCE else float(1 - r / t) for r, t in zip((resid**2).sum(axis=0), total)]
        score = np.mean([v for v in r2 if v is not None]) if any(v is not None for v in r2) else -np.inf
        if best is None or score > best[0] + 1e-9:
            best = (score, lag, x, y, coef, r2)
    if best is None:
        logger.warning("%d-D commands need at least %d moves to fit; the contract records none", k, k + 2)
        return {}
    _, lag, x, y, coef, r2 = best
    out: dict[str, Any] = {
        "command_dim": k, "command_lag": lag, "command_to_delta": tuple(map(tuple, coef[:k].T)),
        "delta_offset": tuple(coef[k]), "fit_r2": tuple(r2),
    }
    if space == "delta_pose":
        power = (x**2).sum(axis=0)
        out["action_scale"] = tuple(None if p < _MIN_VARIANCE else float((x[:, i] * y[:, i]).sum() / p)
                                    for i, p in enumerate(power))
    return out


def contract_for_dataset(source: str | Path | Sequence[str | Path], fps: float | None = None,
                         control_hz: float | None = None) -> ControlContract:
    """Measure the contract of a dataset: a DROID-layout folder or list, or a LeRobot dataset.

    `fps`: compute the step statistics at this clip rate (frames every round(control_hz / fps)
    rows, as training samples them); None = every row. `control_hz` overrides the recorded rate.
    """
    from jepa_ac.data.reader import EpisodeError, find_episodes, frame_stride, open_episode

    folders = find_episodes(source)
    records, commands, spaces, sources = [], [], set(), set()
    for folder in folders:
        try:
            record = open_episode(folder)
        except EpisodeError:
            continue  # the reader logs why; a contract of the usable episodes
        found = episode_commands(record)
        records.append(record)
        commands.append(None if found is None else found.values)
        if found is not None:
            spaces.add(found.space)
            sources.add(found.source)
    if not records:
        raise ValueError(f"no usable episodes in {source}")
    rates = {round(r.fps, 6) for r in records}
    if control_hz is None and len(rates) != 1:
        raise ValueError(f"episodes were recorded at different rates {sorted(rates)}; pass control_hz")
    hz = control_hz or records[0].fps
    if len(spaces) > 1 or len(sources) > 1:
        raise ValueError(f"episodes record different commands ({sorted(spaces)}, {sorted(sources)}); measure them apart")
    space = spaces.pop() if spaces else None
    return measure_contract(zip([r.states for r in records], commands), hz, space,
                            sources.pop() if sources else None, stride=frame_stride(hz, fps))


def episode_commands(record: Any) -> EpisodeCommands | None:
    """The commands of an opened episode (`jepa_ac.data.reader.open_episode`), or None if it has none.

    A jepa_ac episode names its command key and space in its metadata (`command_key`,
    `command_space`); older jepa_ac episodes sent `action/delta_pose`; released DROID episodes
    hold absolute targets (`action/cartesian_position` + `action/gripper_position`), turned into
    the deltas from each row's state. LeRobot episodes take the spec's `command_keys`.
    """
    from jepa_ac.data import layout
    from jepa_ac.data.lerobot import is_lerobot_episode, lerobot_commands
    from jepa_ac.data.reader import read_h5

    if is_lerobot_episode(record.path):
        return lerobot_commands(record)
    meta = record.metadata
    n = record.num_frames
    if layout.COMMAND_KEY_FIELD in meta:
        key, space = meta[layout.COMMAND_KEY_FIELD], meta.get(layout.COMMAND_SPACE_FIELD)
        if key is None:
            return None
    else:  # written before the contract existed: ours sent deltas, DROID's raw data holds targets
        import h5py

        with h5py.File(record.path / layout.TRAJECTORY_FILE, "r") as f:
            ours = layout.ACTION_DELTA in f
        key, space = (layout.ACTION_DELTA, "delta_pose") if ours else (layout.ACTION_CARTESIAN_POSITION, "target_pose")
    if space == "target_pose":
        arrays = read_h5(record.path / layout.TRAJECTORY_FILE, [layout.ACTION_CARTESIAN_POSITION, layout.ACTION_GRIPPER_POSITION])
        targets = np.concatenate([arrays[layout.ACTION_CARTESIAN_POSITION][:n],
                                  arrays[layout.ACTION_GRIPPER_POSITION].reshape(-1)[:n, None]], axis=1)  # [T, 7]
        values = pose.action_between(record.states, targets.astype(np.float64))
        return EpisodeCommands(values, "delta_pose", f"{layout.ACTION_CARTESIAN_POSITION}+{layout.ACTION_GRIPPER_POSITION}")
    if space not in COMMAND_SPACES:
        raise ValueError(f"{record.path}: unknown command_space {space!r}; expected one of {COMMAND_SPACES} or target_pose")
    values = read_h5(record.path / layout.TRAJECTORY_FILE, [key])[key]
    return EpisodeCommands(np.asarray(values, np.float64).reshape(len(values), -1)[:n], space, key)


# -- planning defaults from a contract ---------------------------------------------------------


def _round_up(value: float, step: float) -> float:
    return round(math.ceil(value / step - 1e-9) * step, 6)


def planning_defaults(contract: ControlContract, env_id: str, image_size: int | None = None,
                      workspace_margin: float = 0.02) -> dict[str, Any]:
    """A `planning.json` dict (`PlanningDefaults.from_dict`) for an env the contract was measured on.

    Step bound: the largest per-axis STEP_PERCENTILE of |xyz move| (rounded up to the mm); rotation
    and gripper are frozen at 0 when the data never moved them, else bounded likewise (the gripper by
    its largest move: it opens and closes rarely but fully). Workspace: the positions seen, widened
    by `workspace_margin` m, so the planner stays where the model saw data. The control rate is the
    rate the moves were measured at (`step_hz`): plan at the rate the model was trained at.
    """
    from jepa_ac.planning.defaults import FORMAT_NAME, FORMAT_VERSION

    if workspace_margin < 0:
        raise ValueError(f"workspace_margin must be >= 0, got {workspace_margin}")
    p95 = contract.step_p95
    action: dict[str, Any] = {"max_translation": max(_round_up(max(p95[pose.POSITION]), 0.001), 0.001)}
    frozen: dict[str, float] = {}
    if max(p95[pose.ROTATION]) < STILL_ROTATION:
        frozen.update(droll=0.0, dpitch=0.0, dyaw=0.0)
    else:
        action["max_rotation"] = _round_up(max(p95[pose.ROTATION]), 0.005)
    if contract.gripper_max - contract.gripper_min < STILL_GRIPPER:
        frozen["dgripper"] = 0.0
    else:
        action["max_gripper_delta"] = min(_round_up(contract.step_max[pose.GRIPPER], 0.05), 1.0)
    action["frozen"] = frozen
    action["workspace_min"] = [round(v - workspace_margin, 4) for v in contract.position_min]
    action["workspace_max"] = [round(v + workspace_margin, 4) for v in contract.position_max]
    env: dict[str, Any] = {"control_hz": contract.step_hz}
    if image_size is not None:
        env["image_size"] = int(image_size)
    return {
        "format": FORMAT_NAME, "version": FORMAT_VERSION,
        "comment": (f"derived from data by jepa_ac.data.contract.planning_defaults: {contract.episodes} episodes, "
                    f"{contract.transitions} moves at {contract.step_hz:g} Hz; step bound = p{contract.step_percentile:g} "
                    f"of |move|, workspace = positions seen +- {workspace_margin} m"),
        "env_id": env_id, "action": action, "env": env,
    }


def safety_limits(contract: ControlContract, workspace_margin: float = 0.05, headroom: float = 1.2) -> dict[str, Any]:
    """A `jepa_ac.robot.SafetyConfig` dict: the positions seen widened by `workspace_margin` m, and
    per-step limits `headroom` times the larger of the largest move seen and the most the derived
    planning bounds allow (a box step's diagonal), so the safety layer never clips a planned step."""
    planning = planning_defaults(contract, "-", workspace_margin=0.0)["action"]
    box = math.sqrt(3) * planning["max_translation"]
    rotation_bound = 0.0 if "droll" in planning["frozen"] else math.sqrt(3) * planning["max_rotation"]
    return {
        "workspace_min": [round(v - workspace_margin, 4) for v in contract.position_min],
        "workspace_max": [round(v + workspace_margin, 4) for v in contract.position_max],
        "max_translation": round(headroom * max(contract.translation_max, box), 4),
        "max_rotation": round(min(math.pi, max(headroom * max(contract.rotation_max, rotation_bound), 0.05)), 4),
        "max_gripper_delta": 1.0,
        "gripper_min": 0.0,
        "gripper_max": 1.0,
    }


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jepa_ac.data.contract",
        description="Measure a dataset's control contract and derive planning and safety defaults from it.",
        epilog="example: python -m jepa_ac.data.contract data/my_env --fps 4 --planning-out planning.json",
    )
    parser.add_argument("data", help="DROID-layout dataset folder or list file, or a LeRobot dataset")
    parser.add_argument("--fps", type=float, default=None,
                        help="measure steps at this clip rate (the training --fps); default: every recorded row")
    parser.add_argument("--env-id", default=None, help="env id for planning.json (default: the dataset's)")
    parser.add_argument("--image-size", type=int, default=None, help="planning render size (default: the dataset's)")
    parser.add_argument("--write", action="store_true",
                        help="store the contract (at the recorded rate) in the dataset's dataset_info.json")
    parser.add_argument("--planning-out", type=Path, default=None, help="write the derived planning.json here")
    parser.add_argument("--safety-out", type=Path, default=None, help="write the derived safety limits (YAML) here")
    return parser


def main(argv: list[str] | None = None) -> int:
    from jepa_ac.data import layout
    from jepa_ac.data.layout import DatasetInfo
    from jepa_ac.files import write_json_atomic

    args = build_parser().parse_args(argv)
    info_path = Path(args.data) / layout.DATASET_INFO_FILE
    info = DatasetInfo.load(info_path) if info_path.is_file() else None
    contract = contract_for_dataset(args.data, fps=args.fps)
    if args.write:
        if info is None:
            raise SystemExit(f"error: {info_path} not found: --write needs a jepa_ac dataset")
        native = contract if args.fps is None else contract_for_dataset(args.data)
        info = dataclasses.replace(info, control=native)
        write_json_atomic(info_path, info.to_dict())
        print(f"wrote the control contract into {info_path}", file=sys.stderr)
    env_id = args.env_id or (info.env_id if info else Path(args.data).name)
    size = args.image_size or (info.image_size if info and isinstance(info.image_size, int) else None)
    planning = planning_defaults(contract, env_id, size)
    if args.planning_out:
        write_json_atomic(args.planning_out, planning)
    if args.safety_out:
        import yaml

        args.safety_out.write_text("# derived by python -m jepa_ac.data.contract from " + str(args.data) + "\n"
                                   + yaml.safe_dump(safety_limits(contract), sort_keys=False))
    print(json.dumps({"control": contract.to_dict(), "planning": planning, "safety": safety_limits(contract)}, indent=2))
    return 0


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
