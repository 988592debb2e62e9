"""Predictor training: loss falls when overfitting, exact resume, DDP == single process."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from jepa_ac.world_model.checkpoints import read_checkpoint, save_checkpoint
from jepa_ac.training.clips import InMemoryClips
from jepa_ac.training.common import WarmupConstantDecay, batch_indices
from jepa_ac.training.predictor_loss import predictor_losses
from jepa_ac import train_predictor

TINY_PREDICTOR = json.dumps({"predictor_embed_dim": 96, "depth": 2, "num_heads": 2})


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tiny_wm):
    path = tmp_path_factory.mktemp("enc") / "encoder"
    save_checkpoint(path, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    return path


@pytest.fixture(scope="module")
def clips_npz(tmp_path_factory, tiny_wm, golden):
    """Three overlapping 4-frame clips of real encoder latents (the golden 8-frame video)."""
    z = np.asarray(tiny_wm.encode(golden["video_uint8"]))  # [8, 16, 192]
    latents = np.stack([z[s : s + 4] for s in (0, 2, 4)])  # [3, 4, 16, 192]
    rng = np.random.default_rng(0)
    states = rng.uniform(-0.3, 0.3, (3, 4, 7)).astype(np.float32)
    states[..., 6] = np.abs(states[..., 6])  # gripper closedness is in [0, 1]: the data check refuses others
    actions = rng.uniform(-0.05, 0.05, (3, 3, 7)).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "clips.npz"
    InMemoryClips(states, actions, latents=latents).save(path)
    return path


def run(encoder_dir, clips_npz, out, *extra):
    return train_predictor.main([
        "--data", str(clips_npz), "--encoder-checkpoint", str(encoder_dir), "--out", str(out), "--frames", "4",
        "--predictor", TINY_PREDICTOR, "--batch-size", "4", "--val-fraction", "0", "--warmup-steps", "2",
        "--decay-steps", "2", "--log-every", "1", "--device", "cpu", "--dtype", "float32", *extra])


def predictor_weights(path):
    return read_checkpoint(path).arrays["predictor"]


def test_schedule_and_data_order():
    sched = WarmupConstantDecay(lr=1.0, start_lr=0.1, final_lr=0.0, warmup_steps=10, decay_steps=10, total_steps=40)
    assert sched(0) == pytest.approx(0.1) and sched(10) == 1.0 and sched(29) == 1.0 and sched(40) == 0.0
    # every index once per epoch; ranks split the global batch
    first_epoch = np.concatenate([batch_indices(s, 12, 4, seed=3) for s in range(3)])
    assert sorted(first_epoch) == list(range(12))
    both = np.concatenate([batch_indices(5, 12, 4, 3, rank=r, world=2) for r in range(2)])
    assert sorted(both) == sorted(batch_indices(5, 12, 4, 3))


def test_losses_match_upstream_definition(tiny_wm, golden):
    """Teacher forcing on the golden clip equals the hand-computed L1 of the upstream predictor output."""
    pred = tiny_wm.backend.predictor
    h = torch.from_numpy(golden["pred_x"])  # [1, 3*16, 192]
    actions, states = torch.from_numpy(golden["actions"][:, :2]), torch.from_numpy(golden["states"])
    losses = predictor_losses(pred, h, actions, states, 16, auto_steps=2)
    out = torch.nn.functional.layer_norm(pred(h[:, :32], actions, states[:, :2]), (192,))
    assert float(losses.teacher_forcing) == pytest.approx(float((out - h[:, 16:]).abs().mean()), rel=1e-6)
    assert float(losses.rollout) > 0


def test_overfits_tiny_clips(encoder_dir, clips_npz, tmp_path):
    summary = run(encoder_dir, clips_npz, tmp_path / "run", "--steps", "250", "--lr", "1e-3", "--start-lr", "1e-3",
                  "--final-lr", "1e-3", "--weight-decay", "0", "--batch-size", "3", "--save-every", "1000",
                  "--eval-every", "1000")
    records = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] <= 0.1 * losses[0], (losses[0], losses[-1])
    assert summary["finished"] and (tmp_path / "run/final/model.safetensors").exists()
    assert (tmp_path / "run/loss_curves.png").exists()


def test_resume_is_exact(encoder_dir, clips_npz, tmp_path):
    common = ("--steps", "6", "--save-every", "100", "--eval-every", "100")
    run(encoder_dir, clips_npz, tmp_path / "whole", *common)
    partial = run(encoder_dir, clips_npz, tmp_path / "split", *common, "--stop-after", "3")
    assert partial == {"step": 3, "finished": False, "skipped_episodes": 0, "undecodable_episodes": 0}
    run(encoder_dir, clips_npz, tmp_path / "split", *common, "--resume", "true")
    a, b = predictor_weights(tmp_path / "whole/final"), predictor_weights(tmp_path / "split/final")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-6
    steps = [json.loads(line)["step"] for line in (tmp_path / "split/metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no step logged twice after the resume


def test_keep_every_leaves_loadable_snapshots(encoder_dir, clips_npz, tmp_path):
    """--keep-every N keeps step_NNNNNN/ folders (not at the last step, which is final/); each is a
    complete world model with the weights of that step, so checkpoints can be chosen after training."""
    import jepa_ac

    run(encoder_dir, clips_npz, tmp_path / "kept", "--steps", "5", "--keep-every", "2", "--save-every", "100")
    assert sorted(p.name for p in (tmp_path / "kept").glob("step_*")) == ["step_000002", "step_000004"]
    run(encoder_dir, clips_npz, tmp_path / "short", "--steps", "5", "--stop-after", "4", "--save-every", "100")
    a, b = predictor_weights(tmp_path / "kept/step_000004"), predictor_weights(tmp_path / "short/checkpoint")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) == 0.0
    assert jepa_ac.load_world_model(tmp_path / "kept/step_000002").predictor_config is not None
    with pytest.raises(SystemExit, match="^error: .*keep_every must be >= 0"):
        run(encoder_dir, clips_npz, tmp_path / "x", "--keep-every", "-1")


def test_ddp_two_processes_match_one(encoder_dir, clips_npz, tmp_path):
    args = ["--data", str(clips_npz), "--encoder-checkpoint", str(encoder_dir), "--frames", "4",
            "--predictor", TINY_PREDICTOR, "--batch-size", "4", "--val-fraction", "0", "--warmup-steps", "1",
            "--decay-steps", "1", "--steps", "3", "--device", "cpu", "--dtype", "float32"]  # 1e-5: float32's sums
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    subprocess.run(torchrun + ["2", "-m", "jepa_ac.train_predictor", *args, "--out", str(tmp_path / "ddp")],
                   check=True, env=env, capture_output=True, timeout=600)
    subprocess.run(torchrun + ["1", "-m", "jepa_ac.train_predictor", *args, "--out", str(tmp_path / "one")],
                   check=True, env=env, capture_output=True, timeout=600)
    a, b = predictor_weights(tmp_path / "ddp/final"), predictor_weights(tmp_path / "one/final")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5


def test_bad_config_is_rejected_with_a_one_line_error(encoder_dir, clips_npz, tmp_path):
    with pytest.raises(SystemExit, match="^error: .*frames"):
        run(encoder_dir, clips_npz, tmp_path / "x", "--frames", "1")
    with pytest.raises(SystemExit, match="^error: .*holds clips of 4 frames"):
        run(encoder_dir, clips_npz, tmp_path / "x", "--frames", "5")
    with pytest.raises(SystemExit, match="^error: checkpoint not found: .*nowhere"):
        run(tmp_path / "nowhere", clips_npz, tmp_path / "x")
    assert not (tmp_path / "x").exists()  # nothing written before the setup succeeded


def test_resume_does_not_read_the_init_predictor_again(encoder_dir, clips_npz, tmp_path):
    """Resuming continues from the run's own checkpoint; the --init-predictor source may be gone by then."""
    run(encoder_dir, clips_npz, tmp_path / "source", "--steps", "4")
    init = ("--init-predictor", str(tmp_path / "source/final"))
    common = ("--steps", "6", "--save-every", "100", "--eval-every", "100")
    run(encoder_dir, clips_npz, tmp_path / "whole", *common, *init)
    run(encoder_dir, clips_npz, tmp_path / "split", *common, *init, "--stop-after", "3")
    shutil.rmtree(tmp_path / "source")
    run(encoder_dir, clips_npz, tmp_path / "split", *common, *init, "--resume", "true")
    a, b = predictor_weights(tmp_path / "whole/final"), predictor_weights(tmp_path / "split/final")
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-6
    with pytest.raises(SystemExit, match="^error: checkpoint not found"):  # a fresh run still needs it
        run(encoder_dir, clips_npz, tmp_path / "fresh", *common, *init, "--resume", "true")


