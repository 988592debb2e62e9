"""Two cameras, two world models, one planner (issue 31): does a second view fix the depth error?

The shipped model sees the scene from the front camera, and its failures are 2-7 cm misses along
that camera's depth axis. v3 (`experiments/default_model/model`, the shipped model's ancestor) was
trained from the side camera, whose depth axis is another one. Here both plan together, with no
training: the env renders the front and the side view side by side ([H, 2W, 3]), each model encodes
its own half, rolls out its own latents, and a candidate's energy is the mean of the two views' L1
energies (the mean over both views' tokens). The observed latent distance that settling and
patience watch is the same two-view mean. The planning settings are the shipped planning.json's.

    .venv/bin/python experiments/two_view/run.py --env reach --episodes 20 --out experiments/two_view/seeds0
    .venv/bin/python experiments/two_view/run.py --env push --episodes 20 --views front --out ...   # one view, same code

Any `python -m jepa_ac.evaluate` flag works (--seed, --threads, --resume, --dtype ...); `--checkpoint`
is the front model (default: the shipped one), `--side-checkpoint` the side model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from jepa_ac import envs  # noqa: F401 - picks the headless GL backend before mujoco loads
from jepa_ac.cli.args import load_model_from_args, planning_dtype
from jepa_ac.envs import scene
from jepa_ac.envs.franka_env import FrankaEnv
from jepa_ac.evaluate import build_parser, evaluate, merge_results, resolve_envs, write_markdown
from jepa_ac.model.preprocess import check_frames
from jepa_ac.world_model import WorldModel, load_world_model

import mujoco  # noqa: E402 - after jepa_ac.envs

SIDE_CHECKPOINT = Path(__file__).resolve().parents[1] / "default_model" / "model"


class TwoViewWorldModel:
    """World models that each see their own camera, planning as one.

    Frames are the views side by side ([T, H, V*W, 3]); a latent is the views' latents concatenated
    over tokens ([T, N1 + N2, D]), so the L1 energy (a mean over tokens) is the mean of the views'
    energies. Each view rolls out with its own predictor (and its own ensemble members when
    `ensemble` is asked for and it has some)."""

    def __init__(self, views: Sequence[WorldModel]) -> None:
        dims = {wm.encoder_config.embed_dim for wm in views}
        if len(dims) != 1:
            raise ValueError(f"the views' encoders must share the latent width, got {sorted(dims)}")
        self.views = tuple(views)
        first = self.views[0]
        self.ops, self.backend = first.ops, first.backend
        self.encoder_config, self.predictor_config = first.encoder_config, first.predictor_config
        self.members = tuple(m for wm in self.views for m in wm.members)  # CEMPlanner checks ensemble against these
        self.provenance = {"views": [wm.provenance.get("source") for wm in self.views]}
        self._tokens = [wm.tokens_per_frame for wm in self.views]

    @property
    def image_size(self) -> int:
        return self.views[0].image_size

    @property
    def tokens_per_frame(self) -> int:
        return sum(self._tokens)

    def split(self, z: Any) -> list[Any]:
        """[..., N1 + N2, D] -> the views' latents [..., Ni, D]."""
        bounds = np.cumsum([0, *self._tokens])
        return [z[..., int(a):int(b), :] for a, b in zip(bounds[:-1], bounds[1:])]

    def encode(self, frames: np.ndarray, **_: Any) -> Any:
        frames = check_frames(frames)  # [T, H, V*W, 3]
        width = frames.shape[2] // len(self.views)
        parts = [wm.encode(frames[:, :, v * width:(v + 1) * width]) for v, wm in enumerate(self.views)]
        return self.ops.concat(parts, axis=1)  # [T, N1 + N2, D]

    def rollout(self, z_context: Any, state: Any, actions: Any) -> Any:
        parts = [wm.rollout(z, state, actions) for wm, z in zip(self.views, self.split(z_context))]
        return self.ops.concat(parts, axis=2)  # [S, H, N1 + N2, D]

    def energy(self, z: Any, z_goal: Any, weights: Any = None) -> Any:
        return WorldModel.energy(self, z, z_goal, weights)

    def horizon_energy(self, imagined: Any, z_goal: Any, over: str = "last", weights: Any = None) -> Any:
        return WorldModel.horizon_energy(self, imagined, z_goal, over, weights)

    def rollout_energy(self, z_context: Any, state: Any, actions: Any, z_goal: Any, over: str = "last",
                       weights: Any = None, ensemble: bool = False) -> Any:
        if weights is not None:
            raise ValueError("two-view planning takes the plain L1 energy (cem.goal_change_weighting off)")
        energy = None
        for wm, z, goal in zip(self.views, self.split(z_context), self.split(z_goal)):
            e = wm.rollout_energy(z, state, actions, goal, over, None, ensemble and bool(wm.members))
            energy = e if energy is None else energy + e
        return energy / len(self.views)

    def ensemble_energy(self, energy: Any, z_context: Any, state: Any, actions: Any, z_goal: Any,
                        over: str = "last", weights: Any = None) -> Any:
        """The energy CEM scored the candidates with (each view's ensemble mean, then the views' mean)."""
        return self.rollout_energy(z_context, state, actions, z_goal, over, weights, ensemble=True)


