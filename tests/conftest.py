"""Shared fixtures: the tiny upstream-layout checkpoint and its golden outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

FIXTURES = Path(__file__).parent / "fixtures"
TINY_PT = FIXTURES / "vjepa2_ac_tiny.pt"


@pytest.fixture(scope="session")
def tiny_arch() -> dict:
    """Upstream constructor arguments of the tiny golden model: {"encoder": {...}, "predictor": {...}}."""
    return json.loads((FIXTURES / "vjepa2_ac_tiny.json").read_text())


@pytest.fixture(scope="session")
def golden() -> dict:
    with np.load(FIXTURES / "vjepa2_ac_tiny_io.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def franka_traj() -> dict:
    with np.load(FIXTURES / "franka_example_traj.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def tiny_wm(tiny_arch):
    """The tiny golden model loaded through the public API (torch, fp32, CPU)."""
    import jepa_ac

    return jepa_ac.load_world_model(TINY_PT, encoder=tiny_arch["encoder"], predictor=tiny_arch["predictor"],
                                    device="cpu")