def test_fine_tune_from_upstream_checkpoint(encoder_dir, clips_npz, tmp_path, tiny_arch):
    """--init-predictor loads a released-layout .pt strictly; step 0 starts from exactly those weights."""
    from conftest import TINY_PT

    arch = {k: v for k, v in tiny_arch["predictor"].items() if k not in ("img_size", "patch_size", "num_frames",
                                                                          "tubelet_size")}
    run(encoder_dir, clips_npz, tmp_path / "ft", "--steps", "1", "--lr", "0", "--start-lr", "0", "--final-lr", "0",
        "--warmup-steps", "0", "--decay-steps", "0", "--init-predictor", str(TINY_PT), "--predictor", json.dumps(arch))
    upstream = torch.load(TINY_PT, weights_only=True)["predictor"]
    tuned = predictor_weights(tmp_path / "ft/final")
    assert max(float(np.abs(tuned[k] - upstream["module." + k].numpy()).max()) for k in tuned) == 0.0
    with pytest.raises(SystemExit, match="first bad key"):
        run(encoder_dir, clips_npz, tmp_path / "ft2", "--steps", "4", "--init-predictor", str(TINY_PT),
            "--predictor", json.dumps({"predictor_embed_dim": 48, "depth": 2, "num_heads": 2}))


def test_trains_from_latent_cache_and_from_video(encoder_dir, tmp_path):
    """The shipped 2-episode sample: on-the-fly video clips and the zarr latent cache both train."""
    from conftest import FIXTURES
    from jepa_ac import encode_dataset
    from jepa_ac.training.clips import open_clips, split_by_episode

    sample = FIXTURES.parent.parent / "datasets" / "samples"
    encode_dataset.main(["--data", str(sample), "--checkpoint", str(encoder_dir), "--out",
                         str(tmp_path / "cache.zarr"), "--no-progress", "--device", "cpu"])
    for data in (str(tmp_path / "cache.zarr"), str(sample)):
        clips = open_clips(data, frames=4, fps=4.0)
        train, val = split_by_episode(clips, 0.5, seed=0)
        assert len(train) and len(val)
        train_eps = {clips.windows[i][0] for i in train.indices}
        assert train_eps.isdisjoint({clips.windows[i][0] for i in val.indices})
        summary = run(encoder_dir, data, tmp_path / f"run_{len(data)}", "--steps", "2", "--warmup-steps", "0",
                      "--decay-steps", "0", "--val-fraction", "0.5", "--eval-every", "2")
        assert summary["finished"] and summary["val_copy_last_baseline"] > 0


