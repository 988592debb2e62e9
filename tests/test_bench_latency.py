"""`python -m jepa_ac.bench latency` in quick mode (tiny model, few samples)."""

from __future__ import annotations

import json

import pytest

from jepa_ac.bench import latency
from jepa_ac.model.config import PredictorConfig


def test_quick_run_writes_results_and_checks_the_reference(tmp_path):
    assert latency.main(["--quick", "--reference", "--backends", "torch", "--threads", "1", "--horizon", "1,2",
                         "--dtype", "float32", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "latency.json").read_text())
    assert [(c["size"], c["horizon"]) for c in report["cases"]] == [("tiny", 1), ("tiny", 2)]
    assert report["machine"]["isa"]["label"]
    for case in report["cases"]:
        paths = {r["path"]: r for r in case["rows"]}
        assert set(paths) == {"reference", "torch"} and case["compared_with"] == "reference (float32)"
        fast = paths["torch"]
        assert fast["same_elites"] and fast["action_max_abs_diff"] < 1e-5
        assert fast["ratio"] > 0 and len(fast["times_s"]) == 1
        assert fast["samples"] == 32 and fast["iterations"] == 2 and case["encoder_frames_per_s"]["float32"] > 0
        assert fast["dtype"] == "float32" and fast["isa"] == report["machine"]["isa"]["row"]
    text = (tmp_path / "latency.md").read_text()
    assert "| tiny | 2 | 32 x 2 | torch | float32 |" in text
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_without_the_reference_rows_compare_with_the_first_variant(tmp_path):
    # without --reference the first fast variant is the baseline (this used to crash on its result type)
    assert latency.main(["--quick", "--backends", "torch", "--threads", "1", "--dtype", "float32,bfloat16",
                         "--out", str(tmp_path)]) == 0
    (case,) = json.loads((tmp_path / "latency.json").read_text())["cases"]
    assert [(r["path"], r["dtype"]) for r in case["rows"]] == [("torch", "float32"), ("torch", "bfloat16")]
    assert case["compared_with"] == "torch (float32)" and case["rows"][0]["ratio"] == 1.0
    assert case["rows"][0]["same_elites"] and case["rows"][1]["action_max_abs_diff"] < 0.1
    assert "| tiny | 1 | 32 x 2 | torch | bfloat16 |" in (tmp_path / "latency.md").read_text()


def test_variants_resolve_auto_per_backend():
    order = latency.variants(("torch", "mlx"), ("float32", "auto"), "cpu", reference=True)
    assert order[0] == ("reference", "float32") and ("torch", "float32") in order
    assert ("mlx", "float32") in order and ("mlx", "bfloat16") not in order  # MLX's auto is float32
    assert len(order) == len(set(order))


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
    with pytest.raises(SystemExit):
        latency.main(["--dtype", "float8", "--out", str(tmp_path)])
