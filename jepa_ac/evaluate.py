"""Evaluate a planner (or a baseline policy) over seeded episodes of the simulated Franka tasks, or of
any gymnasium env through an adapter.

    python -m jepa_ac.evaluate --env jepa_ac/FrankaReach-v0 --episodes 50                # the shipped default model
    python -m jepa_ac.evaluate --env all --episodes 50 --policy random expert            # baselines, same seeds
    python -m jepa_ac.evaluate --env push --episodes 20 --checkpoint runs/predictor/final --out runs/eval_push
    python -m jepa_ac.evaluate --env my_hooks:FetchReach-v4 --checkpoint runs/fetch/final --policy planner random

Any other env is named `module:EnvId` (or a registered id) and planned through
`jepa_ac.robot.env_adapter`: the checkpoint's control.json gives the hooks its data was recorded
with, the command fit and the planning defaults derived from the data; `--*-hook` flags replace
hooks (success and the goal image usually need theirs: `--success-hook`, `--goal-hook`).

Episode i of every run uses the env seed derived from (`--seed`, i) (`jepa_ac.data.collection.episode_seed`),
so the planner, the random policy and the scripted expert face the same scenes. The planner runs
closed-loop MPC with the planning defaults of the checkpoint (planning.json; `--set` and its shortcut flags override) and
stops on the patience rule or the step budget; the baselines run the step budget. Success is the
simulator's at the end of the episode.

Writes to `--out` (default runs/evaluate): `results.json` (one row per (env, policy); a new run
replaces its row and keeps the others, so several runs build one table), `results.md` (the table)
and `episodes/<task>_<policy>.json` (per-episode records and the run's settings). Each episode is
kept as it finishes (`episodes/<task>_<policy>.partial.jsonl`): `--resume` takes the episodes that
an interrupted run, or a shorter one, finished with the same settings and plays only the rest.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import sys
import time
from concurrent.futures import as_completed
from pathlib import Path
from typing import Any, Callable

import numpy as np

from jepa_ac.cli.args import (DEFAULT_CHECKPOINT, add_env_hook_args, add_model_args, add_planning_args,
                              env_from_args, is_franka_env, load_model_from_args, planning_dtype, resolve_env_name)
from jepa_ac.cli.episode_journal import EpisodeJournal, checkpoint_stamp
from jepa_ac.cli.worker_pool import worker_pool
from jepa_ac.files import write_atomic, write_json_atomic
from jepa_ac.world_model.multi_view import for_view_setting
from jepa_ac.world_model.precision import host_isa
from jepa_ac.envs import ENV_IDS as FRANKA_ENV_IDS

ENV_IDS = tuple(FRANKA_ENV_IDS)  # reach, push, pick-and-place
POLICY_ORDER = ("planner", "random", "expert")
RESULTS_FORMAT = "jepa_ac.evaluate/1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", nargs="+", default=["all"],
                        help="env ids, short names (reach, push, pickplace), 'all' (the three tasks), or any env "
                             "as module:EnvId")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--policy", nargs="+", default=["planner"], choices=POLICY_ORDER)
    parser.add_argument("--seed", type=int, default=0, help="base seed; episode i uses a seed derived from (seed, i)")
    parser.add_argument("--expert-noise", type=float, default=0.0, help="action noise of the scripted expert")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate"))
    parser.add_argument("--workers", type=int, default=1,
                        help="episodes run in this many processes at once, each with its own env and model (use "
                             "with --threads 1 on a CPU; planning latencies are then those of one thread)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--resume", action="store_true",
                        help="take the episodes that an interrupted run (or a shorter one) with the same settings "
                             "finished into --out, and play only the rest; without it a run starts over")
    parser.add_argument("--server", help="run the planner's episodes through a planning server (ws://HOST:PORT, "
                                         "`python -m jepa_ac.serve`) with its settings for each task, as a robot would")
    parser.add_argument("--token", help="the server's shared token (or set $JEPA_AC_TOKEN)")
    add_model_args(parser, checkpoint_help="planner's world model (default: the shipped jepa_ac/assets/default_model)")
    add_planning_args(parser)
    add_env_hook_args(parser)
    return parser


def resolve_envs(names: list[str]) -> list[str]:
    envs: list[str] = []
    for name in names:
        try:
            ids = ENV_IDS if name == "all" else (resolve_env_name(name),)
        except ValueError as err:
            raise SystemExit(f"error: {err} or 'all'") from None
        for env_id in ids:
            if env_id not in envs:
                envs.append(env_id)
    return envs


# -- one (env, policy) run -------------------------------------------------------------------------
def connect(args: argparse.Namespace, env_id: str) -> Any:
    """A `PlannerClient` to `--server` asking for `env_id`'s settings."""
    from jepa_ac.serving.client import PlannerClient

    client = PlannerClient(args.server, token=args.token or os.environ.get("JEPA_AC_TOKEN") or None, timeout=600.0)
    client.task = env_id
    return client


