"""`python -m jepa_ac.bench train_throughput`: cache vs on-the-fly training on the committed sample."""

import json
from pathlib import Path

import numpy as np
import pytest

from jepa_ac.bench import train_throughput
from jepa_ac.world_model.checkpoints import save_checkpoint
from jepa_ac.training.clips import InMemoryClips
from jepa_ac.training.predictor_trainer import PredictorTrainer, TrainPredictorConfig

SAMPLE = Path(__file__).parents[1] / "datasets/samples/franka_reach_64/trajectories.txt"
TINY_PREDICTOR = json.dumps({"predictor_embed_dim": 48, "depth": 1, "num_heads": 3})


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tiny_wm):
    path = tmp_path_factory.mktemp("enc") / "encoder"
    save_checkpoint(path, {"encoder": tiny_wm.backend.state_arrays("encoder")}, tiny_wm.encoder_config, None)
    return path


def test_pick_episodes_spreads_over_the_list():
    folders = [Path(f"ep{i}") for i in range(10)]
    assert train_throughput.pick_episodes(folders, 3) == [Path("ep0"), Path("ep4"), Path("ep9")]
    assert train_throughput.pick_episodes(folders, 50) == folders
    with pytest.raises(ValueError, match="--episodes"):
        train_throughput.pick_episodes(folders, 0)


def test_bench_times_both_modes_on_identical_batches(tmp_path, encoder_dir):
    out = tmp_path / "out"
    rc = train_throughput.main(["--data", str(SAMPLE), "--episodes", "2", "--encoder", str(encoder_dir),
                                "--predictor", TINY_PREDICTOR, "--batch-size", "3", "--steps", "2", "--warmup", "1",
                                "--out", str(out), "--work", str(tmp_path / "work")])
    assert rc == 0
    result = json.loads((out / "throughput.json").read_text())
    cache, video = result["results"]["cache"], result["results"]["video"]
    assert cache["clips"] == video["clips"] == 2 * (11 - 4 + 1)
    # same initial weights and the same clips at step 0: the losses agree up to the float16 cache
    assert result["first_loss_abs_diff"] < 1e-3 * cache["first_loss"]
    for mode in (cache, video):  # the data time is measured inside the step
        assert 0 < mode["data_s_mean"] < mode["step_s_mean"] and mode["model_s_mean"] > 0
    assert result["speedup"] == pytest.approx(cache["steps_per_s"] / video["steps_per_s"])
    assert result["cache_build"]["frames"] == 22 and result["encoder"]["choice"] == "given"
    assert "| cache |" in (out / "throughput.md").read_text()


class _Recording:
    """A clip dataset that records which items were read."""

    def __init__(self, data):
        self.data, self.read = data, []

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.read.append(i)
        return self.data[i]


def test_validation_spreads_over_held_out_clips(tmp_path, encoder_dir, tiny_wm):
    """val_batches * batch_size clips are taken evenly over the whole held-out set, not its first clips."""
    rng = np.random.default_rng(0)
    n = tiny_wm.tokens_per_frame
    clips = InMemoryClips(rng.normal(0, 0.1, (10, 3, 7)), rng.normal(0, 0.01, (10, 2, 7)),
                          latents=rng.normal(0, 1, (10, 3, n, 192)).astype(np.float32))
    val = _Recording(clips)
    config = TrainPredictorConfig(data="unused", encoder_checkpoint=str(encoder_dir),
                                  predictor=json.loads(TINY_PREDICTOR), frames=3, batch_size=2, val_batches=2,
                                  steps=10, warmup_steps=1, decay_steps=1, device="cpu", out=str(tmp_path / "run"))
    metrics = PredictorTrainer(config, clips, val).validate()
    assert val.read == [0, 3, 6, 9]
    assert metrics["val_copy_last_baseline"] > 0
