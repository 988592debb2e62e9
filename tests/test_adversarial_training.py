"""Adversarial inputs to training and data: crafted checkpoints, absurd data, kills, other encoders.

Each test is a case an adversarial tester found (code execution through a trainer state, a 1e30
state turning the predictor into NaN, resume silently starting over, a latent cache of another
encoder, a corrupt video frame, a truncated HDF5 file) and fails on the code before the fix.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from jepa_ac import train_predictor
from jepa_ac.world_model.checkpoints import read_checkpoint
from jepa_ac.data import ClipConfig, DroidClips, layout
from jepa_ac.model.pose import StateRanges
from jepa_ac.training.clips import InMemoryClips

pytestmark = pytest.mark.adversarial

TESTS = Path(__file__).parent
SAMPLE = TESTS.parent / "datasets/samples/franka_reach_64"
TINY_PREDICTOR = json.dumps({"predictor_embed_dim": 32, "depth": 1, "num_heads": 2})
TINY_ENCODER = '{"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 1, "num_heads": 2}'


class Payload:
    """Unpickling this runs code: it writes `path` (what a crafted trainer_state.pt would do)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return exec, (f"open({self.path!r}, 'w').write('pwned')",)


def write_payload(folder: Path, sentinel: Path) -> None:
    """Replace the folder's trainer state by a pickle that would create `sentinel` when loaded."""
    for name in ("trainer_state.json", "trainer_state.safetensors", "trainer_state.pt"):
        (folder / name).unlink(missing_ok=True)
    torch.save({"step": 1, "world_size": 1, "model": Payload(sentinel)}, folder / "trainer_state.pt")


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    from planning_helpers import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("enc") / "encoder", seed=0)


