import numpy as np
import pytest
from PIL import Image

from jepa_ac.model.preprocess import (
    IMAGENET_MEAN, IMAGENET_STD, check_frames, frames_to_clip, frames_to_tubelets, load_image, resize_center_crop)


def test_single_frame_becomes_tubelet():
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x = frames_to_tubelets(frame, 64)
    assert x.shape == (1, 3, 2, 64, 64) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :, 0], x[:, :, 1])
    expected = (frame[10, 20] / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(x[0, :, 0, 10, 20], expected, rtol=1e-6)


def test_non_square_is_resized_and_center_cropped():
    frames = np.zeros((2, 120, 200, 3), dtype=np.uint8)
    frames[:, :, 100:] = 255  # right half white
    out = resize_center_crop(frames, 64)
    assert out.shape == (2, 64, 64, 3)
    assert out[0, 32, 5].mean() < 10 and out[0, 32, 60].mean() > 245
    assert frames_to_clip(frames, 64).shape == (1, 3, 2, 64, 64)


def test_real_franka_frames(franka_traj):
    frames = franka_traj["observations"][0]  # [2, 256, 256, 3]
    x = frames_to_tubelets(frames, 64)
    assert x.shape == (2, 3, 2, 64, 64)
    assert np.isfinite(x).all() and -3 < x.min() < x.max() < 3


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((64, 64, 3), dtype=np.float32), "uint8"),
        (np.zeros((64, 64), dtype=np.uint8), "shape"),
        (np.zeros((1, 64, 64, 4), dtype=np.uint8), "shape"),
        (np.zeros((0, 64, 64, 3), dtype=np.uint8), "empty"),
    ],
)
def test_bad_frames_have_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        check_frames(bad)


def test_load_image(tmp_path):
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), img)
    Image.fromarray(img[..., 0]).save(tmp_path / "gray.png")  # not what a colour camera gives: refused
    with pytest.raises(ValueError, match="1-channel 'L' image; expected 8-bit RGB"):
        load_image(tmp_path / "gray.png")
    Image.fromarray(img.astype(np.uint16)[..., 0] * 200).save(tmp_path / "deep.png")  # 16-bit
    with pytest.raises(ValueError, match="expected 8-bit RGB"):
        load_image(tmp_path / "deep.png")
    rgba = np.concatenate([img, np.full((40, 50, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "opaque.png")  # alpha all 255: the RGB it holds
    np.testing.assert_array_equal(load_image(tmp_path / "opaque.png"), img)
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba).save(tmp_path / "transparent.png")
    with pytest.raises(ValueError, match="transparent"):
        load_image(tmp_path / "transparent.png")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match="1x1 pixels"):
        load_image(tmp_path / "dot.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "corrupt.png")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.png")
