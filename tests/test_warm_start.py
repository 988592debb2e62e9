"""Pretraining from another run's weights (`--init-from`), at another image / patch size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from jepa_ac.model.config import EncoderConfig
from jepa_ac.model.nn_torch.encoder import VisionTransformer
from jepa_ac.pretraining.warm_start import adapt_encoder_state, resample_patch_kernel

SAMPLE = Path(__file__).parents[1] / "datasets/samples/franka_reach_64"
TINY = {"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 2}
TINY_PREDICTOR = '{"predictor_embed_dim": 32, "depth": 1, "num_heads": 2}'


def pretrain(out: Path, encoder: dict, *extra: str) -> dict:
    from jepa_ac.pretrain_encoder import main

    return main(["--data", str(SAMPLE), "--out", str(out), "--encoder", json.dumps(encoder),
                 "--predictor", TINY_PREDICTOR, "--batch-size", "4", "--warmup-steps", "1",
                 "--val-fraction", "0.5", "--eval-every", "2", "--save-every", "2", "--device", "cpu", *extra])


def test_resampled_kernel_on_a_finer_patch_equals_the_old_kernel_on_the_pooled_patch():
    torch.manual_seed(0)
    weight = torch.randn(6, 3, 2, 4, 4)  # [D, C, t, p, p]
    wide = resample_patch_kernel(weight, 8)
    assert wide.shape == (6, 3, 2, 8, 8)
    x = torch.randn(5, 3, 2, 8, 8)
    pooled = F.avg_pool3d(x, (1, 2, 2))  # area resize 8 -> 4
    expected = torch.einsum("bctij,dctij->bd", pooled, weight)
    torch.testing.assert_close(torch.einsum("bctij,dctij->bd", x, wide), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(resample_patch_kernel(weight, 4), weight)
    # a constant patch keeps its response at any size (the kernel's sum is preserved)
    torch.testing.assert_close(resample_patch_kernel(weight, 6).sum((-1, -2)), weight.sum((-1, -2)), atol=1e-5,
                               rtol=1e-5)


def test_init_from_a_pretraining_run_at_double_resolution_starts_where_it_was(tmp_path):
    pretrain(tmp_path / "small", TINY, "--steps", "2")
    wide = {**TINY, "img_size": 64, "patch_size": 16}
    summary = pretrain(tmp_path / "wide", wide, "--steps", "2", "--stop-after", "1", "--lr", "1e-12",
                       "--start-lr", "1e-12", "--final-lr", "0", "--init-from", str(tmp_path / "small/checkpoint"))
    assert summary["step"] == 1
    config = json.loads((tmp_path / "wide/checkpoint/config.json").read_text())
    sources = config["provenance"]["initialised_from"]
    assert "trainer_state.safetensors" in sources["context_encoder"] and "trainer_state.safetensors" in sources["predictor"]

    import jepa_ac

    small, big = jepa_ac.load_world_model(tmp_path / "small/checkpoint"), jepa_ac.load_world_model(
        tmp_path / "wide/checkpoint")
    assert big.encoder_config.img_size == 64 and big.encoder_config.patch_size == 16
    frame = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    half = frame.reshape(32, 2, 32, 2, 3).mean((1, 3)).round().astype(np.uint8)  # area resize
    # one step at a negligible LR (EMA momentum ~0.998) moves the target encoder only slightly
    z_small, z_big = np.asarray(small.encode(half)), np.asarray(big.encode(frame))
    assert z_big.shape == z_small.shape
    assert float(np.abs(z_big - z_small).mean()) < 0.05 * float(np.abs(z_small).mean())


def test_init_from_an_encoder_folder_copies_it_into_both_encoders(tmp_path):
    pretrain(tmp_path / "small", TINY, "--steps", "2")
    encoder_only = tmp_path / "encoder_only"  # an encoder folder without a trainer state (an export)
    shutil.copytree(tmp_path / "small/final", encoder_only)
    for name in ("trainer_state.json", "trainer_state.safetensors"):
        (encoder_only / name).unlink()
    pretrain(tmp_path / "again", TINY, "--steps", "1", "--init-from", str(encoder_only))
    sources = json.loads((tmp_path / "again/final/config.json").read_text())["provenance"]["initialised_from"]
    assert sources == {"target_encoder": f"{encoder_only} (encoder)",
                       "context_encoder": "copy of the target encoder", "predictor": "fresh"}


def test_init_from_another_architecture_names_the_differences(tmp_path):
    pretrain(tmp_path / "small", TINY, "--steps", "1")
    with pytest.raises(SystemExit, match=r"^error: .*(embed_dim: 48 there vs 64 here.*depth: 2 there vs 3 here|"
                                         r"depth: 2 there vs 3 here.*embed_dim: 48 there vs 64 here)"):
        pretrain(tmp_path / "other", {**TINY, "embed_dim": 64, "depth": 3}, "--steps", "1",
                 "--init-from", str(tmp_path / "small/final"))
    other_predictor = '{"predictor_embed_dim": 32, "depth": 2, "num_heads": 2}'  # the checkpoint's has depth 1
    with pytest.raises(SystemExit, match=r"^error: .*mask predictor weights do not match.*missing predictor_blocks\.1\."):
        pretrain(tmp_path / "deeper", TINY, "--steps", "1", "--predictor", other_predictor,
                 "--init-from", str(tmp_path / "small/checkpoint"))
    with pytest.raises(SystemExit, match="^error: .*missing"):
        pretrain(tmp_path / "none", TINY, "--steps", "1", "--init-from", str(tmp_path / "missing"))


def test_resampled_encoder_is_a_valid_module_state():
    config = EncoderConfig(**{**TINY, "num_frames": 4})
    wide = EncoderConfig(**{**TINY, "num_frames": 4, "img_size": 48, "patch_size": 12})
    state = adapt_encoder_state(VisionTransformer(config).state_dict(), wide)
    VisionTransformer(wide).load_state_dict(state, strict=True)


def test_resume_does_not_read_the_init_source_again(tmp_path):
    """Resuming continues from the run's own checkpoint (and keeps its provenance); the --init-from source
    may be gone by then."""
    pretrain(tmp_path / "small", TINY, "--steps", "2")
    init = ("--steps", "4", "--init-from", str(tmp_path / "small/checkpoint"))
    pretrain(tmp_path / "whole", TINY, *init)
    pretrain(tmp_path / "split", TINY, *init, "--stop-after", "2")
    shutil.rmtree(tmp_path / "small")
    pretrain(tmp_path / "split", TINY, *init, "--resume", "true")
    whole, split = (json.loads((tmp_path / run / "final/config.json").read_text())["provenance"]
                    for run in ("whole", "split"))
    assert split["initialised_from"] == whole["initialised_from"] != {}
    from safetensors.numpy import load_file

    a, b = (load_file(str(tmp_path / run / "final/model.safetensors")) for run in ("whole", "split"))
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-6
