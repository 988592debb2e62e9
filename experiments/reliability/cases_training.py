"""Adversarial cases for training and data, through the CLIs a user runs: `python -m
jepa_ac.train_predictor`, `pretrain_encoder` and `encode_dataset` on crafted checkpoint folders
(pickled trainer states), absurd or non-finite data, killed saves, another encoder's latent cache,
corrupt videos and truncated HDF5 files. Tiny models: a case takes a few seconds."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness import REPO, Case

# prepare() writes checkpoints and caches with this checkout's jepa_ac, as the cases' processes run it
# (the harness gives them PYTHONPATH=REPO; an installed jepa_ac elsewhere writes other formats)
sys.path[:0] = [str(REPO), str(REPO / "tests")]
from planning_helpers import write_tiny_model  # noqa: E402  (the tests' tiny random model)

SAMPLE = REPO / "datasets/samples/franka_reach_64"  # 2 episodes of 11 frames, 64 px, 4 fps
TINY_PREDICTOR = '{"predictor_embed_dim": 32, "depth": 1, "num_heads": 2}'
TINY_ENCODER = '{"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 1, "num_heads": 2}'
TRAIN_ARGS = ["--frames", "4", "--predictor", TINY_PREDICTOR, "--batch-size", "2", "--val-fraction", "0",
              "--warmup-steps", "0", "--decay-steps", "0", "--log-every", "1", "--eval-every", "1000", "--device",
              "cpu", "--steps", "4"]
PRETRAIN_ARGS = ["--out", "run", "--predictor", TINY_PREDICTOR, "--batch-size", "2", "--warmup-steps", "0",
                 "--val-fraction", "0", "--steps", "2", "--device", "cpu"]


def train(data: str = "clips.npz", *extra: str) -> list[str]:
    """train_predictor in the case folder: `data`, the tiny `encoder`, output `run/` (later flags win)."""
    return ["{python}", "-m", "jepa_ac.train_predictor", "--data", data, "--encoder-checkpoint", "encoder", "--out",
            "run", *TRAIN_ARGS, *extra]


def pretrain(*extra: str, encoder: str = TINY_ENCODER) -> list[str]:
    return ["{python}", "-m", "jepa_ac.pretrain_encoder", "--data", "data", "--encoder", encoder, *PRETRAIN_ARGS,
            *extra]


ENCODE = ["{python}", "-m", "jepa_ac.encode_dataset", "--data", "data", "--checkpoint", "encoder", "--out",
          "cache.zarr", "--no-progress", "--device", "cpu"]


# -- crafted inputs ----------------------------------------------------------------------------


class Payload:
    """Unpickling this writes <case folder>/PWNED: what a crafted trainer_state.pt would do."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self):
        return (exec, (f"open({str(self.folder / 'PWNED')!r}, 'w').write('code ran while loading a trainer state')",))


def write_payload(target: Path, case: Path, keep_safe_state: bool = False) -> None:
    """A `trainer_state.pt` in `target` whose unpickling runs code (the safe state removed unless kept)."""
    import torch

    if not keep_safe_state:
        for name in ("trainer_state.json", "trainer_state.safetensors"):
            (target / name).unlink(missing_ok=True)
    torch.save({"step": 2, "world_size": 1, "model": Payload(case), "optimizer": Payload(case)},
               target / "trainer_state.pt")


def clips(folder: Path, state: float | None = None, latent: float | None = None) -> None:
    """clips.npz (4 clips of 4 frames, latents [16, 48] as the tiny encoder's) + the encoder folder."""
    from jepa_ac.training.clips import InMemoryClips

    rng = np.random.default_rng(0)
    states = rng.uniform(-0.3, 0.3, (4, 4, 7)).astype(np.float32)
    states[..., 6] = rng.uniform(0, 1, (4, 4))
    latents = rng.normal(size=(4, 4, 16, 48)).astype(np.float32)
    if state is not None:
        states[2, 1, 0] = state
    if latent is not None:
        latents[1, 3, 5, 7] = latent
    actions = rng.uniform(-0.05, 0.05, (4, 3, 7)).astype(np.float32)
    InMemoryClips(states, actions, latents=latents).save(folder / "clips.npz")
    write_tiny_model(folder / "encoder")


def sample(folder: Path, keep: tuple[str, ...] = ("episode_000000", "episode_000001")) -> Path:
    data = folder / "data"
    shutil.copytree(SAMPLE, data)
    for episode in ("episode_000000", "episode_000001"):
        if episode not in keep:
            shutil.rmtree(data / episode)
    (data / "trajectories.txt").unlink()  # the folder itself is the dataset
    write_tiny_model(folder / "encoder")
    return data