def policy_defaults(env_id: str, policy: str, seed: int, args: argparse.Namespace) -> tuple[Any, Any]:
    """(planning defaults, `EnvAdapter` or None) that `policy` runs `env_id` with (planning.json or, for
    an env that is not ours, the checkpoint's data; then the flags; with --server, the server's
    settings for the task)."""
    if policy == "expert" and not is_franka_env(env_id):
        raise SystemExit(f"error: {env_id} has no scripted expert (those drive the jepa_ac/ Franka envs)")
    adapter = None
    if getattr(args, "server", None) and policy == "planner":
        from jepa_ac.planning.defaults import PlanningDefaults

        if not is_franka_env(env_id):
            adapter = env_from_args(args, env_id, seed=seed)[1]
        with connect(args, env_id) as client:
            planning = client.reset()["planning"]
        return PlanningDefaults.from_dict(planning, source=f"{args.server}'s settings for {env_id}"), adapter
    defaults, adapter = env_from_args(args, env_id, seed=seed)
    if policy != "planner":  # baselines have no latent distance to watch (nor use goals): they run the step budget
        defaults = defaults.replace(mpc={"patience": None, "subgoals": False})
    return defaults, adapter


class EpisodeRunner:
    """Everything one process needs to run seeded episodes of one (env, policy): the env, the
    planning defaults and (planner) the world model, made once and reused for every episode.
    `make_planner(wm, cem, spec)` makes each episode's planner (default `CEMPlanner`; an experiment
    passes its own, e.g. with another `Sampler`)."""

    def __init__(self, env_id: str, policy: str, seed: int, defaults: Any, args: argparse.Namespace,
                 wm: Any = None, adapter: Any = None, make_planner: Callable[..., Any] | None = None) -> None:
        from jepa_ac.control.closed_loop import make_env, warm_up
        from jepa_ac.planning import CEMPlanner

        self.policy, self.seed, self.defaults, self.args, self.adapter = policy, seed, defaults, args, adapter
        self.make_planner = make_planner or CEMPlanner
        self.client = connect(args, env_id) if policy == "planner" and getattr(args, "server", None) else None
        if policy == "planner" and wm is None and self.client is None:
            wm = load_model_from_args(args)
        self.wm = wm if wm is None else for_view_setting(wm, defaults.env.exterior_view)  # the task's views
        self.env = make_env(env_id, defaults.env, step_budget=defaults.mpc.max_steps, adapter=adapter)
        if self.wm is not None:  # keep one-time initialisation / compilation out of the latencies
            obs, info = self.env.reset(seed=seed)
            frame, state = (obs["image"], obs["state"]) if adapter is None else adapter.observe(obs, info, self.env)
            warm_up(self.wm, defaults.cem, defaults.action, frame, state)

    def run(self, index: int) -> dict[str, Any]:
        """Episode `index` (env seed from (seed, index)) -> its record; an error names the episode."""
        from jepa_ac.data.collection import episode_seed

        s = episode_seed(self.seed, index)
        try:
            return self._run(index, s)
        except Exception as err:
            raise RuntimeError(f"episode {index} (env seed {s}) failed: {type(err).__name__}: {err}") from err

    def _run(self, index: int, s: int) -> dict[str, Any]:
        from jepa_ac.control.closed_loop import ExpertPolicy, RandomPolicy, run_closed_loop
        from jepa_ac.control import Controller

        defaults = self.defaults
        if self.client is not None:  # the server's controller, reseeded for this episode
            agent, self.client.seed = self.client, s
        elif self.policy == "planner":
            agent = Controller(self.make_planner(self.wm, defaults.cem.replace(seed=s), defaults.action), defaults.mpc)
        elif self.policy == "random":
            agent = RandomPolicy(defaults.action, seed=s)
        else:
            agent = ExpertPolicy(self.env, noise=self.args.expert_noise, seed=s)
        report = run_closed_loop(self.env, agent, seed=s, mpc=defaults.mpc, adapter=self.adapter)
        record = {"index": index, **report.metrics()}
        record.pop("final_info")
        for key in ("action", "requested"):  # kept in plan's metrics.json; too long for 50 episodes a file
            record["per_step"].pop(key)
        return record

    def close(self) -> None:
        self.env.close()
        if self.client is not None:
            self.client.close()


