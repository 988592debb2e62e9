"""Linear probes on frozen encoder features: how well do they locate the end effector and the object?

    python -m jepa_ac.pretraining.probe --encoder runs/pretrain/final --out experiments/pretraining

Rolls out the scripted push expert with noise in `jepa_ac/FrankaPush-v0` (so arm and block move
around the table), records each camera frame with the simulator's end-effector and block
positions, encodes every frame with each encoder (the trained one, a randomly initialised one of
the same architecture, and raw pixels at the same resolution as a reference), and fits ridge
regression from the flattened per-frame features to the positions on training episodes (alpha
chosen on a validation split), then reports RMSE (cm) and R^2 on held-out episodes. Writes
`probe.json` and `probe.md`.
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
                       env_id: str = "jepa_ac/FrankaPush-v0") -> ProbeData:
    """Frames and privileged positions from noisy expert rollouts (episode i seeded by (seed, i))."""
    import gymnasium as gym

    import jepa_ac.envs
    from jepa_ac.collect import episode_seed

    env = gym.make(env_id, image_size=image_size)
    frames, ee, obj, ep = [], [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, i))
        expert = jepa_ac.envs.make_expert(env, noise=noise, seed=episode_seed(seed + 1, i))
        expert.reset()
        done = False
        while not done:
            frames.append(obs["image"])
            ee.append(obs["state"][:3].copy())
            obj.append(env.unwrapped.object_pose("block")[0].copy())
            ep.append(i)
            obs, _, terminated, truncated, _ = env.step(expert.act(obs))
            done = terminated or truncated
    env.close()
    return ProbeData(np.stack(frames), np.asarray(ee, np.float64), np.asarray(obj, np.float64), np.asarray(ep))


def encoder_features(wm, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """Frozen features of each frame (an image encoded as a repeated tubelet), flattened: [M, N*D]."""
    out = []
    for start in range(0, len(frames), batch):
        z = np.asarray(wm.encode(frames[start : start + batch]), dtype=np.float32)  # [b, N, D]
        out.append(z.reshape(len(z), -1))
    return np.concatenate(out)


def pixel_features(frames: np.ndarray, size: int) -> np.ndarray:
    """Raw pixels at the encoder's resolution (the same preprocessing), flattened: [M, size*size*3]."""
    from jepa_ac.preprocess import normalize, resize_center_crop

    return normalize(resize_center_crop(frames, size)).reshape(len(frames), -1)


def ridge_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression (standardised features, centred targets) solved in the dual: [M', K]."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    y_mean = y_train.mean(0)
    gram = a @ a.T  # [M, M]
    coef = np.linalg.solve(gram + alpha * a.shape[1] / 1000 * np.eye(len(a)), y_train - y_mean)  # [M, K]
    return (b @ a.T) @ coef + y_mean


def probe(features: np.ndarray, targets: np.ndarray, episode: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Fit on 70% of episodes (alpha picked on 15%), score on the held-out 15%: RMSE (cm) and R^2."""
    eps = np.random.default_rng(seed).permutation(np.unique(episode))
    n_val = n_test = max(1, int(round(0.15 * len(eps))))
    test_eps, val_eps, train_eps = eps[:n_test], eps[n_test : n_test + n_val], eps[n_test + n_val :]
    tr, va, te = (np.isin(episode, e) for e in (train_eps, val_eps, test_eps))
    x = features.astype(np.float64)

    def rmse(pred, true):
        return float(np.sqrt(((pred - true) ** 2).sum(1).mean()))

    best = min(ALPHAS, key=lambda alpha: rmse(ridge_fit_predict(x[tr], targets[tr], x[va], alpha), targets[va]))
    fit = np.concatenate([np.flatnonzero(tr), np.flatnonzero(va)])
    pred = ridge_fit_predict(x[fit], targets[fit], x[te], best)
    true = targets[te]
    r2 = 1.0 - ((pred - true) ** 2).sum() / ((true - true.mean(0)) ** 2).sum()
    return {"rmse_cm": 100 * rmse(pred, true), "r2": float(r2), "alpha": best, "test_frames": int(te.sum())}


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
    parser.add_argument("--encoder", required=True, help="encoder checkpoint (our folder, e.g. runs/pretrain/final)")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--image-size", type=int, default=128, help="env render size (as the training data)")
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", type=Path, default=Path("experiments/pretraining"))
    args = parser.parse_args(argv)
    import jepa_ac

    start = time.perf_counter()
    data = collect_probe_data(args.episodes, args.image_size, args.noise, args.seed)
    trained = jepa_ac.load_world_model(args.encoder, load_predictor=False)
    size = trained.encoder_config.img_size
    features = {
        "pretrained": encoder_features(trained, data.frames),
        "random_init": encoder_features(random_init_like(trained, args.seed), data.frames),
        "pixels": pixel_features(data.frames, size),
    }
    results = {name: {target: probe(f, getattr(data, target), data.episode) for target in TARGETS}
               for name, f in features.items()}
    report = {"encoder": str(args.encoder), "encoder_config": trained.encoder_config.to_dict(),
              "frames": int(len(data.frames)), "episodes": args.episodes, "noise": args.noise,
              "image_size": args.image_size, "features_dim": {k: int(v.shape[1]) for k, v in features.items()},
              "results": results, "seconds": time.perf_counter() - start}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "probe.json").write_text(json.dumps(report, indent=2) + "\n")
    rows = ["| features | dims | end effector RMSE (cm) | end effector R² | block RMSE (cm) | block R² |",
            "|---|---|---|---|---|---|"]
    for name, res in results.items():
        rows.append(f"| {name} | {features[name].shape[1]} | {res['ee']['rmse_cm']:.2f} | {res['ee']['r2']:.3f} | "
                    f"{res['object']['rmse_cm']:.2f} | {res['object']['r2']:.3f} |")
    (args.out / "probe.md").write_text(
        f"# Linear probes on frozen features\n\n`python -m jepa_ac.pretraining.probe --encoder {args.encoder}`: "
        f"{len(data.frames)} frames from {args.episodes} noisy push-expert episodes (noise {args.noise}, "
        f"{args.image_size} px renders), ridge regression from flattened per-frame features to positions, "
        "held-out episodes.\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))
    return report


if __name__ == "__main__":
    main()