def plausible_states(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    states = rng.uniform(-0.3, 0.3, (*shape, 7))
    states[..., 6] = rng.uniform(0, 1, shape)
    return states.astype(np.float32)


def write_clips(path: Path, state_value: float | None = None) -> Path:
    """Four 4-frame clips of random latents [4, 4, 16, 48] (the tiny encoder's N, D); optionally one
    state set to `state_value`."""
    rng = np.random.default_rng(0)
    states = plausible_states(rng, (4, 4))
    if state_value is not None:
        states[2, 1, 0] = state_value
    actions = rng.uniform(-0.05, 0.05, (4, 3, 7)).astype(np.float32)
    InMemoryClips(states, actions, latents=rng.normal(size=(4, 4, 16, 48)).astype(np.float32)).save(path)
    return path


@pytest.fixture(scope="module")
def clips_npz(tmp_path_factory) -> Path:
    return write_clips(tmp_path_factory.mktemp("data") / "clips.npz")


def train(encoder: Path, data: Path, out: Path, *extra: str) -> dict:
    return train_predictor.main([
        "--data", str(data), "--encoder-checkpoint", str(encoder), "--out", str(out), "--frames", "4",
        "--predictor", TINY_PREDICTOR, "--batch-size", "2", "--val-fraction", "0", "--warmup-steps", "0",
        "--decay-steps", "0", "--log-every", "1", "--eval-every", "1000", "--device", "cpu", *extra])


def logged_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


# -- 1. code execution from a checkpoint folder -----------------------------------------------


def test_pickled_trainer_state_is_not_run_on_resume(encoder_dir, clips_npz, tmp_path):
    out = tmp_path / "run"
    train(encoder_dir, clips_npz, out, "--steps", "4", "--stop-after", "2")
    sentinel = tmp_path / "PWNED"
    write_payload(out / "checkpoint", sentinel)
    with pytest.raises(BaseException) as raised:
        train(encoder_dir, clips_npz, out, "--steps", "4", "--resume", "true")
    assert not sentinel.exists(), "the crafted trainer_state.pt ran code"
    assert raised.type is SystemExit
    assert re.match(r"error: .*trainer_state\.pt is a pickled trainer state .* not loaded", str(raised.value))


def test_crafted_safe_trainer_state_gives_a_clear_error(encoder_dir, clips_npz, tmp_path):
    out = tmp_path / "run"
    train(encoder_dir, clips_npz, out, "--steps", "4", "--stop-after", "2")
    (out / "checkpoint/trainer_state.json").write_text(json.dumps({"format": "jepa_ac.trainer_state", "version": 1,
                                                                   "step": "2; rm -rf /"}))
    with pytest.raises(SystemExit, match=r"^error: .*trainer_state\.json: not a trainer state"):
        train(encoder_dir, clips_npz, out, "--steps", "4", "--resume", "true")
    # well-formed files whose tensors do not fit the model: named, before anything is loaded
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other"
    train(encoder_dir, clips_npz, other, "--steps", "4", "--stop-after", "2")
    tensors = load_file(str(other / "checkpoint/trainer_state.safetensors"))
    tensors["optimizer.0.exp_avg"] = torch.zeros(3)
    save_file(tensors, str(other / "checkpoint/trainer_state.safetensors"))
    with pytest.raises(SystemExit, match=r"^error: .*checkpoint: optimizer state 0\.exp_avg has shape \[3\]"):
        train(encoder_dir, clips_npz, other, "--steps", "4", "--resume", "true")


def test_pickled_trainer_state_is_not_run_by_init_from(tmp_path):
    from jepa_ac.pretrain_encoder import main

    args = ["--data", str(SAMPLE), "--encoder", TINY_ENCODER, "--predictor", TINY_PREDICTOR, "--batch-size", "2",
            "--warmup-steps", "0", "--val-fraction", "0", "--steps", "1", "--device", "cpu"]
    main([*args, "--out", str(tmp_path / "source")])
    sentinel = tmp_path / "PWNED"
    write_payload(tmp_path / "source/final", sentinel)
    with pytest.raises(BaseException) as raised:
        main([*args, "--out", str(tmp_path / "next"), "--init-from", str(tmp_path / "source/final")])
    assert not sentinel.exists(), "the crafted trainer_state.pt ran code"
    assert raised.type is SystemExit
    assert re.match(r"error: .*trainer_state\.pt is a pickled trainer state", str(raised.value))


# -- 2. non-finite data and losses --------------------------------------------------------------


def sample_copy(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    return data


@pytest.mark.parametrize("value", [np.nan, 1e30])
def test_nan_and_absurd_states_are_rejected(tmp_path, caplog, value):
    data = sample_copy(tmp_path)
    bad = data / "episode_000001"
    with h5py.File(bad / layout.TRAJECTORY_FILE, "r+") as f:
        f[layout.CARTESIAN_POSITION][3, 1] = value
    with caplog.at_level(logging.WARNING):
        clips = DroidClips(data, ClipConfig(frames_per_clip=4, fps=4.0))
    assert [e.path.name for e in clips.episodes] == ["episode_000000"]
    reason = dict(clips.skipped)[bad]
    assert "bad states" in reason and "row 3" in reason and "y = " in reason and str(bad) in reason
    # a larger robot: the documented override lets 5 m through, never NaN
    big = DroidClips(data, ClipConfig(frames_per_clip=4, fps=4.0, state_ranges=StateRanges(max_position=1e31)))
    assert len(big.episodes) == (1 if np.isnan(value) else 2)
    # a clips .npz with the same state is refused, naming the clip
    npz = write_clips(tmp_path / "clips.npz", value)
    with pytest.raises(ValueError, match=r"clips\.npz: clip 2 states \(row 1\): x = "):
        InMemoryClips.load(npz)


def test_absurd_states_in_a_latent_cache_skip_the_episode(tmp_path, encoder_dir):
    import jepa_ac
    from jepa_ac.data.latent_cache import LatentCache, LatentClips, encode_episodes
    from jepa_ac.data.reader import find_episodes

    wm = jepa_ac.load_world_model(encoder_dir, load_predictor=False, device="cpu")
    cache = LatentCache.create(tmp_path / "c.zarr", wm.encoder_hash())
    encode_episodes(find_episodes(SAMPLE), lambda f: np.asarray(wm.encode(f)), cache)
    name = cache.episode_names()[1]
    states = cache.episode(name)["states"]
    states[4, 2] = 1e30  # a crafted cache: the states array itself holds the absurd value
    clips = LatentClips(tmp_path / "c.zarr", frames_per_clip=4, fps=4.0)
    assert clips.names == cache.episode_names()[:1]
    assert name in dict(clips.skipped) and "z = 1e+30 is outside" in dict(clips.skipped)[name]


def test_nan_loss_stops_training_with_the_step(encoder_dir, clips_npz, tmp_path):
    out = tmp_path / "run"
    # lr 1e30: after one update the weights are ~1e30, the next forward overflows
    with pytest.raises(SystemExit, match=r"^error: step 2: loss = (nan|inf)(, grad_norm = \S+)? (is|are) not finite; "
                                         r"training stopped before this update \(.*checkpoint holds step 1\)"):
        train(encoder_dir, clips_npz, out, "--steps", "6", "--save-every", "1", "--lr", "1e30", "--start-lr", "1e30",
              "--final-lr", "1e30")
    weights = read_checkpoint(out / "checkpoint").arrays["predictor"]
    assert all(np.isfinite(v).all() for v in weights.values())
    assert not (out / "final").exists() and not (out / "summary.json").exists()


# -- 3. resume and data ---------------------------------------------------------------------------


def test_resume_with_nothing_to_resume(encoder_dir, clips_npz, tmp_path):
    out = tmp_path / "run"
    train(encoder_dir, clips_npz, out, "--steps", "3", "--save-every", "100", "--stop-after", "2")
    shutil.rmtree(out / "checkpoint")  # e.g. deleted by hand
    with pytest.raises(SystemExit, match=r"^error: --resume true: .*run holds a run \(metrics\.jsonl up to step 2, "
                                         r"summary\.json\) but no checkpoint/"):
        train(encoder_dir, clips_npz, out, "--steps", "3", "--resume", "true")
    assert logged_steps(out) == [1, 2]
    with pytest.raises(SystemExit, match=r"^error: .*run already holds a run .*pass --resume true"):
        train(encoder_dir, clips_npz, out, "--steps", "3")
    # a new folder: --resume true starts at step 0 (the same command serves the first run)
    assert train(encoder_dir, clips_npz, tmp_path / "new", "--steps", "2", "--resume", "true")["finished"]


KILL_BETWEEN_RENAMES = """
import os, pathlib, sys
from jepa_ac import train_predictor
renames = []
real = pathlib.Path.rename
def rename(self, target):
    if pathlib.Path(target).name == "checkpoint":
        renames.append(target)
        if len(renames) == 2:  # the save at step 4 moved the old checkpoint away: killed before the new is in place
            os._exit(9)
    return real(self, target)
pathlib.Path.rename = rename
train_predictor.main(sys.argv[1:])
"""


def test_a_kill_between_the_renames_of_a_save_recovers(encoder_dir, clips_npz, tmp_path):
    import torch

    # bit-identical needs the same float reduction order in every part: one thread, as the killed subprocess
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _kill_between_renames(encoder_dir, clips_npz, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _kill_between_renames(encoder_dir, clips_npz, tmp_path):
    common = ["--steps", "6", "--save-every", "2"]
    train(encoder_dir, clips_npz, tmp_path / "whole", *common)
    out = tmp_path / "split"
    args = ["--data", str(clips_npz), "--encoder-checkpoint", str(encoder_dir), "--out", str(out), "--frames", "4",
            "--predictor", TINY_PREDICTOR, "--batch-size", "2", "--val-fraction", "0", "--warmup-steps", "0",
            "--decay-steps", "0", "--log-every", "1", "--eval-every", "1000", "--device", "cpu", *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS.parent)}
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, *args], env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert not (out / "checkpoint").exists()  # the state the tester found: resume used to start at step 0
    train(encoder_dir, clips_npz, out, *common, "--resume", "true")
    assert logged_steps(out) == [1, 2, 3, 4, 5, 6]  # step 4 was checkpointed before the kill: nothing repeats
    a, b = (read_checkpoint(tmp_path / run / "final").arrays["predictor"] for run in ("whole", "split"))
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_stale_temp_folders_are_cleaned(encoder_dir, clips_npz, tmp_path):
    out = tmp_path / "run"
    train(encoder_dir, clips_npz, out, "--steps", "4", "--stop-after", "2")
    for stale in (".checkpoint.tmp-k1ll3d", "..checkpoint.new.tmp-x9", ".final.tmp-abc", ".checkpoint.old-123"):
        (out / stale).mkdir()
        (out / stale / "model.safetensors").write_bytes(b"partial")
    (out / ".checkpoint.new").mkdir()  # incomplete: no config.json
    train(encoder_dir, clips_npz, out, "--steps", "4", "--resume", "true")
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
    assert logged_steps(out) == [1, 2, 3, 4]


# -- 4. a latent cache of another encoder -------------------------------------------------------


def test_latent_cache_from_another_encoder_is_refused(encoder_dir, tmp_path):
    from planning_helpers import write_tiny_model

    from jepa_ac import encode_dataset

    cache = tmp_path / "c.zarr"
    encode_dataset.main(["--data", str(SAMPLE), "--checkpoint", str(encoder_dir), "--out", str(cache),
                         "--no-progress", "--device", "cpu"])
    other = write_tiny_model(tmp_path / "other", seed=1)  # same architecture, other weights
    with pytest.raises(SystemExit, match=rf"^error: .*c\.zarr holds latents of encoder sha256 [0-9a-f]{{16}}\.\.\. "
                                         rf"\(made from .*encoder\), but the encoder given, .*other, has sha256 "
                                         rf"[0-9a-f]{{16}}"):
        train(other, cache, tmp_path / "run", "--steps", "1")
    assert train(encoder_dir, cache, tmp_path / "ok", "--steps", "1")["finished"]


# -- 5. damaged files ------------------------------------------------------------------------------


def corrupt_frame(mp4: Path, frame: int) -> None:
    """Zero the bytes of one frame's packet: the file still opens and probes, decoding fails there."""
    import av

    with av.open(str(mp4)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    pos, size = packets[frame]
    data = bytearray(mp4.read_bytes())
    data[pos : pos + size] = bytes(size)
    mp4.write_bytes(bytes(data))


def test_corrupt_mp4_frame_names_and_skips_the_episode(tmp_path, encoder_dir, caplog):
    from jepa_ac import encode_dataset
    from jepa_ac.data.latent_cache import LatentCache
    from jepa_ac.pretraining.video_data import VideoClips

    data = sample_copy(tmp_path)
    bad = data / "episode_000001"
    corrupt_frame(bad / "recordings/MP4/exterior.mp4", 6)
    with caplog.at_level(logging.WARNING):
        preloaded = VideoClips(data, 4, 4.0, preload=True)
    assert list(preloaded.decode_failures) == [str(bad)]
    assert {preloaded.clips.episodes[e].path for e, _ in preloaded.windows} == {data / "episode_000000"}
    assert any(str(bad) in r.getMessage() and "exterior.mp4: cannot decode" in r.getMessage() for r in caplog.records)
    lazy = DroidClips(data, ClipConfig(frames_per_clip=4, fps=4.0))
    frames = [lazy[i]["frames"] for i in range(len(lazy))]  # clips past the damage are replaced, not raised
    assert len(frames) == len(lazy) and list(lazy.decode_failures) == [str(bad)]
    encode_dataset.main(["--data", str(data), "--checkpoint", str(encoder_dir), "--out", str(tmp_path / "c.zarr"),
                         "--no-progress", "--device", "cpu"])
    runs = LatentCache.open(tmp_path / "c.zarr").attrs["runs"]
    assert runs[-1]["encoded"] == 1 and runs[-1]["skipped"][0]["episode"] == str(bad)
    assert "exterior.mp4: cannot decode" in runs[-1]["skipped"][0]["reason"]


def test_truncated_hdf5_is_named(tmp_path, encoder_dir):
    data = sample_copy(tmp_path)
    shutil.rmtree(data / "episode_000000")
    h5 = data / "episode_000001" / layout.TRAJECTORY_FILE
    h5.write_bytes(h5.read_bytes()[:3000])
    with pytest.raises(SystemExit, match=rf"^error: no training clips in .*: all 1 episodes were skipped; first: "
                                         rf".*episode_000001: {h5} is unreadable \(truncated or corrupt\)"):
        train(encoder_dir, data, tmp_path / "run", "--steps", "1")
