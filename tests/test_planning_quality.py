"""`experiments/planning_quality/run.py`: variants on the same seeds, gate calibrated from the baseline; the
samplers that did not ship (coloured noise, adaptive sample counts) plugged into the planner."""

import json

import numpy as np
import pytest

from planning_helpers import TINY_PLANNING, load_experiment, restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac.model.array_ops import NUMPY_OPS
from jepa_ac.planning import ActionSpec, CEMConfig, cem, sample_noise

planning_quality = load_experiment("planning_quality/run.py")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return write_tiny_model(tmp_path_factory.mktemp("ckpt") / "tiny", planning=TINY_PLANNING)


def test_variants_share_seeds_and_report_compute(tiny_folder, tmp_path):
    out = tmp_path / "pq"
    planning_quality.main(["--checkpoint", str(tiny_folder), "--episodes", "2", "--threads", "1", "--no-progress",
                           "--variants", "surprise_gate,baseline,adaptive_samples,icem", "--out", str(out)])
    result = json.loads((out / "planning_quality.json").read_text())
    rows = {r["variant"]: r for r in result["rows"]}
    assert list(rows) == ["baseline", "icem", "adaptive_samples", "surprise_gate"]  # baseline first
    seeds = rows["baseline"]["episode_seeds"]
    assert all(r["episode_seeds"] == seeds for r in rows.values())
    assert rows["baseline"]["samples_per_step"] == 16 * 2 and rows["baseline"]["replan_fraction"] == 1.0
    assert rows["icem"]["samples_per_step"] == 32 and rows["icem"]["cem"]["keep_elites"] == 0.3
    assert rows["adaptive_samples"]["overrides"]["min_samples"] == 4  # a quarter of 16
    assert "AdaptiveSamples(min_samples=4)" in rows["adaptive_samples"]["make_planner"]
    assert "ColouredNoise(beta=2.0)" in rows["icem"]["make_planner"] and "make_planner" not in rows["baseline"]
    assert 16 + 4 <= rows["adaptive_samples"]["samples_per_step"] <= 32
    # the gate is a quantile of the baseline's surprises, and it skips some re-plans
    assert result["surprise_gate"] == pytest.approx(rows["surprise_gate"]["cem"]["surprise_gate"])
    assert result["surprise_gate"] > 0 and rows["surprise_gate"]["replan_fraction"] <= 1.0
    table = (out / "planning_quality.md").read_text()
    assert table.count("\n| ") == 5 and "| baseline | - |" in table
    assert (out / "planning_quality.png").stat().st_size > 1000


def test_unknown_variant():
    with pytest.raises(SystemExit, match="unknown variants"):
        planning_quality.main(["--variants", "baseline,magic"])


def test_a_later_run_replaces_its_variants_and_keeps_the_rest(tiny_folder, tmp_path):
    common = ["--checkpoint", str(tiny_folder), "--episodes", "1", "--threads", "1", "--no-progress",
              "--out", str(tmp_path)]
    planning_quality.main([*common, "--variants", "baseline,surprise_gate"])
    first = json.loads((tmp_path / "planning_quality.json").read_text())
    planning_quality.main([*common, "--variants", "hold"])  # the gate stays the baseline's
    merged = json.loads((tmp_path / "planning_quality.json").read_text())
    assert [r["variant"] for r in merged["rows"]] == ["baseline", "surprise_gate", "hold"]
    assert merged["surprise_gate"] == first["surprise_gate"] and merged["rows"][0] == first["rows"][0]
    assert merged["rows"][2]["cem"]["hold_unless_better"] is True and merged["rows"][2]["hold_fraction"] is not None
    planning_quality.main([*common, "--episodes", "2", "--variants", "hold"])  # another setup: starts afresh
    assert [r["variant"] for r in json.loads((tmp_path / "planning_quality.json").read_text())["rows"]] == ["hold"]


@pytest.mark.parametrize("flags, message", [
    (["--cem", "bogus=1"], "command line: unknown key 'cem.bogus'; known keys under cem: samples, "),
    (["--cem", "keep_elites=2"], "CEMConfig.keep_elites must be in \\[0, 1\\], got 2"),
    (["--samples", "0"], "CEMConfig.samples must be a positive int, got 0"),
])
def test_bad_planning_flags_exit_with_a_message(tiny_folder, tmp_path, flags, message):
    from jepa_ac import evaluate

    with pytest.raises(SystemExit, match=f"^error: .*{message}"):
        evaluate.main(["--checkpoint", str(tiny_folder), "--env", "reach", "--episodes", "1", "--no-progress",
                       "--out", str(tmp_path), *flags])
    with pytest.raises(SystemExit, match="settings file not found"):
        evaluate.main(["--env", "reach", "--episodes", "1", "--planning", str(tmp_path / "missing.json"),
                       "--out", str(tmp_path)])


# -- the samplers -------------------------------------------------------------------------------------
def test_coloured_noise_is_white_at_beta_zero_and_horizon_one():
    coloured_noise = planning_quality.coloured_noise
    white = np.random.default_rng(0).standard_normal((4, 50, 1, 3)).astype(np.float32)
    np.testing.assert_array_equal(coloured_noise(white, 2.0, axis=2), white)  # H = 1: nothing to correlate
    white = np.random.default_rng(0).standard_normal((4, 50, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(coloured_noise(white, 0.0, axis=2), white)


def test_coloured_noise_is_correlated_in_time_with_unit_variance():
    coloured_noise = planning_quality.coloured_noise
    white = np.random.default_rng(1).standard_normal((20000, 16)).astype(np.float32)
    brown = coloured_noise(white, 2.0, axis=1)
    assert brown.dtype == np.float32 and brown.shape == white.shape
    assert abs(brown.var() - 1.0) < 0.05
    lag1 = np.mean(brown[:, 1:] * brown[:, :-1]) / brown.var()
    assert lag1 > 0.6  # neighbouring steps move together
    assert abs(np.mean(white[:, 1:] * white[:, :-1])) < 0.02
    np.testing.assert_array_equal(coloured_noise(white, 2.0, axis=1), brown)  # deterministic


def test_the_coloured_noise_sampler_filters_the_planners_white_noise():
    config, spec = CEMConfig(samples=32, iterations=2, topk=4, horizon=6), ActionSpec()
    white = sample_noise(config, spec, np.random.default_rng(5))
    coloured = planning_quality.ColouredNoise(2.0).noise(config, spec, np.random.default_rng(5))
    np.testing.assert_array_equal(coloured, planning_quality.coloured_noise(white, 2.0, axis=2))
    with pytest.raises(ValueError, match="beta"):
        planning_quality.ColouredNoise(-1.0)


def test_adaptive_samples_shrink_with_the_spread():
    from test_cem import TARGET, quadratic_cost, recording

    config, spec = CEMConfig(samples=200, iterations=6, topk=10), ActionSpec()
    cost, seen = recording(quadratic_cost(NUMPY_OPS))
    result = cem(cost, config, spec, sample_noise(config, spec, np.random.default_rng(0)), NUMPY_OPS,
                 sampler=planning_quality.AdaptiveSamples(min_samples=20))
    sizes = [len(a) for a in seen]
    assert sizes[0] == 200 and sizes[-1] < 200 and min(sizes) >= 20
    assert sizes == sorted(sizes, reverse=True)
    assert result.evaluated == sum(sizes)
    np.testing.assert_allclose(result.actions[0, :3], TARGET, atol=0.01)
    with pytest.raises(ValueError, match="min_samples"):
        planning_quality.AdaptiveSamples(min_samples=1)
