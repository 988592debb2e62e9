"""DROID-layout writer/reader, clip sampling, broken-episode handling, latent cache."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import pytest

from jepa_ac.model import pose
from jepa_ac.data import (
    ClipConfig,
    DatasetInfo,
    DroidClips,
    EpisodeData,
    EpisodeMeta,
    find_episodes,
    layout,
    load_episode,
    write_episode,
)
from jepa_ac.data.latent_cache import CacheError, LatentCache, LatentClips, encode_episodes
from jepa_ac.data.reader import read_trajectory_list

# H.264 at crf 18 with yuv420p chroma: smooth 64x64 scenes come back within this mean abs error.
VIDEO_MAE_UINT8 = 3.0
TINY_PT = Path(__file__).parent / "fixtures" / "vjepa2_ac_tiny.pt"


def scene_frames(t: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth synthetic renders: a lit gradient background with a moving coloured square. [T, S, S, 3] uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([80 + 100 * xx, 90 + 60 * yy, 140 - 50 * xx * yy], -1)  # [S, S, 3]
    frames = np.repeat(base[None], t, 0)
    colour = rng.uniform(30, 230, 3)
    for i in range(t):
        x0 = int(8 + i * (size - 24) / max(t - 1, 1))
        frames[i, 20:36, x0 : x0 + 12] = colour
    return np.clip(frames, 0, 255).astype(np.uint8)


def synthetic_episode(t: int = 24, seed: int = 0, cameras=("exterior",)) -> EpisodeData:
    rng = np.random.default_rng(seed)
    cart = np.concatenate([0.4 + np.cumsum(rng.normal(0, 0.01, (t, 3)), 0),
                           np.array([np.pi - 0.1, 0.05, 0.2]) + np.cumsum(rng.normal(0, 0.02, (t, 3)), 0)], 1)
    grip = np.clip(np.cumsum(rng.uniform(-0.1, 0.2, t)), 0, 1)
    states = np.concatenate([cart, grip[:, None]], 1)  # [T, 7]
    actions = np.concatenate([pose.actions_from_states(states), np.zeros((1, 7))])  # [T, 7]
    return EpisodeData(
        frames={cam: scene_frames(t, seed=seed + k) for k, cam in enumerate(cameras)},
        cartesian_position=cart, gripper_position=grip, joint_positions=rng.normal(0, 1, (t, 7)),
        camera_extrinsics={cam: np.tile(rng.normal(0, 1, 6), (t, 1)) for cam in cameras},
        actions=actions, sim_time=np.arange(t) / 15.0,
    )


def write_synthetic(out: Path, index: int, t: int = 24, fps: float = 15.0, **kwargs) -> tuple[Path, EpisodeData]:
    episode = synthetic_episode(t, seed=index, **kwargs)
    meta = EpisodeMeta(uuid=f"test+ep{index}", fps=fps, task="reach", success=index % 2 == 0, env_id="fake", seed=index)
    return write_episode(out, f"episode_{index:06d}", episode, meta), episode


# -- writer / reader round trip ---------------------------------------------------------------


def test_episode_round_trip_exact_states_and_actions(tmp_path):
    folder, episode = write_synthetic(tmp_path, 0, cameras=("exterior", "wrist"))
    loaded = load_episode(folder)
    states = np.concatenate([episode.cartesian_position, episode.gripper_position[:, None]], 1)
    np.testing.assert_array_equal(loaded["states"], states)
    np.testing.assert_array_equal(loaded["actions"], pose.actions_from_states(states))
    arrays = loaded["arrays"]
    np.testing.assert_array_equal(arrays[layout.ACTION_DELTA], episode.actions)
    np.testing.assert_array_equal(arrays[layout.JOINT_POSITIONS], episode.joint_positions)
    np.testing.assert_array_equal(arrays[layout.extrinsics_key("wrist")], episode.camera_extrinsics["wrist"])
    # DROID's absolute targets are state composed with the action; the last row holds still
    targets = np.concatenate([arrays[layout.ACTION_CARTESIAN_POSITION], arrays[layout.ACTION_GRIPPER_POSITION][:, None]], 1)
    np.testing.assert_allclose(targets[:-1, :3], states[1:, :3], atol=1e-12)
    np.testing.assert_array_equal(targets[-1], states[-1])
    # video: lossy, but close; the exterior (not wrist) camera is the "left" one
    assert loaded["camera"] == "exterior"
    assert loaded["frames"].shape == episode.frames["exterior"].shape
    mae = np.abs(loaded["frames"].astype(int) - episode.frames["exterior"]).mean()
    assert mae < VIDEO_MAE_UINT8, mae
    meta = loaded["metadata"]
    assert meta["left_mp4_path"] == "recordings/MP4/exterior.mp4"
    assert meta["wrist_mp4_path"] == "recordings/MP4/wrist.mp4"
    assert meta["trajectory_length"] == 24 and meta["uuid"] == "test+ep0" and meta["success"] is True
    assert (folder / "metadata_test+ep0.json").is_file()
    assert loaded["fps"] == pytest.approx(15.0)


def test_write_refuses_overwrite_and_bad_input(tmp_path):
    write_synthetic(tmp_path, 0)
    with pytest.raises(FileExistsError, match="already exists"):
        write_synthetic(tmp_path, 0)
    good = synthetic_episode(8)
    with pytest.raises(ValueError, match=r"gripper_position must have shape \[8\]"):
        EpisodeData(**{**good.__dict__, "gripper_position": np.zeros(7)})
    with pytest.raises(ValueError, match="NaN"):
        EpisodeData(**{**good.__dict__, "actions": np.full((8, 7), np.nan)})
    with pytest.raises(ValueError, match="uint8"):
        EpisodeData(**{**good.__dict__, "frames": {"exterior": np.zeros((8, 64, 64, 3), np.float32)}})
    odd = EpisodeData(**{**good.__dict__, "frames": {"exterior": np.zeros((8, 63, 64, 3), np.uint8)}})
    with pytest.raises(ValueError, match="even"):
        write_episode(tmp_path, "odd", odd, EpisodeMeta(uuid="odd", fps=15, task="t", success=False))
    assert not list(tmp_path.glob(".tmp-*"))


def test_clips_stride_states_actions_and_shards(tmp_path):
    for i in range(3):
        write_synthetic(tmp_path, i, t=20 + 5 * i)
    config = ClipConfig(frames_per_clip=4, fps=5.0)  # 15 fps video -> every 3rd frame
    clips = DroidClips(tmp_path, config)
    assert clips.strides == [3, 3, 3] and not clips.skipped
    # windows start every stride: span 10 frames -> (T - 10) // 3 + 1 clips per episode
    assert len(clips) == sum((t - 10) // 3 + 1 for t in (20, 25, 30))
    item = clips[len(clips) - 1]
    episode = load_episode(tmp_path / "episode_000002")
    idx = item["indices"]
    np.testing.assert_array_equal(np.diff(idx), 3)
    np.testing.assert_array_equal(item["states"], episode["states"][idx])
    np.testing.assert_array_equal(item["actions"], pose.actions_from_states(episode["states"][idx]))
    assert item["frames"].shape == (4, 64, 64, 3) and item["frames"].dtype == np.uint8
    assert np.abs(item["frames"].astype(int) - episode["frames"][idx]).max() == 0  # same decoder, same frames
    shards = [DroidClips(tmp_path, config, rank=r, world_size=3).windows for r in range(3)]
    assert sorted(w for s in shards for w in s) == sorted(clips.windows)
    assert sum(len(s) for s in shards) == len(clips)
    with pytest.raises(ValueError, match="rank"):
        DroidClips(tmp_path, config, rank=3, world_size=3)


def test_torch_wrapper(tmp_path):
    torch = pytest.importorskip("torch")
    from jepa_ac.data import torch_clips

    write_synthetic(tmp_path, 0, t=12)
    data = torch_clips(DroidClips(tmp_path, ClipConfig(frames_per_clip=3, fps=None)))
    import pickle

    data = pickle.loads(pickle.dumps(data))  # DataLoader workers started with spawn pickle the dataset
    batch = next(iter(torch.utils.data.DataLoader(data, batch_size=2)))
    assert batch["frames"].shape == (2, 3, 64, 64, 3) and batch["frames"].dtype == torch.uint8
    assert batch["states"].dtype == torch.float32 and batch["actions"].shape == (2, 2, 7)


# -- upstream DROID episodes ------------------------------------------------------------------


def _write_droid_mp4(path: Path, frames: np.ndarray, fps: int) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_droid_raw_episode(root: Path, t: int = 30) -> tuple[Path, np.ndarray, np.ndarray]:
    """A DROID raw episode written from the documented schema (droid-dataset R2D2 schema notes), not our writer."""
    rel = "success/2023-07-07/Fri_Jul__7_09:42:23_2023"
    folder = root / "AUTOLab" / rel
    rng = np.random.default_rng(7)
    cart = rng.normal(0, 0.3, (t, 6))
    grip = rng.uniform(0, 1, t)
    serials = {"ext1": "22008760", "ext2": "24400334", "wrist": "18026681"}
    uuid = "AUTOLab+5d05c5aa+2023-07-07-09h-42m-23s"
    metadata = {
        "uuid": uuid, "lab": "AUTOLab", "user": "Someone", "user_id": "5d05c5aa", "date": "2023-07-07",
        "timestamp": "2023-07-07-09h-42m-23s", "hdf5_path": f"{rel}/trajectory.h5", "building": "b",
        "scene_id": 3, "success": True, "robot_serial": "panda-1", "r2d2_version": "1.3",
        "current_task": "put the marker in the cup", "trajectory_length": t,
        "wrist_cam_serial": serials["wrist"], "ext1_cam_serial": serials["ext1"], "ext2_cam_serial": serials["ext2"],
        "wrist_mp4_path": f"{rel}/recordings/MP4/{serials['wrist']}.mp4",
        "ext1_mp4_path": f"{rel}/recordings/MP4/{serials['ext1']}.mp4",
        "ext2_mp4_path": f"{rel}/recordings/MP4/{serials['ext2']}.mp4",
        # "left" is one of ext1/ext2, chosen from the extrinsics: here ext2
        "left_mp4_path": f"{rel}/recordings/MP4/{serials['ext2']}.mp4",
        "right_mp4_path": f"{rel}/recordings/MP4/{serials['ext1']}.mp4",
    }
    folder.mkdir(parents=True)
    (folder / f"metadata_{uuid}.json").write_text(json.dumps(metadata))
    with h5py.File(folder / "trajectory.h5", "w") as f:
        f.attrs["current_task"] = metadata["current_task"]
        obs, act = f.create_group("observation"), f.create_group("action")
        rs = obs.create_group("robot_state")
        rs["cartesian_position"] = cart
        rs["gripper_position"] = grip
        rs["joint_positions"] = rng.normal(0, 1, (t, 7))
        rs["joint_velocities"] = rng.normal(0, 1, (t, 7))
        ext = obs.create_group("camera_extrinsics")
        for serial in serials.values():
            ext[f"{serial}_left"] = rng.normal(0, 1, (t, 6))
            ext[f"{serial}_right"] = rng.normal(0, 1, (t, 6))
        obs["timestamp/cameras/22008760_estimated_capture"] = np.arange(t, dtype=np.int64) * 66
        obs["timestamp/control/step_start"] = np.arange(t, dtype=np.int64) * 66
        for key in ("cartesian_position", "target_cartesian_position", "cartesian_velocity"):
            act[key] = rng.normal(0, 1, (t, 6))
        for key in ("gripper_position", "target_gripper_position", "gripper_velocity"):
            act[key] = rng.uniform(0, 1, t)
    frames = scene_frames(t, size=96, seed=11)
    for serial in serials.values():
        _write_droid_mp4(folder / "recordings" / "MP4" / f"{serial}.mp4", frames, fps=15)
    return folder, np.concatenate([cart, grip[:, None]], 1), frames


def test_hand_written_droid_episode_loads_via_trajectory_list(tmp_path):
    folder, states, frames = write_droid_raw_episode(tmp_path / "droid_raw")
    listing = tmp_path / "train.txt"
    listing.write_text(f"# DROID subset\n\n{folder.relative_to(tmp_path)}   # the one episode\n")
    assert read_trajectory_list(listing) == [tmp_path / folder.relative_to(tmp_path)]
    clips = DroidClips(listing, ClipConfig(frames_per_clip=5, fps=4.0))  # 15 / 4 -> every 4th frame
    assert not clips.skipped and clips.strides == [4]
    record = clips.episodes[0]
    assert record.camera == "24400334" and record.uuid.startswith("AUTOLab+")
    np.testing.assert_array_equal(record.states, states)
    item = clips[2]
    np.testing.assert_array_equal(item["indices"], 2 * 4 + 4 * np.arange(5))
    np.testing.assert_array_equal(item["states"], states[item["indices"]])
    np.testing.assert_array_equal(item["actions"], pose.actions_from_states(states[item["indices"]]))
    assert item["frames"].shape == (5, 96, 96, 3)
    assert np.abs(item["frames"].astype(int) - frames[item["indices"]]).mean() < VIDEO_MAE_UINT8
    # found by searching the lab folder too
    assert find_episodes(tmp_path / "droid_raw") == [folder]


# -- broken episodes --------------------------------------------------------------------------


def test_broken_episodes_are_skipped_with_reasons(tmp_path, caplog):
    good, _ = write_synthetic(tmp_path, 0)
    truncated, _ = write_synthetic(tmp_path, 1)
    h5 = truncated / layout.TRAJECTORY_FILE
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    no_video, _ = write_synthetic(tmp_path, 2)
    (no_video / "recordings/MP4/exterior.mp4").unlink()
    short, _ = write_synthetic(tmp_path, 3, t=6)
    nan, _ = write_synthetic(tmp_path, 4)
    with h5py.File(nan / layout.TRAJECTORY_FILE, "r+") as f:
        f[layout.GRIPPER_POSITION][5] = np.nan
    no_meta, _ = write_synthetic(tmp_path, 5)
    next(no_meta.glob("metadata_*.json")).unlink()
    bad_video, _ = write_synthetic(tmp_path, 6)
    (bad_video / "recordings/MP4/exterior.mp4").write_bytes(b"not an mp4")

    with caplog.at_level(logging.WARNING, logger="jepa_ac.data.reader"):
        clips = DroidClips(tmp_path, ClipConfig(frames_per_clip=4, fps=5.0))
    assert [e.path for e in clips.episodes] == [good]
    reasons = {path.name: reason for path, reason in clips.skipped}
    assert "truncated or corrupt" in reasons[truncated.name]
    assert "exterior.mp4 is missing" in reasons[no_video.name]
    assert "too short: 6 frames" in reasons[short.name]
    assert "bad states" in reasons[nan.name] and "gripper = nan is not finite" in reasons[nan.name]
    assert "no metadata_" in reasons[no_meta.name]
    assert "unreadable" in reasons[bad_video.name]
    for folder in (truncated, no_video, short, nan, no_meta, bad_video):
        assert any(folder.name in r.getMessage() and "skipping episode" in r.getMessage() for r in caplog.records)
    assert any("skipped 6 of 7 episodes" in r.getMessage() for r in caplog.records)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import jepa_ac.data.writer as writer

    def broken_mp4(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(writer, "write_mp4", broken_mp4)
    with pytest.raises(RuntimeError, match="simulated"):
        write_synthetic(tmp_path, 0)
    assert list(tmp_path.iterdir()) == []
    assert find_episodes(tmp_path) == []


def test_killed_write_is_never_read(tmp_path):
    """A process killed mid-episode (after trajectory.h5, before the video) leaves only a hidden temp folder."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import jepa_ac.data.writer as writer
        from test_data import write_synthetic
        writer.write_mp4 = lambda *a, **k: os._exit(3)   # killed: no cleanup runs
        write_synthetic(__import__("pathlib").Path({str(tmp_path)!r}), 0)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    leftovers = list(tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-episode_000000-")
    assert (leftovers[0] / layout.TRAJECTORY_FILE).exists()
    assert find_episodes(tmp_path) == []
    clips = DroidClips([leftovers[0]], ClipConfig(frames_per_clip=2, fps=None))
    assert len(clips) == 0 and "no metadata_" in clips.skipped[0][1]


# -- dataset info -----------------------------------------------------------------------------


def test_dataset_info_round_trip_and_validation(tmp_path):
    info = DatasetInfo(env_id="jepa_ac/FrankaReach-v0", task="reach", fps=4.0, image_size=64, cameras=("exterior",),
                       noise=0.1, seed=0, max_steps=40, features=layout.droid_features(("exterior",), 64))
    path = tmp_path / "info.json"
    path.write_text(json.dumps(info.to_dict()))
    assert DatasetInfo.load(path) == info
    with pytest.raises(ValueError, match="image_size"):
        DatasetInfo(env_id="e", task="t", fps=4, image_size=63, cameras=("c",), noise=0, seed=0, max_steps=1)
    with pytest.raises(ValueError, match="unknown fields"):
        DatasetInfo.from_dict({**info.to_dict(), "nosie": 0.2})


# -- latent cache -----------------------------------------------------------------------------


def test_latent_cache_matches_direct_encoding(tmp_path, tiny_wm):
    for i in range(2):
        write_synthetic(tmp_path / "data", i, t=10 + 4 * i)
    folders = find_episodes(tmp_path / "data")

    def encode(frames):
        return tiny_wm.ops.to_numpy(tiny_wm.encode(frames))

    cache = LatentCache.create(tmp_path / "c.zarr", tiny_wm.encoder_hash(), {"name": "tiny"})
    summary = encode_episodes(folders, encode, cache, batch_frames=4)
    assert summary["encoded"] == ["test+ep0", "test+ep1"] and summary["frames"] == 24
    for folder in folders:
        episode = load_episode(folder)
        direct = encode(episode["frames"])  # [T, N, D] float32
        group = LatentCache.open(tmp_path / "c.zarr").episode(episode["metadata"]["uuid"])
        cached = group["latents"][:]
        assert cached.dtype == np.float16 and cached.shape == direct.shape == (len(episode["states"]), 16, 192)
        np.testing.assert_allclose(cached.astype(np.float32), direct, rtol=1e-3, atol=1e-3)  # float16 rounding
        np.testing.assert_array_equal(group["states"][:], episode["states"])
        np.testing.assert_array_equal(group["actions"][:], episode["actions"])

    clips = LatentClips(tmp_path / "c.zarr", frames_per_clip=3, fps=5.0, encoder_hash=tiny_wm.encoder_hash())
    item = clips[len(clips) - 1]
    group = LatentCache.open(tmp_path / "c.zarr").episode(clips.names[item["episode"]])
    np.testing.assert_array_equal(item["latents"], group["latents"][:][item["indices"]].astype(np.float32))
    np.testing.assert_array_equal(item["actions"], pose.actions_from_states(group["states"][:][item["indices"]]))
    halves = [LatentClips(tmp_path / "c.zarr", 3, 5.0, rank=r, world_size=2).windows for r in range(2)]
    assert sorted(halves[0] + halves[1]) == sorted(clips.windows) and not set(halves[0]) & set(halves[1])

    # resume: nothing re-encoded; an unfinished episode is not served and gets redone
    again = LatentCache.create(tmp_path / "c.zarr", tiny_wm.encoder_hash())
    assert encode_episodes(folders, encode, again)["already_cached"] == ["test+ep0", "test+ep1"]
    again.begin_episode("test+ep1", 14, 16, 192, np.zeros((14, 7)), {"fps": 15.0})  # interrupted rewrite
    assert again.episode_names() == ["test+ep0"]
    assert encode_episodes(folders, encode, again)["encoded"] == ["test+ep1"]
    # another encoder's latents are refused
    with pytest.raises(CacheError, match="refusing to mix"):
        LatentCache.create(tmp_path / "c.zarr", "0" * 64)
    with pytest.raises(CacheError, match="not the expected"):
        LatentClips(tmp_path / "c.zarr", encoder_hash="f" * 64)
    info = LatentCache.open(tmp_path / "c.zarr").info
    assert (info.encoder_hash, info.tokens_per_frame, info.embed_dim, info.encoder) == (
        tiny_wm.encoder_hash(), 16, 192, {"name": "tiny"})
    import zarr

    zarr.open_group(str(tmp_path / "c.zarr"), mode="a").attrs["version"] = 99
    with pytest.raises(CacheError, match="version 99"):
        LatentCache.open(tmp_path / "c.zarr")


def test_encode_dataset_cli(tmp_path, tiny_arch):
    import torch

    from jepa_ac import encode_dataset
    write_synthetic(tmp_path / "data", 0, t=8)
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(tiny_arch))
    args = ["--data", str(tmp_path / "data"), "--checkpoint", str(TINY_PT), "--encoder", str(arch),
            "--out", str(tmp_path / "c.zarr"), "--no-progress"]
    assert encode_dataset.main(args) == 0
    cache = LatentCache.open(tmp_path / "c.zarr")
    assert cache.episode_names() == ["test+ep0"] and cache.attrs["encoder"]["config"]["embed_dim"] == 192
    assert [(r["encoded"], r["frames"]) for r in cache.attrs["runs"]] == [(1, 8)]
    # a different encoder (one weight changed) must not write into this cache
    state = torch.load(TINY_PT, weights_only=True)
    key = next(k for k in state["encoder"] if k.endswith("norm.weight"))
    state["encoder"][key] = state["encoder"][key] + 1.0
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(SystemExit, match="^error: .*refusing to mix"):
        encode_dataset.main([*args[:2], "--checkpoint", str(other), *args[4:]])


def test_committed_sample_matches_manifest_and_loads():
    import hashlib

    root = Path(__file__).parents[1] / "datasets"
    for line in (root / "manifests" / "franka_reach_64.sha256").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((root / "samples" / name).read_bytes()).hexdigest() == digest, name
    sample = root / "samples" / "franka_reach_64"
    info = DatasetInfo.load(sample / layout.DATASET_INFO_FILE)
    clips = DroidClips(sample / layout.TRAJECTORY_LIST_FILE, ClipConfig(frames_per_clip=4, fps=info.fps))
    assert len(clips.episodes) == 2 and not clips.skipped and len(clips) == 2 * (11 - 4 + 1)
    item = clips[0]
    assert item["frames"].shape == (4, info.image_size, info.image_size, 3)
    assert np.all(np.isfinite(item["states"])) and np.abs(item["actions"][:, :3]).max() > 1e-3  # the arm moves
