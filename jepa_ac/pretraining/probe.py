"""Linear probes on frozen encoder features: how well do they locate the end effector and the object?

    python -m jepa_ac.pretraining.probe --encoder runs/pretrain/final --out experiments/pretraining

Rolls out the scripted push expert with noise in `jepa_ac/FrankaPush-v0` (so arm and block move
around the table), records each camera frame with the simulator's end-effector and block
positions, encodes every frame with each encoder (the trained one, a randomly initialised one of
the same architecture, and raw pixels at the same resolution as a reference), and fits ridge
regression from the flattened per-frame features to the positions, cross-validated over episodes
(5 folds; alpha chosen on a validation fold), then reports RMSE (cm) and R^2 of the held-out
predictions. Several encoders (e.g. the same run at two lengths) share one table. Writes
`probe.json` and `probe.md`.

    python -m jepa_ac.pretraining.probe --encoder runs/pretrain_default/final runs/pretrain_long/final \
        --names "600 steps" "2400 steps"
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TARGETS = ("ee", "object")
ALPHAS = tuple(10.0**k for k in range(-2, 6))


@dataclass
class ProbeData:
    frames: np.ndarray  # [M, H, W, 3] uint8
    ee: np.ndarray  # [M, 3] end-effector (TCP) position, m
    object: np.ndarray  # [M, 3] block position, m
    episode: np.ndarray  # [M] episode index


def collect_probe_data(episodes: int, image_size: int, noise: float, seed: int,
                       env_id: str = "jepa_ac/FrankaPush-v0", frame_stride: int = 1) -> ProbeData:
    """Frames and privileged positions from noisy expert rollouts (episode i seeded by (seed, i)), every
    `frame_stride`-th frame of each episode (a larger stride over more episodes shows the probe more
    distinct block positions for the same number of frames: the block moves in few frames)."""
    if frame_stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {frame_stride!r}")
    import gymnasium as gym

    import jepa_ac.envs
    from jepa_ac.data.collection import episode_seed
    from jepa_ac.model.pose import POSITION

    env = gym.make(env_id, image_size=image_size)
    frames, ee, obj, ep = [], [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, i))
        expert = jepa_ac.envs.make_expert(env, noise=noise, seed=episode_seed(seed + 1, i))
        expert.reset()
        done, t = False, 0
        while not done:
            if t % frame_stride == 0:
                frames.append(obs["image"])
                ee.append(obs["state"][POSITION].copy())
                obj.append(env.unwrapped.object_pose("block")[0].copy())
                ep.append(i)
            t += 1
            obs, _, terminated, truncated, _ = env.step(expert.act(obs))
            done = terminated or truncated
    env.close()
    return ProbeData(np.stack(frames), np.asarray(ee, np.float64), np.asarray(obj, np.float64), np.asarray(ep))


def encoder_features(wm, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Frozen features of each frame (an image encoded as a repeated tubelet), flattened: [M, N*D]."""
    out = []
    for start in range(0, len(frames), batch):
        z = np.asarray(wm.encode_frames(frames[start : start + batch]), dtype=np.float32)  # [b, N, D]
        out.append(z.reshape(len(z), -1))
    return np.concatenate(out)


def pixel_features(frames: np.ndarray, size: int) -> np.ndarray:
    """Raw pixels at the encoder's resolution (the same preprocessing), flattened: [M, size*size*3]."""
    from jepa_ac.model.preprocess import normalize, resize_center_crop

    return normalize(resize_center_crop(frames, size)).reshape(len(frames), -1)


