"""V-JEPA pretraining: mask predictor, augmentation, the training loop, resume, DDP, output checkpoint."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from jepa_ac.model.config import MaskPredictorConfig
from jepa_ac.model.nn_torch.mask_predictor import MaskPredictor
from jepa_ac.pretraining.trainer import PretrainEncoderConfig, PretrainTrainer, feature_std
from jepa_ac.pretraining.video_data import CropSpec, VideoClips, random_resized_crop
from jepa_ac.model.preprocess import frames_to_clip

SAMPLE = Path(__file__).parents[1] / "datasets/samples/franka_reach_64"
TINY_ENCODER = '{"img_size": 32, "patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 2}'
TINY_PREDICTOR = '{"predictor_embed_dim": 32, "depth": 1, "num_heads": 2}'


def run(out: Path, *extra: str) -> dict:
    from jepa_ac.pretrain_encoder import main

    return main(["--data", str(SAMPLE), "--out", str(out), "--encoder", TINY_ENCODER, "--predictor", TINY_PREDICTOR,
                 "--batch-size", "4", "--warmup-steps", "2", "--val-fraction", "0.5", "--eval-every", "2",
                 "--save-every", "2", "--device", "cpu", "--dtype", "float32", *extra])


def encoder_weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v for k, v in load_file(str(path / "model.safetensors")).items() if k.startswith("encoder.")}


def test_mask_predictor_uses_positions_not_order():
    torch.manual_seed(0)
    predictor = MaskPredictor(MaskPredictorConfig(embed_dim=24, predictor_embed_dim=16, depth=2, num_heads=2, init_std=0.3)).eval()
    context = torch.randn(2, 5, 24)
    context_ids = torch.tensor([[0, 3, 4, 9, 12]] * 2)
    target_ids = torch.tensor([[1, 2, 7]] * 2)
    out = predictor(context, context_ids, target_ids, (4, 4), 0)
    assert out.shape == (2, 3, 24)
    perm = torch.tensor([4, 2, 0, 1, 3])  # shuffling the context (with its ids) changes nothing
    shuffled = predictor(context[:, perm], context_ids[:, perm], target_ids, (4, 4), 0)
    torch.testing.assert_close(out, shuffled, atol=1e-5, rtol=1e-5)
    moved = predictor(context, context_ids, torch.tensor([[1, 2, 8]] * 2), (4, 4), 0)
    assert not torch.allclose(out[:, 2], moved[:, 2], atol=1e-3)  # a target's position matters
    other_token = predictor(context, context_ids, target_ids, (4, 4), 1)
    assert not torch.allclose(out, other_token, atol=1e-3)  # one mask token per generator
    with pytest.raises(ValueError, match="mask_index"):
        predictor(context, context_ids, target_ids, (4, 4), 2)


def test_random_resized_crop():
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (3, 4, 64, 80, 3), dtype=np.uint8)
    out = random_resized_crop(clips, 32, CropSpec(), np.random.default_rng(1))
    assert out.shape == (3, 3, 4, 32, 32) and out.dtype == torch.float32
    again = random_resized_crop(clips, 32, CropSpec(), np.random.default_rng(1))
    torch.testing.assert_close(out, again)  # a function of the rng
    # a full-frame crop of a square clip matches the planning-time preprocessing closely
    square = clips[:, :, :, :64]
    full = random_resized_crop(square, 32, CropSpec(scale=(1.0, 1.0), ratio=(1.0, 1.0)), rng)
    reference = torch.as_tensor(frames_to_clip(square[0], 32))[0]
    assert float((full[0] - reference).abs().mean()) < 0.02
    repeated = random_resized_crop(square, 32, CropSpec(repeat_frame_prob=1.0), rng)
    torch.testing.assert_close(repeated[:, :, 0], repeated[:, :, 3])
    with pytest.raises(ValueError, match="uint8"):
        random_resized_crop(clips.astype(np.float32), 32, CropSpec(), rng)
    with pytest.raises(ValueError, match="scale"):
        CropSpec(scale=(0.0, 1.0))


def test_video_clips_preload_matches_decoding():
    lazy, loaded = VideoClips(SAMPLE, 4, 4.0), VideoClips(SAMPLE, 4, 4.0, preload=True)
    assert len(lazy) == len(loaded) > 0
    for i in (0, len(lazy) - 1):
        np.testing.assert_array_equal(lazy[i], loaded[i])


def test_pretraining_learns_and_writes_an_encoder(tmp_path):
    summary = run(tmp_path / "run", "--steps", "60", "--lr", "1e-3", "--log-every", "1")
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5])
    assert {"lr", "weight_decay", "ema_momentum", "target_std", "grad_norm"} <= set(records[0])
    wd = [r["weight_decay"] for r in records if "weight_decay" in r]
    assert wd[0] < wd[-1] <= 0.4  # cosine weight-decay ramp 0.04 -> 0.4
    assert summary["finished"] and "val_loss" in summary
    assert (tmp_path / "run/loss_curves.png").exists()
    import jepa_ac

    wm = jepa_ac.load_world_model(tmp_path / "run/final")
    z = np.asarray(wm.encode(np.zeros((48, 48, 3), np.uint8)))
    assert z.shape == (1, 16, 48)
    config = json.loads((tmp_path / "run/final/config.json").read_text())
    assert config["provenance"]["trained_by"] == "jepa_ac.pretrain_encoder"
    assert config["provenance"]["train_config"]["steps"] == 60


def test_resume_is_exact(tmp_path):
    run(tmp_path / "whole", "--steps", "4", "--keep-every", "2")
    run(tmp_path / "split", "--steps", "4", "--stop-after", "2")
    assert not (tmp_path / "split/final").exists()
    # --keep-every: the step-2 snapshot of the whole run is the split run's step-2 checkpoint
    assert sorted(p.name for p in (tmp_path / "whole").glob("step_*")) == ["step_000002"]
    a, b = encoder_weights(tmp_path / "whole/step_000002"), encoder_weights(tmp_path / "split/checkpoint")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    run(tmp_path / "split", "--steps", "4", "--resume", "true")
    a, b = encoder_weights(tmp_path / "whole/final"), encoder_weights(tmp_path / "split/final")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-6


def test_collapse_is_reported(caplog):
    class Constant:
        windows = [(i, 0) for i in range(8)]

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return np.full((4, 32, 32, 3), 128, np.uint8)

    config = PretrainEncoderConfig(data="constant", encoder=json.loads(TINY_ENCODER), predictor=json.loads(TINY_PREDICTOR),
                                   batch_size=4, steps=2, warmup_steps=1, out="unused", device="cpu")
    trainer = PretrainTrainer(config, Constant())
    with caplog.at_level(logging.WARNING):
        record = trainer.train_step()
    assert record["target_std"] < 0.05
    assert "collapsing" in caplog.text
    assert feature_std(torch.randn(2, 10, 8)) > 0.5


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="masks"):
        PretrainEncoderConfig(masks="checkerboard")
    with pytest.raises(ValueError, match="patch_size"):
        PretrainEncoderConfig(encoder={"img_size": 30, "patch_size": 8, "embed_dim": 48, "depth": 1, "num_heads": 2})
    with pytest.raises(ValueError, match="ema"):
        PretrainEncoderConfig(ema_start=1.0, ema_end=0.99)
    with pytest.raises(ValueError, match="keep_every must be >= 0"):
        PretrainEncoderConfig(keep_every=-1)


def test_ddp_two_processes(tmp_path):
    args = ["--data", str(SAMPLE), "--encoder", TINY_ENCODER, "--predictor", TINY_PREDICTOR, "--batch-size", "4",
            "--val-fraction", "0", "--warmup-steps", "1", "--steps", "2", "--device", "cpu", "--out", str(tmp_path / "ddp")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "jepa_ac.pretrain_encoder", *args], check=True, env=env, capture_output=True, timeout=600)
    state = json.loads((tmp_path / "ddp/final/trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == 2


def test_linear_probe_recovers_a_linear_target():
    from jepa_ac.pretraining.probe import probe, ridge_fit_predict

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 50))
    w = rng.normal(size=(50, 3))
    y = x @ w * 0.01 + 0.3  # positions in metres
    episode = np.repeat(np.arange(20), 20)
    result = probe(x, y, episode)
    assert result["rmse_cm"] < 0.5 and result["r2"] > 0.99
    noise = probe(rng.normal(size=(400, 50)), y, episode)  # features unrelated to the target
    assert noise["r2"] < 0.2
    np.testing.assert_allclose(ridge_fit_predict(x, y, x[:5], 1e-6), y[:5], atol=1e-3)


def test_probe_cli_compares_encoders_with_random_init_and_pixels(tmp_path):
    from planning_helpers import write_tiny_model

    from jepa_ac.pretraining import probe

    first, second = (write_tiny_model(tmp_path / name, seed=seed) for name, seed in (("a", 0), ("b", 1)))
    report = probe.main(["--encoder", str(first), str(second), "--names", "run a", "run b", "--episodes", "4",
                         "--image-size", "64", "--out", str(tmp_path / "out")])
    assert list(report["results"]) == ["run a", "run b", "random_init", "pixels"]
    for res in report["results"].values():
        assert res["ee"]["folds"] == 4 and len(res["object"]["fold_rmse_cm"]) == 4
        assert res["ee"]["test_frames"] == report["frames"]  # every frame is held out once
    table = (tmp_path / "out" / "probe.md").read_text()
    assert "| run b |" in table and "| pixels |" in table and "RMSE vs random init" in table
    assert json.loads((tmp_path / "out" / "probe.json").read_text())["encoders"]["run a"] == str(first)
    with pytest.raises(SystemExit):
        probe.main(["--encoder", str(first), "--names", "x", "y", "--out", str(tmp_path / "out")])


def test_probe_frame_stride_keeps_every_kth_frame_of_each_episode():
    from jepa_ac.pretraining.probe import collect_probe_data

    full = collect_probe_data(2, 32, noise=0.5, seed=3)
    strided = collect_probe_data(2, 32, noise=0.5, seed=3, frame_stride=7)
    for e in (0, 1):
        np.testing.assert_array_equal(strided.frames[strided.episode == e], full.frames[full.episode == e][::7])
        np.testing.assert_array_equal(strided.object[strided.episode == e], full.object[full.episode == e][::7])
    with pytest.raises(ValueError, match="frame_stride"):
        collect_probe_data(1, 32, noise=0.5, seed=3, frame_stride=0)


def test_pretraining_runs_in_bf16_autocast_on_the_cpu(tmp_path):
    """--dtype bfloat16: the context encoder, mask predictor and EMA target run under CPU autocast;
    the loss falls as in float32 and the saved weights are float32."""
    run(tmp_path / "bf16", "--steps", "40", "--lr", "1e-3", "--log-every", "1", "--dtype", "bfloat16")
    records = [json.loads(line) for line in (tmp_path / "bf16/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert np.all(np.isfinite(losses)) and np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    config = json.loads((tmp_path / "bf16/final/config.json").read_text())
    assert config["provenance"]["train_dtype"] == "bfloat16"
    assert all(v.dtype == np.float32 for v in encoder_weights(tmp_path / "bf16/final").values())
