"""The one path from uint8 camera frames (or an image file) to model input.

Training, planning, serving and benchmarks all call `frames_to_tubelets` / `frames_to_clip`.
Frames are resized so the shorter side equals the model size, centre-cropped to a square, then
normalised `(x / 255 - mean) / std` with the ImageNet statistics, as V-JEPA 2 does. With
`keep_aspect=True` they keep their aspect instead: shorter side to the size, the longer side
scaled alike, then each side centre-cropped down to a multiple of the patch size (RoPE encoders
take any token grid; V-JEPA 2.1 interpolates its positions to it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MAX_IMAGE_SIDE = 8192


def read_rgb_image(path: str | Path, what: str = "image") -> tuple[np.ndarray, list[str]]:
    """An image file as uint8 RGB [H, W, 3] and notes on what was converted; a `ValueError` naming
    `what` and the file for anything that does not look like a camera frame.

    Accepted: 8-bit RGB, palette images (expanded) and fully opaque RGBA (alpha dropped). Refused:
    grey-scale, two-channel, CMYK, 16-bit or float images, transparent pixels, and sides outside
    2..MAX_IMAGE_SIDE pixels (checked from the header, before the pixels are decoded).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with Image.open(path) as image:
            w, h = image.size
            if not (2 <= h <= MAX_IMAGE_SIDE and 2 <= w <= MAX_IMAGE_SIDE):
                raise ValueError(f"{what} {path} is {w}x{h} pixels; expected 2..{MAX_IMAGE_SIDE} pixels per side")
            image.load()
            if image.mode == "P":  # palette PNG/GIF: colours by index, fine once expanded
                image = image.convert("RGBA" if "transparency" in image.info else "RGB")
            mode, bands = image.mode, image.getbands()
            array = np.asarray(image)
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{what} {path} is not a readable image file (PNG, JPEG, ...): {err}") from None
    notes = []
    if bands == ("R", "G", "B", "A") and mode == "RGBA":
        if array[..., 3].min() < 255:
            raise ValueError(f"{what} {path} has transparent pixels (RGBA); pass an opaque RGB camera image")
        array, notes = array[..., :3], ["alpha channel dropped (fully opaque)"]
    elif bands != ("R", "G", "B") or mode != "RGB":
        raise ValueError(f"{what} {path} is a {len(bands)}-channel {mode!r} image; expected 8-bit RGB (3 channels, "
                         "0-255) like the camera's")
    return np.ascontiguousarray(array, dtype=np.uint8), notes


def load_image(path: str | Path, what: str = "image") -> np.ndarray:
    """Read an image file as uint8 RGB [H, W, 3] (see `read_rgb_image` for what is refused)."""
    return read_rgb_image(path, what)[0]


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Validate uint8 RGB frames; returns them as [T, H, W, 3] (a single [H, W, 3] frame gets T=1)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 RGB (0-255), got dtype {frames.dtype}")
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [T, H, W, 3] or [H, W, 3], got {list(frames.shape)}")
    t, h, w, _ = frames.shape
    if t == 0 or h < 2 or w < 2 or max(h, w) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"frames of shape {list(frames.shape)} are empty or outside 2..{MAX_IMAGE_SIDE} pixels per side"
        )
    return frames


def resize_center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """[T, H, W, 3] uint8 -> [T, size, size, 3] uint8: shorter side to `size`, centre crop."""
    frames = check_frames(frames)
    t, h, w, _ = frames.shape
    if h == size and w == size:
        return frames
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = np.empty((t, size, size, 3), dtype=np.uint8)
    for i in range(t):
        resized = Image.fromarray(frames[i]).resize((new_w, new_h), Image.BICUBIC)
        out[i] = np.asarray(resized)[top : top + size, left : left + size]
    return out


def resize_keep_aspect(frames: np.ndarray, size: int, multiple: int) -> np.ndarray:
    """[T, H, W, 3] uint8 -> [T, H', W', 3] uint8 at the same aspect: the shorter side to `size`, the
    longer one scaled alike (rounded), then each side centre-cropped down to a multiple of `multiple`."""
    frames = check_frames(frames)
    t, h, w, _ = frames.shape
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    out_h, out_w = new_h // multiple * multiple, new_w // multiple * multiple
    if not out_h or not out_w:
        raise ValueError(f"size {size} is smaller than the patch size {multiple}")
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    if (new_h, new_w) == (h, w):
        return frames[:, top : top + out_h, left : left + out_w]
    out = np.empty((t, out_h, out_w, 3), dtype=np.uint8)
    for i in range(t):
        resized = Image.fromarray(frames[i]).resize((new_w, new_h), Image.BICUBIC)
        out[i] = np.asarray(resized)[top : top + out_h, left : left + out_w]
    return out


def fit_frames(frames: np.ndarray, size: int, keep_aspect: bool = False, patch_size: int = 1) -> np.ndarray:
    """The model's pixel grid: a `size` square (`resize_center_crop`) or, with `keep_aspect`, the frame's
    own aspect (`resize_keep_aspect` to multiples of `patch_size`)."""
    return resize_keep_aspect(frames, size, patch_size) if keep_aspect else resize_center_crop(frames, size)


def normalize(frames: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 -> [T, 3, H, W] float32, ImageNet-normalised."""
    x = frames.astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # [T, H, W, 3] -> [T, 3, H, W]


def frames_to_clip(frames: np.ndarray, size: int, keep_aspect: bool = False, patch_size: int = 1) -> np.ndarray:
    """A video [T, H, W, 3] uint8 -> one clip [1, 3, T, size, size] float32 (keep_aspect: [1, 3, T, H', W'])."""
    x = normalize(fit_frames(frames, size, keep_aspect, patch_size))  # [T, 3, S, S]
    return x.transpose(1, 0, 2, 3)[None]  # [1, 3, T, S, S]


def frames_to_tubelets(
    frames: np.ndarray, size: int, tubelet_size: int = 2, keep_aspect: bool = False, patch_size: int = 1
) -> np.ndarray:
    """Each frame on its own: [T, H, W, 3] uint8 -> [T, 3, tubelet, size, size] float32.

    V-JEPA 2-AC encodes one image as a clip of the frame repeated `tubelet_size` times; V-JEPA 2.1
    takes an image as one frame (`tubelet_size=1`, its image patch embedding).
    """
    x = normalize(fit_frames(frames, size, keep_aspect, patch_size))  # [T, 3, S, S]
    return np.repeat(x[:, :, None], tubelet_size, axis=2)  # [T, 3, tubelet, S, S]