def ridge_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression (standardised features, centred targets) solved in the dual: [M', K]."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    return KernelRidge(a @ a.T, y_train).predict(b @ a.T, ridge_penalty(alpha, a.shape[1]))


def ridge_penalty(alpha: float, dims: int) -> float:
    """The dual ridge penalty for `alpha` on `dims` standardised features (alphas stay comparable across widths)."""
    return alpha * dims / 1000


class KernelRidge:
    """Dual ridge on a fixed linear gram matrix, for many penalties at the cost of one eigendecomposition."""

    def __init__(self, gram: np.ndarray, y: np.ndarray) -> None:
        self.y_mean = y.mean(0)
        self.eigval, self.eigvec = np.linalg.eigh(gram)  # gram [M, M]
        self.projected = self.eigvec.T @ (y - self.y_mean)  # [M, K]

    def predict(self, cross_gram: np.ndarray, penalty: float) -> np.ndarray:
        """cross_gram [M', M] (test x train) -> predictions [M', K]."""
        coef = self.eigvec @ (self.projected / (self.eigval + penalty)[:, None])  # [M, K]
        return cross_gram @ coef + self.y_mean


def probe(features: np.ndarray, targets: np.ndarray, episode: np.ndarray, seed: int = 0,
          folds: int = 5) -> dict[str, float]:
    """Cross-validated over episodes: each of `folds` episode groups is held out once (alpha picked on
    the next group with a fit on the rest, then refit on the rest plus that group; features
    standardised with the statistics of the non-held-out frames). RMSE (cm) and R^2 of the pooled
    held-out predictions, and the spread of the per-fold RMSE."""
    episodes = np.unique(episode)
    if len(episodes) < 3:
        raise ValueError(f"the probe needs at least 3 episodes (train / validation / test), got {len(episodes)}")
    folds = min(folds, len(episodes))
    groups = np.array_split(np.random.default_rng(seed).permutation(episodes), folds)
    pred = np.zeros_like(targets, dtype=np.float64)
    fold_rmse, alphas = [], []

    def rmse(p, true):
        return float(np.sqrt(((p - true) ** 2).sum(1).mean()))

    for f in range(folds):
        te = np.isin(episode, groups[f])
        va = np.isin(episode, groups[(f + 1) % folds])
        tr, fit = ~(te | va), ~te
        mean, std = features[fit].mean(0), features[fit].std(0) + 1e-6
        x = (features - mean) / std  # [M, F] float32
        gram = (x @ x[fit].T).astype(np.float64)  # [M, M_fit]
        tr_cols = tr[fit]  # the training frames among the gram's columns
        selection = KernelRidge(gram[np.ix_(tr, tr_cols)], targets[tr])
        best = min(ALPHAS, key=lambda a: rmse(selection.predict(gram[np.ix_(va, tr_cols)], ridge_penalty(a, x.shape[1])),
                                              targets[va]))
        pred[te] = KernelRidge(gram[fit], targets[fit]).predict(gram[te], ridge_penalty(best, x.shape[1]))
        fold_rmse.append(100 * rmse(pred[te], targets[te]))
        alphas.append(best)
    r2 = 1.0 - ((pred - targets) ** 2).sum() / ((targets - targets.mean(0)) ** 2).sum()
    return {"rmse_cm": 100 * rmse(pred, targets), "r2": float(r2), "rmse_cm_fold_std": float(np.std(fold_rmse)),
            "fold_rmse_cm": fold_rmse, "alphas": alphas, "test_frames": int(len(targets)), "folds": folds}


def random_init_like(wm, seed: int):
    """A world model with the same encoder architecture and fresh (upstream-style) initial weights."""
    import torch

    from jepa_ac.world_model import WorldModel, make_backend

    torch.manual_seed(seed)
    return WorldModel(make_backend("torch", wm.encoder_config, None), wm.encoder_config, None,
                      provenance={"init": "random", "seed": seed})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m jepa_ac.pretraining.probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", required=True, nargs="+",
                        help="encoder checkpoints (our folders, e.g. runs/pretrain/final), same architecture")
    parser.add_argument("--names", nargs="+", help="row names for the encoders (default: 'pretrained', or the paths)")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=128, help="env render size (as the training data)")
    parser.add_argument("--frame-stride", type=int, default=1,
                        help="keep every k-th frame of each episode (more episodes per frame: more block positions)")
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path("runs/probe"))
    args = parser.parse_args(argv)
    names = args.names or (["pretrained"] if len(args.encoder) == 1 else [str(e) for e in args.encoder])
    if len(names) != len(args.encoder):
        parser.error(f"--names gives {len(names)} names for {len(args.encoder)} encoders")
    import jepa_ac

    start = time.perf_counter()
    data = collect_probe_data(args.episodes, args.image_size, args.noise, args.seed,
                              frame_stride=args.frame_stride)
    models = [jepa_ac.load_world_model(e, load_predictor=False) for e in args.encoder]
    arch = {json.dumps(m.encoder_config.to_dict(), sort_keys=True) for m in models}
    if len(arch) > 1:
        parser.error("the encoders differ in architecture; the random-init row needs one architecture")
    size = models[0].encoder_config.img_size
    features = {name: encoder_features(m, data.frames) for name, m in zip(names, models)}
    features["random_init"] = encoder_features(random_init_like(models[0], args.seed), data.frames)
    features["pixels"] = pixel_features(data.frames, size)
    results = {name: {target: probe(f, getattr(data, target), data.episode) for target in TARGETS}
               for name, f in features.items()}
    report = {"encoders": dict(zip(names, map(str, args.encoder))), "encoder_config": models[0].encoder_config.to_dict(),
              "frames": int(len(data.frames)), "episodes": args.episodes, "frame_stride": args.frame_stride,
              "noise": args.noise,
              "image_size": args.image_size, "features_dim": {k: int(v.shape[1]) for k, v in features.items()},
              "results": results, "seconds": time.perf_counter() - start}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    random = results["random_init"]
    rows = ["| features | dims | end effector RMSE (cm) | end effector R² | block RMSE (cm) | block R² | "
            "RMSE vs random init (ee / block) |", "|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        ratio = f"{res['ee']['rmse_cm'] / random['ee']['rmse_cm']:.2f}x / {res['object']['rmse_cm'] / random['object']['rmse_cm']:.2f}x"
        rows.append(f"| {name} | {features[name].shape[1]} | {res['ee']['rmse_cm']:.2f} ± {res['ee']['rmse_cm_fold_std']:.2f} | "
                    f"{res['ee']['r2']:.3f} | {res['object']['rmse_cm']:.2f} ± {res['object']['rmse_cm_fold_std']:.2f} | "
                    f"{res['object']['r2']:.3f} | {ratio} |")
    changed = [f"--{name.replace('_', '-')} {getattr(args, name)}" for name in ("episodes", "frame_stride")
               if getattr(args, name) != parser.get_default(name)]  # the data flags given, as typed
    command = " ".join(["python -m jepa_ac.pretraining.probe", "--encoder", *map(str, args.encoder), *changed,
                        *(["--names", *(f'"{n}"' for n in names)] if args.names else [])])
    (args.out / "probe.md").write_text(
        f"# Linear probes on frozen features\n\n`{command}`: {len(data.frames)} frames from {args.episodes} noisy "
        f"push-expert episodes (every {args.frame_stride} frame(s) of each; noise {args.noise}, {args.image_size} px renders), ridge regression from flattened "
        "per-frame features to positions, cross-validation over episodes (5 folds) (± is the spread of the per-fold "
        "RMSE).\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    return report


if __name__ == "__main__":
    from jepa_ac.cli.errors import run_cli

    run_cli(main)