def test_trains_in_bf16_autocast_on_the_cpu(encoder_dir, clips_npz, tmp_path):
    """--dtype bfloat16 runs the forward passes under CPU autocast (any CPU; `auto` picks it where the
    CPU has bf16 dot products): the loss still falls, differs from float32's, and weights stay float32."""
    common = ("--steps", "60", "--lr", "1e-3", "--start-lr", "1e-3", "--final-lr", "1e-3", "--weight-decay", "0",
              "--batch-size", "3", "--save-every", "1000", "--eval-every", "1000")
    run(encoder_dir, clips_npz, tmp_path / "fp32", *common)
    run(encoder_dir, clips_npz, tmp_path / "bf16", *common, "--dtype", "bfloat16")
    curves = {}
    for name in ("fp32", "bf16"):
        records = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        curves[name] = [r["loss"] for r in records if "loss" in r]
    assert curves["bf16"][-1] <= 0.5 * curves["bf16"][0], curves["bf16"]
    assert curves["bf16"][0] != curves["fp32"][0]  # autocast really ran the forward in bf16
    assert abs(curves["bf16"][-1] - curves["fp32"][-1]) <= 0.25 * curves["fp32"][-1] + 0.01
    config = json.loads((tmp_path / "bf16/final/config.json").read_text())
    assert config["provenance"]["train_dtype"] == "bfloat16"
    assert all(v.dtype == np.float32 for v in predictor_weights(tmp_path / "bf16/final").values())
