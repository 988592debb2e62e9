"""Parity with golden outputs of the upstream V-JEPA 2 code (fp32, CPU): max abs error <= 1e-4."""

import numpy as np
import torch

from jepa_ac.model.preprocess import frames_to_clip

TOL = 1e-4


def test_encoder_on_images_matches_upstream(tiny_wm, golden):
    # each frame on its own, repeated into a 2-frame tubelet, then layer-normed (upstream WorldModel.encode)
    z = np.asarray(tiny_wm.encode(golden["frames_uint8"]))  # [T, N, D]
    assert z.shape == (3, 16, 192)
    assert np.abs(z.reshape(1, -1, 192) - golden["pred_x"]).max() <= TOL


def test_encoder_raw_outputs_match_upstream(tiny_wm, golden):
    from jepa_ac.model.preprocess import frames_to_tubelets

    raw = np.asarray(tiny_wm.backend.encode(frames_to_tubelets(golden["frames_uint8"], 64)))
    assert np.abs(raw - golden["enc_frames_raw"][0]).max() <= TOL


def test_encoder_on_video_matches_upstream(tiny_wm, golden):
    clip = frames_to_clip(golden["video_uint8"], 64)
    np.testing.assert_allclose(clip, golden["clip_video"], atol=1e-6)
    out = np.asarray(tiny_wm.backend.encode(clip))
    assert out.shape == golden["enc_video"].shape
    assert np.abs(out - golden["enc_video"]).max() <= TOL


def test_predictor_matches_upstream(tiny_wm, golden):
    out = np.asarray(tiny_wm.predict(golden["pred_x"], golden["actions"], golden["states"]))
    assert out.shape == golden["pred_out"].shape
    assert np.abs(out - golden["pred_out"]).max() <= TOL


def test_predictor_is_block_causal(tiny_wm, golden):
    """Changing frame 2's inputs must not change frames 0-1's outputs, and must change frame 2's."""
    x, a, s = (torch.from_numpy(golden[k]).clone() for k in ("pred_x", "actions", "states"))
    base = np.asarray(tiny_wm.predict(x, a, s))
    a[:, 2] += 0.5
    x[:, 32:] += 1.0
    moved = np.asarray(tiny_wm.predict(x, a, s))
    assert np.abs(moved[:, :32] - base[:, :32]).max() < 1e-6
    assert np.abs(moved[:, 32:] - base[:, 32:]).max() > 1e-2


def test_predictor_rejects_nan_actions(tiny_wm, golden):
    import pytest

    actions = golden["actions"].copy()
    actions[0, 1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny_wm.predict(golden["pred_x"], actions, golden["states"])
