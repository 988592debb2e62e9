"""Write small LeRobot datasets (codebase v2.1 and v3.0) the way LeRobot 0.4 lays them out, for tests.

LeRobot 0.4.4 does not install beside this project (it pins torch < 2.11 and av < 16), so the
layout is written here from its spec (lerobot/datasets/utils.py, lerobot_dataset.py,
v30/convert_dataset_v21_to_v30.py): `meta/info.json` with path templates, per-episode parquet
and mp4 files in chunk folders (v2.1), or many episodes per parquet / mp4 file with episode rows in
`meta/episodes/chunk-XXX/file-XXX.parquet` giving each episode's rows and video time span (v3.0).
Videos are AV1 (libsvtav1, yuv420p, a key frame every 2 frames) as LeRobot encodes them; a v3
video file is its episodes' files concatenated by packet copy, as LeRobot's
`concatenate_video_files` does, so each episode starts on a key frame.
"""

from __future__ import annotations

import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np

os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only

V21_DATA = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V3_DATA = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_VIDEO = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
V3_EPISODES = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def write_av1(path: Path, frames: np.ndarray, fps: int) -> Path:
    """uint8 [T, H, W, 3] -> an AV1 mp4 as LeRobot's encoder writes it (libsvtav1, g=2, crf 30)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libsvtav1", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"g": "2", "crf": "30", "preset": "12"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def concatenate(paths: list[Path], out: Path) -> None:
    """Packet-copy concatenation through ffmpeg's concat demuxer (what LeRobot does for v3 files)."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".ffconcat", delete=False) as listing:
        listing.write("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in paths))
    try:
        with av.open(listing.name, "r", format="concat", options={"safe": "0"}) as inp, \
                av.open(str(out), "w", format="mp4") as dst:
            stream = inp.streams.video[0]
            target = dst.add_stream_from_template(template=stream, opaque=True)
            for packet in inp.demux(stream):
                if packet.dts is None:
                    continue
                packet.stream = target
                dst.mux(packet)
    finally:
        os.unlink(listing.name)


def episode_frames(episode: int, length: int, size: int = 64) -> np.ndarray:
    """Frames of a square moving across a gradient: each frame of each episode differs."""
    frames = np.zeros((length, size, size, 3), np.uint8)
    frames[..., 0] = np.linspace(0, 200, size, dtype=np.uint8)[None, None, :]
    frames[..., 2] = 40 * episode
    for t in range(length):
        x = 4 + 3 * t
        frames[t, 20:36, x : x + 16] = (250, 250, 60)
    return frames


def episode_rows(episode: int, length: int, state_dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """States that move smoothly (xyz in m, small angles, gripper in [0, 1]), and actions = next state."""
    rng = np.random.default_rng([seed, episode])
    steps = rng.normal(0, 0.01, (length, 7)) * np.array([1, 1, 1, 0.5, 0.5, 0.5, 0])
    states = np.cumsum(steps, axis=0) + np.array([0.5, 0.0, 0.3, 0.1, -0.1, 0.2, 0.0])
    states[:, 6] = np.clip(np.linspace(0, 1, length) + 0.1 * episode, 0, 1)
    extra = rng.normal(0, 1, (length, state_dim - 7)) if state_dim > 7 else np.zeros((length, 0))
    full = np.concatenate([states, extra], axis=1).astype(np.float32)  # [T, S]
    return {"states7": states.astype(np.float32), "state": full, "action": np.roll(full, -1, axis=0)}


def _features(video_key: str, size: int, fps: int, state_dim: int, droid: bool) -> dict:
    video = {"dtype": "video", "shape": [size, size, 3], "names": ["height", "width", "channels"],
             "info": {"video.height": size, "video.width": size, "video.codec": "av1", "video.pix_fmt": "yuv420p",
                      "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False}}
    names = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"] + [f"extra_{i}" for i in range(state_dim - 7)]
    features = {video_key: video,
                "observation.state": {"dtype": "float32", "shape": [state_dim], "names": names},
                "action": {"dtype": "float32", "shape": [state_dim], "names": names}}
    if droid:
        features.update({
            "observation.state.cartesian_position": {"dtype": "float32", "shape": [6], "names": names[:6]},
            "observation.state.gripper_position": {"dtype": "float32", "shape": [1], "names": ["gripper"]},
            "action.cartesian_position": {"dtype": "float32", "shape": [6], "names": names[:6]},
            "action.gripper_position": {"dtype": "float32", "shape": [1], "names": ["gripper"]},
        })
    return {**features, **INDEX_FEATURES}


def _table(episode: int, length: int, first_index: int, fps: int, state_dim: int, droid: bool):
    import pyarrow as pa

    rows = episode_rows(episode, length, state_dim)
    columns = {
        "observation.state": pa.array(list(rows["state"]), pa.list_(pa.float32())),
        "action": pa.array(list(rows["action"]), pa.list_(pa.float32())),
    }
    if droid:
        targets = np.roll(rows["states7"], -1, axis=0)
        columns.update({
            "observation.state.cartesian_position": pa.array(list(rows["states7"][:, :6]), pa.list_(pa.float32())),
            "observation.state.gripper_position": pa.array(list(rows["states7"][:, 6:]), pa.list_(pa.float32())),
            "action.cartesian_position": pa.array(list(targets[:, :6]), pa.list_(pa.float32())),
            "action.gripper_position": pa.array(list(targets[:, 6:]), pa.list_(pa.float32())),
        })
    columns.update({
        "timestamp": pa.array(np.arange(length, dtype=np.float32) / fps),
        "frame_index": pa.array(np.arange(length, dtype=np.int64)),
        "episode_index": pa.array(np.full(length, episode, np.int64)),
        "index": pa.array(first_index + np.arange(length, dtype=np.int64)),
        "task_index": pa.array(np.zeros(length, np.int64)),
    })
    return pa.table(columns)


def write_v21(root: Path, lengths: list[int], fps: int = 10, size: int = 64, state_dim: int = 7,
              video_key: str = "observation.images.front", task: str = "push the cube") -> Path:
    """A LeRobot v2.1 dataset: one parquet and one mp4 per episode."""
    import pyarrow.parquet as pq

    features = _features(video_key, size, fps, state_dim, droid=False)
    info = {"codebase_version": "v2.1", "robot_type": "fake_arm", "total_episodes": len(lengths),
            "total_frames": sum(lengths), "total_tasks": 1, "total_videos": len(lengths), "total_chunks": 1,
            "chunks_size": 1000, "fps": fps, "splits": {"train": f"0:{len(lengths)}"},
            "data_path": V21_DATA, "video_path": V21_VIDEO, "features": features}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    (root / "meta/tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": task}) + "\n")
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": i, "tasks": [task], "length": n}) + "\n" for i, n in enumerate(lengths)))
    first = 0
    for i, n in enumerate(lengths):
        data = root / V21_DATA.format(episode_chunk=0, episode_index=i)
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_table(i, n, first, fps, state_dim, droid=False), data)
        write_av1(root / V21_VIDEO.format(episode_chunk=0, video_key=video_key, episode_index=i),
                  episode_frames(i, n, size), fps)
        first += n
    return root


def write_v3(root: Path, files: list[list[int]], fps: int = 10, size: int = 64, state_dim: int = 8,
             video_key: str = "observation.images.exterior_1_left", droid: bool = True,
             task: str = "put the marker in the cup") -> Path:
    """A LeRobot v3.0 dataset; `files` lists the episode lengths held by each data / video file
    (chunk 000, file 000, 001, ...). Each episode's mp4 is written alone first, then concatenated;
    the per-episode originals are kept under `root/../<name>_episodes/` for comparison."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = _features(video_key, size, fps, state_dim, droid)
    total = sum(map(len, files))
    info = {"codebase_version": "v3.0", "robot_type": "fake_arm", "total_episodes": total,
            "total_frames": sum(map(sum, files)), "total_tasks": 1, "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{total}"}, "data_path": V3_DATA, "video_path": V3_VIDEO, "features": features}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    # LeRobot writes a pandas frame indexed by the task strings
    pq.write_table(pa.table({"task_index": [0], "__index_level_0__": [task]}), root / "meta/tasks.parquet")
    originals = root.parent / f"{root.name}_episodes"
    episodes, episode, first = [], 0, 0
    for file_index, lengths in enumerate(files):
        tables, videos, start = [], [], 0.0
        for n in lengths:
            tables.append(_table(episode, n, first, fps, state_dim, droid))
            videos.append(write_av1(originals / f"episode_{episode:06d}.mp4", episode_frames(episode, n, size), fps))
            episodes.append({
                "episode_index": episode, "tasks": [task], "length": n,
                "data/chunk_index": 0, "data/file_index": file_index,
                "dataset_from_index": first, "dataset_to_index": first + n,
                f"videos/{video_key}/chunk_index": 0, f"videos/{video_key}/file_index": file_index,
                f"videos/{video_key}/from_timestamp": start, f"videos/{video_key}/to_timestamp": start + n / fps,
                "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "stats/observation.state/mean": [0.0] * state_dim,  # LeRobot keeps per-episode stats here
            })
            episode, first, start = episode + 1, first + n, start + n / fps
        data = root / V3_DATA.format(chunk_index=0, file_index=file_index)
        data.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), data)
        concatenate(videos, root / V3_VIDEO.format(video_key=video_key, chunk_index=0, file_index=file_index))
    meta = root / V3_EPISODES.format(chunk_index=0, file_index=0)
    meta.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes), meta)
    return root
