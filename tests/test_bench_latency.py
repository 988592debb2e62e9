"""`python -m jepa_ac.bench latency` in quick mode (tiny model, few samples)."""

from __future__ import annotations

import json

import pytest

from jepa_ac.bench import latency
from jepa_ac.model.config import PredictorConfig


def test_quick_run_writes_results_and_checks_the_reference(tmp_path):
    assert latency.main(["--quick", "--reference", "--backends", "torch", "--threads", "1", "--horizon", "1,2",
                         "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "latency.json").read_text())
    assert [(c["size"], c["horizon"]) for c in report["cases"]] == [("tiny", 1), ("tiny", 2)]
    for case in report["cases"]:
        paths = {r["path"]: r for r in case["rows"]}
        assert set(paths) == {"reference", "torch"}
        fast = paths["torch"]
        assert fast["same_elites"] and fast["action_max_abs_diff"] < 1e-5
        assert fast["ratio_vs_reference"] > 0 and len(fast["times_s"]) == 1
        assert fast["samples"] == 32 and fast["iterations"] == 2 and case["encoder_frames_per_s"] > 0
    text = (tmp_path / "latency.md").read_text()
    assert "| tiny | 2 | 32 x 2 | torch |" in text
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_predictor_gflop_counts_the_cache():
    config = PredictorConfig(img_size=64, patch_size=16, predictor_embed_dim=64, depth=2, num_heads=2, embed_dim=96)
    one = latency.predictor_gflop(config, samples=10, horizon=1, iterations=1)
    assert latency.predictor_gflop(config, samples=20, horizon=1, iterations=3) == pytest.approx(6 * one)
    two = latency.predictor_gflop(config, samples=10, horizon=2, iterations=1)
    assert 2 * one < two < 2.5 * one  # the second frame also attends to the first frame's keys


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        latency.main(["--sizes", "huge", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        latency.main(["--backends", "jax", "--out", str(tmp_path)])