_RUNNER: dict[str, EpisodeRunner] = {}  # the runner of a worker process


def _init_worker(env_id: str, policy: str, seed: int, args: argparse.Namespace,
                 make_planner: Callable[..., Any] | None) -> None:
    # the defaults are read again from `args` here (PlanningDefaults holds read-only mappings, which
    # do not pickle); the parent has read them already, so a bad setting never reaches this point
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    defaults, adapter = policy_defaults(env_id, policy, seed, args)
    _RUNNER["runner"] = EpisodeRunner(env_id, policy, seed, defaults, args, adapter=adapter, make_planner=make_planner)


def _run_in_worker(index: int) -> dict[str, Any]:
    return _RUNNER["runner"].run(index)


def evaluate(env_id: str, policy: str, episodes: int, seed: int, args: argparse.Namespace, wm: Any = None,
             progress: bool = True, make_planner: Callable[..., Any] | None = None,
             episodes_dir: Path | None = None, resume: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run `episodes` seeded episodes (in `args.workers` processes); returns (summary row, per-episode
    records, in episode order). Each worker process makes its own env and loads its own model.
    `make_planner`: see `EpisodeRunner` (with workers it must pickle: a module-level function or class);
    the row records its repr. With `episodes_dir`, each episode is journaled as it finishes and the run
    ends by writing `<task>_<policy>.json` there; `resume` first takes the episodes that an earlier run
    with the same settings finished (`jepa_ac.cli.episode_journal`)."""
    from tqdm import tqdm

    start = time.perf_counter()
    defaults, adapter = policy_defaults(env_id, policy, seed, args)  # here: bad settings stop before any worker starts
    journal, kept = None, {}
    if episodes_dir is not None:
        name = policy + ("_subgoals" if defaults.mpc.subgoals else "")
        journal = EpisodeJournal(episodes_dir / f"{task_name(env_id)}_{name}.json",
                                 run_settings(env_id, policy, seed, defaults, adapter, args, make_planner))
        if resume:
            kept = {i: r for i, r in journal.recorded().items() if i < episodes}
        elif journal.path.is_file():
            print(f"note: starting over; {journal.path} (an interrupted run's episodes) is replaced. "
                  "--resume takes such episodes when the settings match", file=sys.stderr, flush=True)
        journal.start(kept.values())
    todo = [i for i in range(episodes) if i not in kept]
    workers = min(getattr(args, "workers", 1) or 1, max(len(todo), 1))
    records: list[dict[str, Any]] = list(kept.values())
    bar = tqdm(total=episodes, initial=len(kept), desc=f"{env_id.split('/')[-1]} {policy}", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def done(record: dict[str, Any]) -> None:
        record = rounded(record)
        records.append(record)
        if journal is not None:
            journal.add(record)
        bar.update(1)
        bar.set_postfix(success=f"{np.mean([r['success'] for r in records]):.2f}", steps=record["steps"])

    if kept:
        print(f"{env_id} {policy}: {len(kept)} of {episodes} episodes from the earlier run in {episodes_dir}",
              file=sys.stderr, flush=True)
    try:
        if todo and workers == 1:
            runner = EpisodeRunner(env_id, policy, seed, defaults, args, wm=wm, adapter=adapter,
                                   make_planner=make_planner)
            try:
                for i in todo:
                    done(runner.run(i))
            finally:
                runner.close()
        elif todo:
            with worker_pool(workers, initializer=_init_worker,
                             initargs=(env_id, policy, seed, args, make_planner)) as pool:
                futures = [pool.submit(_run_in_worker, i) for i in todo]
                try:
                    for future in as_completed(futures):
                        done(future.result())
                except BaseException:  # a failed episode (or Ctrl-C): drop the episodes not started yet
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
        if journal is not None:
            journal.close()
    records.sort(key=lambda r: r["index"])
    row = summarize(env_id, policy, seed, records, defaults, args)
    if make_planner is not None and policy == "planner":
        row["make_planner"] = repr(make_planner)
    if adapter is not None:
        row["adapter"] = adapter.describe()
    row["wall_s"] = time.perf_counter() - start
    if kept:
        row["resumed_episodes"] = len(kept)  # played by an earlier run; wall_s is this run's
    if journal is not None:
        write_json_atomic(journal.episodes_path, {"summary": row, "settings": journal.settings, "episodes": records},
                          indent=None)
        journal.finish()
    return row, records


def run_settings(env_id: str, policy: str, seed: int, defaults: Any, adapter: Any, args: argparse.Namespace,
                 make_planner: Callable[..., Any] | None) -> dict[str, Any]:
    """What decides how episode i plays: runs with equal settings play it alike, so `--resume` may join them."""
    settings: dict[str, Any] = {"env_id": env_id, "policy": policy, "seed": seed, "planning": defaults.to_dict()}
    if adapter is not None:
        settings["adapter"] = adapter.describe()
    if policy == "planner" and getattr(args, "server", None):
        settings["server"] = args.server
    elif policy == "planner":
        checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
        settings.update(checkpoint=str(checkpoint), checkpoint_files=checkpoint_stamp(checkpoint),
                        model={k: getattr(args, k, None) for k in ("encoder", "predictor", "arch", "backend", "device")},
                        dtype=planning_dtype(args),
                        make_planner=None if make_planner is None else _callable_name(make_planner))
    elif policy == "expert":
        settings["expert_noise"] = args.expert_noise
    return settings


def _callable_name(fn: Callable[..., Any]) -> str:
    """A name for an experiment's planner factory: the function's own name is the same in every process;
    a partial's bound arguments enter by repr (one that shows an object's address never matches again,
    so such a run is never joined to another)."""
    inner = getattr(fn, "func", fn)  # functools.partial
    name = f"{getattr(inner, '__module__', '?')}.{getattr(inner, '__qualname__', type(inner).__qualname__)}"
    if inner is not fn:
        keywords = {k: repr(v) for k, v in sorted(getattr(fn, "keywords", {}).items())}
        name += f"(*{getattr(fn, 'args', ())!r}, **{keywords})"
    return name


def task_name(env_id: str) -> str:
    """"FrankaReach-v0" for "jepa_ac/FrankaReach-v0", "FetchReach-v4" for "my_hooks:FetchReach-v4"."""
    return env_id.rpartition(":")[2].split("/")[-1]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def summarize(env_id: str, policy: str, seed: int, records: list[dict[str, Any]], defaults: Any,
              args: argparse.Namespace) -> dict[str, Any]:
    n = len(records)
    successes = sum(bool(r["success"]) for r in records)
    distances = [r["final_task_distance"] for r in records if r["final_task_distance"] is not None]
    plan_s = [t for r in records for t, back in zip(r["per_step"]["plan_s"], r["per_step"]["returned"])
              if not back]  # a move back to a goal's best state does not plan
    row = {
        "env_id": env_id, "task": task_name(env_id), "policy": policy, "subgoals": defaults.mpc.subgoals,
        "episodes": n, "seed": seed,
        "successes": successes, "success_rate": successes / n if n else math.nan,
        "success_rate_ci95": list(wilson_interval(successes, n)),
        "task_distance_name": records[0]["task_distance_name"] if records else None,
        "mean_final_task_distance": float(np.mean(distances)) if distances else None,
        "mean_steps": float(np.mean([r["steps"] for r in records])) if records else None,
        "plan_s_mean": float(np.mean(plan_s)) if plan_s else None,
        "plan_s_p90": float(np.percentile(plan_s, 90)) if plan_s else None,
        "mean_final_latent_distance": _mean([r["final_latent_distance"] for r in records]),
        "samples_per_step": _ratio([r.get("samples_evaluated") for r in records], [r["steps"] for r in records]),
        "replan_fraction": _ratio([r.get("replans") for r in records], [r["steps"] for r in records]),
        "hold_fraction": _ratio([r.get("holds") for r in records], [r["steps"] for r in records]),
        "return_fraction": _ratio([r.get("returns") for r in records], [r["steps"] for r in records]),
        "episode_seeds": [r["seed"] for r in records],
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "env": {"image_size": defaults.env.image_size, "control_hz": defaults.env.control_hz,
                "exterior_view": defaults.env.exterior_view},
        "mpc": dict(defaults.to_dict()["mpc"]),
        "mean_goals_attempted": _mean([r.get("goals_attempted") for r in records]) if defaults.mpc.subgoals else None,
        "mean_rounds": _mean([r.get("rounds", 1) for r in records]) if defaults.mpc.subgoal_rounds > 1 else None,
    }
    if policy == "planner":
        server = getattr(args, "server", None)
        row.update(checkpoint=f"server {server}" if server else str(args.checkpoint or DEFAULT_CHECKPOINT),
                   backend=None if server else args.backend,
                   dtype=None if server else planning_dtype(args), isa=host_isa()["row"],
                   threads=None if server else args.threads,  # None: the commands' default (cli.args.default_threads)
                   cem=defaults.to_dict()["cem"], action=defaults.to_dict()["action"])
    elif policy == "random":
        row["action"] = defaults.to_dict()["action"]
    else:
        row["expert_noise"] = args.expert_noise
    return row


def rounded(value: Any, digits: int = 6) -> Any:
    """Floats rounded to `digits` decimals, recursively (keeps the per-episode files small)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def _ratio(numerators: list[Any], denominators: list[int]) -> float | None:
    """sum(numerators) / sum(denominators) over the records that have a numerator (planner runs)."""
    pairs = [(n, d) for n, d in zip(numerators, denominators) if n is not None]
    total = sum(d for _, d in pairs)
    return float(sum(n for n, _ in pairs) / total) if pairs and total else None