def set_state(data: Path, episode: str, row: int, column: int, value: float) -> None:
    import h5py

    from jepa_ac.data import layout

    with h5py.File(data / episode / layout.TRAJECTORY_FILE, "r+") as f:
        f[layout.CARTESIAN_POSITION][row, column] = value


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def corrupt_frame(data: Path, episode: str, frame: int = 6) -> None:
    """Zero one frame's packet: the mp4 still opens and probes; decoding fails at that frame."""
    import av

    mp4 = data / episode / "recordings/MP4/exterior.mp4"
    with av.open(str(mp4)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    pos, size = packets[frame]
    raw = bytearray(mp4.read_bytes())
    raw[pos : pos + size] = bytes(size)
    mp4.write_bytes(bytes(raw))


def sample_with(*edits, keep: tuple[str, ...] = ("episode_000000", "episode_000001")):
    """Prepare: the sample dataset in `data/` (and the tiny encoder), then each `edit(data)`."""
    def prepare(folder: Path) -> None:
        data = sample(folder, keep)
        for edit in edits:
            edit(data)
    return prepare


def quietly(fn, *args):
    """Run a CLI main in this process without its progress bars and summary on the harness's output."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args)


def trained(folder: Path, *extra: str) -> None:
    """clips + a predictor run in `folder/run` stopped after 2 of 4 steps (checkpoint/ at step 2)."""
    from jepa_ac import train_predictor

    clips(folder)
    quietly(train_predictor.main, ["--data", str(folder / "clips.npz"), "--encoder-checkpoint", str(folder / "encoder"),
                                   "--out", str(folder / "run"), *TRAIN_ARGS, "--stop-after", "2", *extra])


def edit_state_json(**changes):
    def prepare(folder: Path) -> None:
        trained(folder)
        path = folder / "run/checkpoint/trainer_state.json"
        record = json.loads(path.read_text())
        record.update(changes)
        path.write_text(json.dumps(record))
    return prepare


def misshaped_moment(folder: Path) -> None:
    """A well-formed trainer state whose first Adam moment has the wrong shape for the model."""
    import torch
    from safetensors.torch import load_file, save_file

    trained(folder)
    path = folder / "run/checkpoint/trainer_state.safetensors"
    tensors = load_file(str(path))
    tensors["optimizer.0.exp_avg"] = torch.zeros(3)
    save_file(tensors, str(path))


def kill_between_renames(folder: Path) -> None:
    """A run (save every 2 steps) killed by SIGKILL-like exit after the save at step 4 moved the old
    checkpoint/ away and before it put the new one in place."""
    clips(folder)
    script = (
        "import os, pathlib, sys\n"
        "from jepa_ac import train_predictor\n"
        "real, seen = pathlib.Path.rename, []\n"
        "def rename(self, target):\n"
        "    if pathlib.Path(target).name == 'checkpoint':\n"
        "        seen.append(target)\n"
        "        if len(seen) == 2:\n"
        "            os._exit(9)\n"
        "    return real(self, target)\n"
        "pathlib.Path.rename = rename\n"
        "train_predictor.main(sys.argv[1:])\n")
    argv = train("clips.npz", "--steps", "6", "--save-every", "2")[3:]
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script, *argv], cwd=folder, env=env, capture_output=True, timeout=300)
    if proc.returncode != 9 or (folder / "run/checkpoint").exists():
        raise RuntimeError(f"the kill did not happen between the renames (exit {proc.returncode}): {proc.stderr[-500:]}")


def stale_temp_folders(folder: Path) -> None:
    trained(folder)
    for stale in (".checkpoint.tmp-k1ll3d", "..checkpoint.new.tmp-x9", ".final.tmp-abc", ".checkpoint.old-4242"):
        (folder / "run" / stale).mkdir()
        (folder / "run" / stale / "model.safetensors").write_bytes(b"partial")
    (folder / "run/.checkpoint.new").mkdir()  # incomplete: no config.json


def latent_cache(folder: Path, nan_episode: bool = False, other_encoder: bool = False) -> None:
    """cache.zarr of the sample made with `encoder` (then `encoder` replaced by another, if asked)."""
    from jepa_ac import encode_dataset
    from jepa_ac.data.latent_cache import LatentCache

    sample(folder)
    quietly(encode_dataset.main, ["--data", str(folder / "data"), "--checkpoint", str(folder / "encoder"), "--out",
                                  str(folder / "cache.zarr"), "--no-progress", "--device", "cpu"])
    if nan_episode:
        cache = LatentCache.open(folder / "cache.zarr", mode="a")
        latents = cache.episode(cache.episode_names()[0])["latents"]
        latents[:] = np.full(latents.shape, np.nan, latents.dtype)
    if other_encoder:
        shutil.rmtree(folder / "encoder")
        write_tiny_model(folder / "encoder", seed=1)


# -- checks of a result ------------------------------------------------------------------------------


def summary_is(**expected):
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        path = folder / "run/summary.json"
        if not path.is_file():
            return "no run/summary.json"
        summary = json.loads(path.read_text())
        wrong = {k: summary.get(k) for k, v in expected.items() if summary.get(k) != v}
        return f"summary has {wrong}, expected {expected}" if wrong else None
    return verify


def finite_final_weights(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "run/final/model.safetensors"))
    bad = [k for k, v in weights.items() if not np.isfinite(v).all()]
    return f"non-finite weights in final/: {bad[:3]}" if bad else None


def all_of(*checks):
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        for check in checks:
            try:
                problem = check(folder, proc)
            except FileNotFoundError as err:  # verify also runs after a failed exit
                return f"missing output: {err}"
            if problem:
                return problem
        return None
    return verify


def metrics_steps(expected: list[int]):
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        steps = [json.loads(line)["step"] for line in (folder / "run/metrics.jsonl").read_text().splitlines()]
        return None if steps == expected else f"metrics.jsonl steps {steps}, expected {expected}"
    return verify


def no_hidden_leftovers(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
    left = sorted(p.name for p in (folder / "run").iterdir() if p.name.startswith("."))
    return f"temp folders left in run/: {left}" if left else None


def stdout_has(*needles: str):
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        missing = [n for n in needles if n not in proc.stdout]
        return f"stdout lacks {missing}" if missing else None
    return verify


def stderr_has(*needles: str):
    """What the error must name. The harness grades a failed exit by its traceback alone, so this
    only writes the expected message down beside the case (checked by hand from the detail line)."""
    def verify(folder: Path, proc: subprocess.CompletedProcess) -> str | None:
        missing = [n for n in needles if n not in proc.stderr]
        return f"the error does not say {missing}: {proc.stderr.strip()[-300:]}" if missing else None
    return verify


CASES = [
    # -- code execution: a checkpoint folder's trainer state is data, never code -------------------------
    Case("training-resume-pickled-trainer-state", "code execution", train("clips.npz", "--resume", "true"),
         lambda f: (trained(f), write_payload(f / "run/checkpoint", f)),
         verify=stderr_has("trainer_state.pt is a pickled trainer state")),
    Case("training-resume-ignores-pickle-beside-safe-state", "code execution", train("clips.npz", "--resume", "true"),
         lambda f: (trained(f), write_payload(f / "run/checkpoint", f, keep_safe_state=True)),
         expect="ok", verify=summary_is(step=4, finished=True)),
    Case("training-init-from-pickled-trainer-state", "code execution",
         pretrain("--init-from", "encoder", encoder='{"img_size": 64, "patch_size": 16, "embed_dim": 48, '
                                                   '"depth": 1, "num_heads": 2}'),
         lambda f: (sample(f), write_payload(f / "encoder", f)),
         verify=stderr_has("trainer_state.pt is a pickled trainer state")),
    Case("training-init-predictor-pickled-pt", "code execution", train("clips.npz", "--init-predictor", "evil.pt"),
         lambda f: (clips(f), write_payload(f, f), (f / "trainer_state.pt").rename(f / "evil.pt"))),
    Case("training-trainer-state-wrong-types", "code execution", train("clips.npz", "--resume", "true"),
         edit_state_json(step="2; import os", optimizer=[1, 2])),
    Case("training-trainer-state-world-size", "resume/data", train("clips.npz", "--resume", "true"),
         edit_state_json(world_size=2), verify=stderr_has("written by 2 processes")),
    Case("training-trainer-state-misshaped-moment", "resume/data", train("clips.npz", "--resume", "true"),
         misshaped_moment, verify=stderr_has("optimizer state 0.exp_avg has shape [3]")),
    Case("training-trainer-state-truncated-tensors", "resume/data", train("clips.npz", "--resume", "true"),
         lambda f: (trained(f), truncate(f / "run/checkpoint/trainer_state.safetensors", 200))),
    # -- non-finite: absurd data is refused where it is read, a NaN loss stops training --------------------
    Case("training-npz-state-1e30", "non-finite", train(), lambda f: clips(f, state=1e30),
         verify=stderr_has("clip 2 states (row 1): x = 1.00000001504", "is outside its physical range")),
    Case("training-npz-state-nan", "non-finite", train(), lambda f: clips(f, state=float("nan")),
         verify=stderr_has("x = nan is not finite")),
    Case("training-npz-latent-inf", "non-finite", train(), lambda f: clips(f, latent=float("inf")),
         verify=stderr_has("clip 1 latents are NaN or infinite")),
    Case("training-episodes-all-absurd", "non-finite", train("data"),
         sample_with(*(lambda d, ep=ep: set_state(d, ep, 3, 2, 1e30) for ep in ("episode_000000", "episode_000001"))),
         verify=stderr_has("all 2 episodes were skipped", "z = 1e+30 is outside its physical range")),
    Case("training-episodes-one-absurd", "non-finite", train("data"),
         lambda f: set_state(sample(f), "episode_000001", 3, 2, 1e30), expect="ok",
         verify=all_of(summary_is(finished=True, skipped_episodes=1), finite_final_weights)),
    Case("training-state-ranges-override", "non-finite", train("data", "--state-ranges", '{"max_position": 10}'),
         lambda f: set_state(sample(f), "episode_000001", 3, 0, 5.0), expect="ok",
         verify=summary_is(finished=True, skipped_episodes=0)),
    Case("training-lr-overflow-nan-loss", "non-finite",
         train("clips.npz", "--lr", "1e30", "--start-lr", "1e30", "--final-lr", "1e30"), clips,
         verify=stderr_has("step 2: ", "not finite; training stopped before this update")),
    Case("pretrain-lr-overflow-nan-loss", "non-finite",
         pretrain("--lr", "1e30", "--start-lr", "1e30", "--final-lr", "1e30", "--steps", "4"), sample,
         verify=stderr_has("not finite; training stopped before this update")),
    Case("training-latent-cache-nan-latents", "non-finite", train("cache.zarr", "--batch-size", "8"),
         lambda f: latent_cache(f, nan_episode=True), verify=stderr_has("are NaN or infinite (a damaged cache")),
    Case("encode-dataset-absurd-state", "non-finite", ENCODE,
         lambda f: set_state(sample(f), "episode_000001", 3, 2, 1e30), expect="ok",
         verify=stdout_has("1 episodes encoded", "1 skipped", "skipped data/episode_000001: bad states")),
    # -- resume and data: never silently start over, survive a kill, refuse another encoder's latents -----
    Case("training-resume-nothing-to-resume", "resume/data", train("clips.npz", "--resume", "true"),
         lambda f: (trained(f), shutil.rmtree(f / "run/checkpoint")),
         verify=stderr_has("holds a run (metrics.jsonl up to step 2")),
    Case("training-fresh-run-over-a-run", "resume/data", train(), trained,
         verify=stderr_has("already holds a run", "--resume true")),
    Case("training-resume-in-a-new-folder", "resume/data", train("clips.npz", "--resume", "true"), clips,
         expect="ok", verify=summary_is(step=4, finished=True)),
    Case("training-killed-between-renames", "resume/data",
         train("clips.npz", "--steps", "6", "--save-every", "2", "--resume", "true"), kill_between_renames,
         expect="ok", verify=all_of(summary_is(step=6, finished=True), metrics_steps([1, 2, 3, 4, 5, 6]),
                                    no_hidden_leftovers)),
    Case("training-stale-temp-folders", "resume/data", train("clips.npz", "--resume", "true"), stale_temp_folders,
         expect="ok", verify=all_of(summary_is(step=4, finished=True), no_hidden_leftovers,
                                    metrics_steps([1, 2, 3, 4]))),
    Case("training-latent-cache-other-encoder", "resume/data", train("cache.zarr"),
         lambda f: latent_cache(f, other_encoder=True), verify=stderr_has("holds latents of encoder sha256")),
    Case("encode-dataset-corrupt-frame", "resume/data", ENCODE,
         lambda f: corrupt_frame(sample(f), "episode_000001"), expect="ok",
         verify=stdout_has("1 episodes encoded", "1 skipped", "episode_000001/recordings/MP4/exterior.mp4: cannot decode")),
    Case("encode-dataset-every-frame-corrupt", "resume/data", ENCODE,
         sample_with(*(lambda d, ep=ep: corrupt_frame(d, ep, 1) for ep in ("episode_000000", "episode_000001"))),
         verify=stderr_has("none of the 2 episodes", "cannot decode")),
    Case("pretrain-corrupt-frame", "resume/data", pretrain(), lambda f: corrupt_frame(sample(f), "episode_000001"),
         expect="ok", verify=summary_is(finished=True, undecodable_episodes=1)),
    Case("training-video-corrupt-frame", "resume/data", train("data", "--steps", "2", "--batch-size", "8"),
         lambda f: corrupt_frame(sample(f), "episode_000001", 2), expect="ok",
         verify=summary_is(finished=True, undecodable_episodes=1)),
    Case("training-truncated-h5", "resume/data", train("data"),
         sample_with(lambda d: truncate(d / "episode_000001/trajectory.h5", 3000), keep=("episode_000001",)),
         verify=stderr_has("episode_000001/trajectory.h5 is unreadable (truncated or corrupt)")),
]
