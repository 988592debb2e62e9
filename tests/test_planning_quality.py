"""`python -m jepa_ac.bench planning_quality`: variants on the same seeds, gate calibrated from the baseline."""

import json

import pytest

from planning_helpers import TINY_PLANNING, restore_torch_threads, write_tiny_model  # noqa: F401

from jepa_ac.bench import planning_quality


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
    assert rows["adaptive_samples"]["cem"]["min_samples"] == 4  # a quarter of 16
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
