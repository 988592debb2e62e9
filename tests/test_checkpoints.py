"""Loading every checkpoint layout strictly; our folder format round-trips; HF parity."""

import json

import numpy as np
import pytest
import torch

import jepa_ac
from jepa_ac.world_model.checkpoints import CheckpointError, read_checkpoint
from jepa_ac.model.config import EncoderConfig, PredictorConfig

from conftest import TINY_PT


def test_presets_have_released_shapes():
    from jepa_ac.model.nn_torch.layers import Block

    g = jepa_ac.ENCODER_PRESETS["vit_giant"]
    assert (g.embed_dim, g.depth, g.num_heads, g.head_dim) == (1408, 40, 22, 64)
    block = Block(g.embed_dim, g.num_heads, g.mlp_ratio, True, False, True, 1e-6)
    assert block.mlp.fc1.out_features == 6144  # int(1408 * 48/11)
    assert jepa_ac.ENCODER_PRESETS["vit_giant_384"].grid_size == 24
    ac = jepa_ac.PREDICTOR_PRESETS["vit_ac_giant"]
    assert (ac.embed_dim, ac.predictor_embed_dim, ac.depth, ac.num_heads) == (1408, 1024, 24, 16)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="img_size"):
        EncoderConfig(img_size=250)
    with pytest.raises(ValueError, match="embed_dim"):
        EncoderConfig(embed_dim=100, num_heads=16)
    with pytest.raises(TypeError, match="use_SiLU"):
        EncoderConfig(use_SiLU=True)  # upstream silently swallows this typo
    with pytest.raises(ValueError, match="unknown encoder preset"):
        jepa_ac.load_world_model(TINY_PT, encoder="vit_tiny")


def test_upstream_needs_architecture():
    with pytest.raises(CheckpointError, match="encoder="):
        jepa_ac.load_world_model(TINY_PT)


def test_wrong_size_checkpoint_names_first_bad_key(tiny_arch):
    bigger = dict(tiny_arch["encoder"], embed_dim=256, num_heads=4)
    with pytest.raises(CheckpointError, match=r"first bad key: patch_embed\.proj\.weight"):
        jepa_ac.load_world_model(TINY_PT, encoder=bigger, predictor=tiny_arch["predictor"])
    deeper = dict(tiny_arch["predictor"], depth=3)
    with pytest.raises(CheckpointError, match=r"first bad key: missing predictor_blocks\.2\.norm1\.weight"):
        jepa_ac.load_world_model(TINY_PT, encoder=tiny_arch["encoder"], predictor=deeper)


def test_unexpected_and_missing_keys_are_named(tmp_path, tiny_arch):
    blob = torch.load(TINY_PT, weights_only=True)
    blob["encoder"]["module.backbone.extra.weight"] = torch.zeros(3)
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="unexpected .*extra.weight"):
        jepa_ac.load_world_model(tmp_path / "bad.pt", encoder=tiny_arch["encoder"], load_predictor=False)
    del blob["encoder"]["module.backbone.extra.weight"]
    del blob["predictor"]["module.predictor_norm.bias"]
    torch.save(blob, tmp_path / "bad2.pt")
    with pytest.raises(CheckpointError, match="missing predictor_norm.bias"):
        jepa_ac.load_world_model(tmp_path / "bad2.pt", encoder=tiny_arch["encoder"], predictor=tiny_arch["predictor"])


def test_upstream_pos_embed_is_dropped_on_purpose(tmp_path, tiny_arch, golden):
    blob = torch.load(TINY_PT, weights_only=True)
    blob["encoder"]["module.backbone.pos_embed"] = torch.zeros(1, 64, 192)
    torch.save(blob, tmp_path / "with_pos.pt")
    wm = jepa_ac.load_world_model(tmp_path / "with_pos.pt", encoder=tiny_arch["encoder"],
                                  predictor=tiny_arch["predictor"])
    assert np.abs(np.asarray(wm.encode(golden["frames_uint8"])).reshape(1, -1, 192) - golden["pred_x"]).max() < 1e-4


def test_corrupt_files_have_clear_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_checkpoint(tmp_path / "junk.pt")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": "jepa_ac", "encoder": {}, "predictor": None}))
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(folder)
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "nothing")


def test_our_format_round_trips(tmp_path, tiny_wm, golden):
    path = tiny_wm.save(tmp_path / "ckpt", provenance={"note": "test"})
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    wm = jepa_ac.load_world_model(path)  # architecture comes from config.json
    assert wm.encoder_config == tiny_wm.encoder_config and wm.predictor_config == tiny_wm.predictor_config
    assert json.loads((path / "config.json").read_text())["provenance"]["note"] == "test"
    out = np.asarray(wm.predict(golden["pred_x"], golden["actions"], golden["states"]))
    assert np.abs(out - golden["pred_out"]).max() <= 1e-4
    # fp16 storage: smaller, close
    half = jepa_ac.load_world_model(tiny_wm.save(tmp_path / "half", dtype="float16"))
    out16 = np.asarray(half.predict(golden["pred_x"], golden["actions"], golden["states"]))
    assert (tmp_path / "half/model.safetensors").stat().st_size < 0.6 * (path / "model.safetensors").stat().st_size
    assert np.abs(out16 - golden["pred_out"]).max() < 0.05
    # saving over an existing checkpoint replaces it whole
    tiny_wm.save(tmp_path / "ckpt")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_our_format_rejects_conflicting_architecture(tmp_path, tiny_wm, tiny_arch):
    path = tiny_wm.save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="depth"):
        jepa_ac.load_world_model(path, encoder=dict(tiny_arch["encoder"], depth=3))


def test_hf_folder_matches_transformers(tmp_path):
    """A random tiny `VJEPA2Model` saved with save_pretrained loads through our loader and agrees."""
    transformers = pytest.importorskip("transformers")
    config = transformers.VJEPA2Config(
        crop_size=64, frames_per_clip=4, hidden_size=96, num_attention_heads=3, num_hidden_layers=2,
        mlp_ratio=4.0, pred_hidden_size=48, pred_num_attention_heads=3, pred_num_hidden_layers=1,
        num_pooler_layers=1)
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(config).eval()
    with torch.no_grad():  # make every LayerNorm gain/bias non-trivial so a wrong mapping shows
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    wm = jepa_ac.load_world_model(tmp_path / "hf")
    assert wm.predictor_config is None and wm.encoder_config.embed_dim == 96
    video = torch.randn(1, 4, 3, 64, 64)  # HF layout [B, T, C, H, W]
    with torch.no_grad():
        ref = model(pixel_values_videos=video, skip_predictor=True).last_hidden_state
    ours = wm.backend.encode(video.permute(0, 2, 1, 3, 4).numpy())
    assert np.abs(np.asarray(ours) - ref.numpy()).max() <= 1e-4
