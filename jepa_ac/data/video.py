"""H.264 MP4 read/write with PyAV (uint8 RGB frames [T, H, W, 3]).

Video is lossy: yuv420p halves chroma resolution and x264 quantises. At the default crf 18 a
64x64 MuJoCo render comes back within a few uint8 units on average (see tests/test_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from jepa_ac.files import fsync_path

DEFAULT_CRF = 18


class VideoDecodeError(ValueError):
    """A video that opened but has a frame that cannot be decoded (names the file and the frame)."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, crf: int = DEFAULT_CRF, fsync: bool = True) -> Path:
    """Encode uint8 RGB frames [T, H, W, 3] as H.264 (yuv420p) at `fps` frames per second."""
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} {list(frames.shape)}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sides, got {h}x{w}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51 (x264), got {crf!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush delayed frames
            container.mux(packet)
    if fsync:
        fsync_path(path)
    return path


def probe_mp4(path: str | Path) -> VideoInfo:
    """Frame count, frame rate and size of the first video stream (raises if unreadable)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        stream = container.streams.video[0]
        num_frames = stream.frames
        if num_frames <= 0:  # container without a frame count: count packets
            num_frames = sum(1 for p in container.demux(stream) if p.size)
        rate = stream.average_rate or stream.guessed_rate
        if not rate:
            raise ValueError(f"{path}: cannot tell the video's frame rate")
        return VideoInfo(int(num_frames), float(rate), stream.height, stream.width)


def _decode(path: str | Path) -> Iterator[Any]:
    """Decoded frames in order; a damaged file or frame raises `VideoDecodeError` naming the file."""
    import av

    decoded = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                yield frame
                decoded += 1
    except av.error.FFmpegError as err:
        # PyAV's errors name neither the file nor the frame; the caller needs both to skip the episode
        raise VideoDecodeError(f"{path}: cannot decode the video past frame {decoded}: {err}") from None


def iter_mp4(path: str | Path) -> Iterator[np.ndarray]:
    """Decode frames one at a time -> uint8 [H, W, 3] each (constant memory for long videos)."""
    for frame in _decode(path):
        yield frame.to_ndarray(format="rgb24")


def read_mp4(path: str | Path, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode frames (all, or those at `indices`, in the order given) -> uint8 [n, H, W, 3]."""
    if indices is None:
        frames = list(iter_mp4(path))
        if not frames:
            raise ValueError(f"{path} has no decodable frames")
        return np.stack(frames)
    wanted = np.asarray(indices, dtype=np.int64)
    if wanted.ndim != 1 or len(wanted) == 0 or wanted.min() < 0:
        raise ValueError(f"indices must be a non-empty 1-D list of non-negative frame numbers, got {indices!r}")
    needed, last = set(wanted.tolist()), int(wanted.max())
    decoded: dict[int, np.ndarray] = {}
    for i, frame in enumerate(_decode(path)):  # decoding is sequential: stop after the last one needed
        if i in needed:
            decoded[i] = frame.to_ndarray(format="rgb24")  # colour-convert only the frames kept
        if i >= last:
            break
    missing = sorted(needed - set(decoded))
    if missing:
        raise ValueError(f"{path}: frames {missing[:5]} are past the end of the video")
    return np.stack([decoded[i] for i in wanted.tolist()])