def render_views(views: Sequence[str]):
    """A `FrankaEnv._render` that shows the exterior camera from each of `views`, side by side
    ([H, V*W, 3]); other cameras (the wrist) render as before."""
    plain = FrankaEnv._render
    poses = {}
    for name in views:
        pos, lookat = scene.EXTERIOR_VIEWS[name]
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, scene.look_at_quat(pos, lookat))
        poses[name] = (np.asarray(pos, np.float64), mat)

    def render(self: FrankaEnv, data: mujoco.MjData, camera: str) -> np.ndarray:
        if camera != scene.EXTERIOR_CAMERA:
            return plain(self, data, camera)
        cam = self._cam_ids[camera]
        kept = data.cam_xpos[cam].copy(), data.cam_xmat[cam].copy()
        images = []
        try:
            for pos, mat in poses.values():  # the camera moved for this render only
                data.cam_xpos[cam], data.cam_xmat[cam] = pos, mat
                images.append(plain(self, data, camera))
        finally:
            data.cam_xpos[cam], data.cam_xmat[cam] = kept
        return np.concatenate(images, axis=1)

    return render


def main(argv: list[str] | None = None) -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--side-checkpoint", type=Path, default=SIDE_CHECKPOINT)
    extra.add_argument("--views", nargs="+", choices=("front", "side"), default=["front", "side"])
    ours, rest = extra.parse_known_args(argv)
    args = build_parser().parse_args(rest)
    logging.getLogger("jepa_ac.robot.safety").setLevel(logging.ERROR)
    models = {"front": lambda: load_model_from_args(args),
              "side": lambda: load_world_model(ours.side_checkpoint, dtype=planning_dtype(args))}
    loaded = [models[v]() for v in ours.views]
    wm = TwoViewWorldModel(loaded)
    FrankaEnv._render = render_views(ours.views)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for env_id in resolve_envs(args.env):
        row, _ = evaluate(env_id, "planner", args.episodes, args.seed, args, wm=wm, progress=not args.no_progress,
                          episodes_dir=args.out / "episodes", resume=args.resume)
        row["views"] = list(ours.views)
        row["side_checkpoint"] = str(ours.side_checkpoint) if "side" in ours.views else None
        rows.append(row)
        print(f"{env_id} views {'+'.join(ours.views)}: {row['successes']}/{row['episodes']} = "
              f"{row['success_rate']:.2f}, final {row['mean_final_task_distance']:.3f} m, "
              f"{row.get('step_s_mean', float('nan'))} s/step", flush=True)
    results = merge_results(args.out / "results.json", rows)
    write_markdown(args.out / "results.md", results)
    json.dump({"argv": sys.argv[1:] if argv is None else argv}, open(args.out / "command.json", "w"))


if __name__ == "__main__":
    main()