def _mean(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# -- results table ---------------------------------------------------------------------------------
def row_key(row: dict[str, Any]) -> str:
    return f"{row['env_id']}|{policy_label(row)}"


def policy_label(row: dict[str, Any]) -> str:
    """"planner", "planner (sub-goals)", "random" or "expert"."""
    return row["policy"] + (" (sub-goals)" if row.get("subgoals") else "")


def merge_results(path: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Read `path` (if any), replace the rows of the same (env, policy), write it back atomically."""
    results = {"format": RESULTS_FORMAT, "rows": {}}
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("format") != RESULTS_FORMAT:
            raise SystemExit(f"error: {path} is not a {RESULTS_FORMAT} results file")
        results["rows"] = dict(old.get("rows", {}))
    for row in rows:
        results["rows"][row_key(row)] = row
    order = {p: i for i, p in enumerate(POLICY_ORDER)}
    env_order = {e: i for i, e in enumerate(ENV_IDS)}
    results["rows"] = dict(sorted(results["rows"].items(), key=lambda kv: (
        env_order.get(kv[1]["env_id"], 99), kv[1]["env_id"], order.get(kv[1]["policy"], 99), bool(kv[1].get("subgoals")))))
    write_json_atomic(path, results)
    return results


def markdown_table(results: dict[str, Any]) -> str:
    lines = [
        "| task | policy | episodes | success | 95% CI | final task distance (m) | steps | planning s/step (mean / p90) |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for row in results["rows"].values():
        lo, hi = row["success_rate_ci95"]
        dist = ("n/a" if row["mean_final_task_distance"] is None
                else f"{row['mean_final_task_distance']:.3f} ({row['task_distance_name']})")
        latency = ("n/a" if row["plan_s_mean"] is None or row["policy"] != "planner"
                   else f"{row['plan_s_mean']:.3f} / {row['plan_s_p90']:.3f}")
        lines.append(f"| {row['task']} | {policy_label(row)} | {row['episodes']} | {row['success_rate']:.2f} | "
                     f"{lo:.2f}-{hi:.2f} | {dist} | {row['mean_steps']:.1f} | {latency} |")
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, results: dict[str, Any]) -> None:
    header = ("# Closed-loop evaluation\n\n"
              "Regenerate with `python -m jepa_ac.evaluate` (see `results.json` for the command settings of each row: "
              "checkpoint, CEM, step budget, seeds). Episode i of every row uses the same env seed, derived from "
              "(seed, i). Success is the simulator's at the end of the episode.\n\n")
    write_atomic(path, header + markdown_table(results))


def main(argv: list[str] | None = None, make_planner: Callable[..., Any] | None = None) -> dict[str, Any]:
    """The command; `make_planner` (see `EpisodeRunner`) lets an experiment evaluate its own planner."""
    args = build_parser().parse_args(argv)
    # sim episodes clip often (e.g. opening an open gripper); clips are counted per episode instead
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    if args.episodes < 1:
        raise SystemExit("error: --episodes must be >= 1")
    if args.workers < 1:
        raise SystemExit("error: --workers must be >= 1")
    envs = resolve_envs(args.env)
    policies = [p for p in POLICY_ORDER if p in args.policy]
    wm = None
    if args.server and (args.config is not None or args.overrides):
        raise SystemExit("error: with --server the planning settings are the server's: give the planning flags to "
                         "`python -m jepa_ac.serve`")
    if args.server and make_planner is not None:
        raise SystemExit("error: with --server the server's planner plans; an experiment's planner runs in-process")
    if "planner" in policies and not args.server:
        try:
            wm = load_model_from_args(args)
        except FileNotFoundError as err:
            raise SystemExit(f"error: {err}") from None
    rows = []
    for env_id in envs:
        for policy in policies:
            row, _ = evaluate(env_id, policy, args.episodes, args.seed, args, wm=wm, progress=not args.no_progress,
                              make_planner=make_planner, episodes_dir=args.out / "episodes", resume=args.resume)
            rows.append(row)
            dist = row["mean_final_task_distance"]
            dist = "n/a" if dist is None else f"{dist:.3f} m"
            print(f"{env_id} {policy_label(row)}: success {row['successes']}/{row['episodes']} = {row['success_rate']:.2f}, "
                  f"final {row['task_distance_name']} {dist}, {row['mean_steps']:.1f} steps, "
                  f"{row['wall_s']:.0f} s", flush=True)
    results = merge_results(args.out / "results.json", rows)
    write_markdown(args.out / "results.md", results)
    print(markdown_table(results), end="")
    print(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'}")
    return results


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
