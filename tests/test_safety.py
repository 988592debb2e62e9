"""Safety layer: config loading/validation and clipping/refusal of actions against the limits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jepa_ac.model.pose import apply_action
from jepa_ac.robot.safety import SafetyConfig, SafetyLayer, SafetyStop, load_safety_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "jepa_ac" / "robot" / "safety_default.yaml"
STATE = np.array([0.5, 0.0, 0.3, np.pi, 0.1, -0.2, 0.4])


@pytest.fixture
def layer() -> SafetyLayer:
    return SafetyLayer(SafetyConfig())


def test_default_yaml_matches_dataclass_defaults():
    assert load_safety_config(DEFAULT_YAML) == SafetyConfig()


def test_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="x min 0.9 must be below max 0.85"):
        SafetyConfig(workspace_min=(0.9, -0.5, 0.0))
    with pytest.raises(ValueError, match="workspace_max must be 3 finite numbers"):
        SafetyConfig(workspace_max=(1.0, 1.0))
    with pytest.raises(ValueError, match="max_translation must be a positive finite number"):
        SafetyConfig(max_translation=0.0)
    with pytest.raises(ValueError, match="max_rotation must be at most pi"):
        SafetyConfig(max_rotation=4.0)
    with pytest.raises(ValueError, match="gripper_min < gripper_max"):
        SafetyConfig(gripper_min=0.8, gripper_max=0.2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_translation: 0.1\nmax_speed: 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['max_speed'\]"):
        load_safety_config(bad)
    bad.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_safety_config(bad)
    with pytest.raises(FileNotFoundError):
        load_safety_config(tmp_path / "missing.yaml")
    partial = tmp_path / "partial.yaml"
    partial.write_text("max_translation: 0.02\n")
    assert load_safety_config(partial) == SafetyConfig(max_translation=0.02)


def test_action_within_limits_passes_unchanged(layer, caplog):
    action = np.array([0.02, -0.01, 0.03, 0.05, -0.02, 0.1, 0.3])
    with caplog.at_level(logging.WARNING, logger="jepa_ac.robot.safety"):
        safe = layer.filter(STATE, action)
    assert not safe.clipped and not caplog.records
    np.testing.assert_allclose(safe.action, action, atol=1e-12)
    np.testing.assert_allclose(safe.next_state, apply_action(STATE, action), atol=1e-12)


def test_workspace_clip_keeps_next_position_in_box(layer, caplog):
    state = np.array([0.8, 0.45, 0.05, np.pi, 0.0, 0.0, 0.0])
    with caplog.at_level(logging.WARNING, logger="jepa_ac.robot.safety"):
        safe = layer.filter(state, [0.09, 0.0, -0.04, 0, 0, 0, 0])
    cfg = layer.config
    # x would reach 0.89 (> 0.85), z would reach 0.01 (< 0.02): both land on the box faces
    np.testing.assert_allclose(safe.next_state[:3], [cfg.workspace_max[0], 0.45, cfg.workspace_min[2]], atol=1e-9)
    assert any("workspace" in c for c in safe.clips)
    assert any("safety clip: workspace" in r.getMessage() for r in caplog.records)


def test_translation_scaled_to_limit_keeping_direction(layer):
    action = np.array([0.2, -0.1, 0.05, 0, 0, 0, 0])
    safe = layer.filter(STATE, action)
    assert np.linalg.norm(safe.action[:3]) == pytest.approx(layer.config.max_translation)
    direction = action[:3] / np.linalg.norm(action[:3])
    np.testing.assert_allclose(safe.action[:3] / np.linalg.norm(safe.action[:3]), direction, atol=1e-12)
    assert any("translation" in c for c in safe.clips)


def test_rotation_scaled_along_its_axis(layer):
    action = np.array([0, 0, 0, 0.6, -0.3, 0.4, 0])
    safe = layer.filter(STATE, action)
    requested = Rotation.from_euler("xyz", action[3:6]).as_rotvec()
    got = Rotation.from_euler("xyz", safe.action[3:6]).as_rotvec()
    assert np.linalg.norm(got) == pytest.approx(layer.config.max_rotation)
    np.testing.assert_allclose(got / np.linalg.norm(got), requested / np.linalg.norm(requested), atol=1e-9)
    assert any("rotation" in c for c in safe.clips)


def test_gripper_range_and_step(caplog):
    layer = SafetyLayer(SafetyConfig(max_gripper_delta=0.5, gripper_max=0.8))
    safe = layer.filter(STATE, [0, 0, 0, 0, 0, 0, 0.35])  # 0.4 + 0.35 = 0.75: fine
    assert not safe.clipped
    safe = layer.filter(STATE, [0, 0, 0, 0, 0, 0, 0.8])  # step 0.8 > 0.5, then 0.4 + 0.5 > gripper_max
    assert safe.next_state[6] == pytest.approx(0.8)
    assert len([c for c in safe.clips if "gripper" in c]) == 2
    safe = layer.filter(STATE, [0, 0, 0, 0, 0, 0, -0.5])  # 0.4 - 0.5 < 0
    assert safe.next_state[6] == pytest.approx(0.0) and safe.action[6] == pytest.approx(-0.4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_refused(layer, bad):
    action = np.zeros(7)
    action[2] = bad
    with pytest.raises(SafetyStop, match=r"action contains NaN/inf in \['dz'\]"):
        layer.filter(STATE, action)
    state = STATE.copy()
    state[6] = bad
    with pytest.raises(SafetyStop, match="state contains NaN/inf"):
        layer.filter(state, np.zeros(7))
    with pytest.raises(SafetyStop, match="shape"):
        layer.filter(STATE, np.zeros(6))


def test_random_actions_always_end_inside_limits(layer):
    rng = np.random.default_rng(0)
    cfg = layer.config
    lo, hi = np.array(cfg.workspace_min), np.array(cfg.workspace_max)
    for _ in range(300):
        state = np.concatenate([rng.uniform(lo, hi), rng.uniform(-np.pi, np.pi, 3), rng.uniform(0, 1, 1)])
        action = rng.normal(0, 0.5, 7)
        safe = layer.filter(state, action)
        assert np.all(safe.next_state[:3] >= lo - 1e-9) and np.all(safe.next_state[:3] <= hi + 1e-9)
        assert np.linalg.norm(safe.action[:3]) <= cfg.max_translation + 1e-9
        assert Rotation.from_euler("xyz", safe.action[3:6]).magnitude() <= cfg.max_rotation + 1e-6
        assert 0.0 <= safe.next_state[6] <= 1.0
        np.testing.assert_allclose(safe.next_state, apply_action(state, safe.action), atol=1e-12)


def test_state_outside_box_only_moves_towards_it(layer):
    state = np.array([1.2, 0.0, 0.3, 0, 0, 0, 0])  # x far beyond 0.85
    safe = layer.filter(state, [0.05, 0, 0, 0, 0, 0, 0])  # further out: refused motion in x
    assert safe.action[0] <= 0.0
    safe = layer.filter(state, [-0.05, 0, 0, 0, 0, 0, 0])  # back towards the box: allowed
    assert safe.action[0] == pytest.approx(-0.05)
    assert any("outside the workspace" in c for c in safe.clips)
