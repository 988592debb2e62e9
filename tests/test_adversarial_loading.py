"""Hostile checkpoint folders, images and models: a clear error naming the file and field, nothing
allocated before the check, no traceback from a CLI, and no action planned from NaN."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from planning_helpers import IMAGE_SIZE, write_tiny_model

pytestmark = pytest.mark.adversarial
REPO = Path(__file__).resolve().parent.parent


def _edit_config(folder: Path, part: str, **changes) -> Path:
    config = json.loads((folder / "config.json").read_text())
    config[part].update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_model(tmp_path / "model")


@pytest.mark.parametrize("part, changes, message", [
    ("encoder", {"use_rope": "no"}, r"encoder: EncoderConfig.use_rope must be a bool, got 'no'"),
    ("encoder", {"depth": "1"}, r"EncoderConfig.depth must be an int, got '1'"),
    ("encoder", {"depth": 2.5}, r"EncoderConfig.depth must be an int"),
    ("predictor", {"mlp_ratio": None}, r"PredictorConfig.mlp_ratio must be a finite number"),
    ("encoder", {"embed_dim": 10**9}, r"embed_dim=1000000000 is above the supported maximum"),
    ("encoder", {"use_SiLU": True}, r"encoder has unknown field\(s\) \['use_SiLU'\]"),
    ("predictor", {"is_frame_causal": 1}, r"is_frame_causal must be a bool"),
])
def test_config_types_and_ranges_name_file_and_field(tiny, part, changes, message):
    import jepa_ac
    from jepa_ac.world_model.checkpoints import CheckpointError

    _edit_config(tiny, part, **changes)
    with pytest.raises(CheckpointError, match=message) as info:
        jepa_ac.load_world_model(tiny)
    assert "config.json" in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected a JSON object, got list"),
    ("{not json", "is not valid JSON"),
    ('{"format": "jepa_ac", "format_version": "1"}', "format_version must be an integer"),
])
def test_config_json_itself_is_checked(tiny, text, message):
    import jepa_ac
    from jepa_ac.world_model.checkpoints import CheckpointError

    (tiny / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=message):
        jepa_ac.load_world_model(tiny)


def test_huge_architecture_is_refused_before_allocation(tiny, monkeypatch):
    """Within every per-field cap, yet ~26 G parameters against 0.05 M in the file: refused from the
    config alone; the backend (which would allocate) is never built."""
    import jepa_ac
    from jepa_ac import world_model
    from jepa_ac.world_model.checkpoints import CheckpointError

    _edit_config(tiny, "encoder", embed_dim=16384, depth=8, num_heads=128)
    _edit_config(tiny, "predictor", embed_dim=16384)

    def no_allocation(*args, **kwargs):
        raise AssertionError("the backend was built before the size check")

    monkeypatch.setattr(world_model, "make_backend", no_allocation)
    with pytest.raises(CheckpointError, match=r"needs about [\d,]+ parameters but the checkpoint holds"):
        jepa_ac.load_world_model(tiny)


def test_upstream_file_with_a_preset_far_larger_than_its_weights(monkeypatch):
    import jepa_ac
    from jepa_ac import world_model
    from jepa_ac.world_model.checkpoints import CheckpointError

    monkeypatch.setattr(world_model, "make_backend", lambda *a, **k: pytest.fail("allocated"))
    with pytest.raises(CheckpointError, match="refusing to allocate"):
        jepa_ac.load_world_model(REPO / "tests/fixtures/vjepa2_ac_tiny.pt", encoder="vit_giant", predictor="vit_ac_giant")


def _nan_model(folder: Path, part: str) -> Path:
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in sorted(weights) if k.startswith(part + ".") and weights[k].ndim == 2)
    weights[key] = np.full_like(weights[key], np.nan)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "jepa_ac"})
    return folder


@pytest.mark.parametrize("part, what", [("encoder", "latent"), ("predictor", "energy|elite costs")])
def test_nan_weights_never_become_an_action(tiny, part, what):
    import jepa_ac
    from jepa_ac.planning import CEMPlanner, NonFiniteError

    wm = jepa_ac.load_world_model(_nan_model(tiny, part))
    planner = CEMPlanner(wm, jepa_ac.CEMConfig(samples=8, iterations=2, topk=2, horizon=1))
    frame = np.random.default_rng(0).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    with pytest.raises(NonFiniteError, match=f"({what}).* contains NaN or inf"):
        planner.plan(frame, np.array([0.5, 0, 0.3, 3.1, 0, 0, 0], np.float32), frame)


@pytest.mark.parametrize("state, message", [
    ([0.5, 0, 0.3, 0, 0, 0, 80.0], "gripper = 80.0 is outside its physical range"),
    ([0.5, 0, 1e30, 0, 0, 0, 0], "z = 1e\\+30 is outside"),
    ([0.5, 0, 0.3, 0, 0, float("nan"), 0], "yaw = nan is not finite"),
])
def test_planner_refuses_absurd_states(tiny, state, message):
    import jepa_ac
    from jepa_ac.planning import CEMPlanner

    planner = CEMPlanner(jepa_ac.load_world_model(tiny), jepa_ac.CEMConfig(samples=8, iterations=1, topk=2))
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        planner.plan(frame, np.array(state), frame)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width` x `height` RGB pixels (no pixel data): a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def _images(folder: Path) -> dict[str, Path]:
    rgb = np.random.default_rng(0).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    paths = {}
    for name, image in {
        "grey": Image.fromarray(rgb[..., 0]),
        "transparent": Image.fromarray(np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], -1)),
        "deep16": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257),
        "dot": Image.new("RGB", (1, 1)),
        "good": Image.fromarray(rgb),
    }.items():
        image.save(folder / f"{name}.png")
        paths[name] = folder / f"{name}.png"
    paths["huge"] = _png_header_only(folder / "huge.png", 20000, 20000)
    (folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    paths["junk"] = folder / "junk.png"
    return paths


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_plan_cli_bad_images_and_models_are_one_line_errors(tmp_path):
    """Both planning modes read images through one strict reader; every bad input is one line."""
    model = write_tiny_model(tmp_path / "model")
    images = _images(tmp_path)
    state = ["0.5", "0", "0.3", "3.1", "0", "0", "0"]
    single = ["-m", "jepa_ac.plan", "--checkpoint", str(model), "--threads", "1", "--samples", "8",
              "--iterations", "1", "--out", str(tmp_path / "out"), "--state", *state]
    expected = {"grey": "1-channel 'L' image", "transparent": "transparent pixels", "deep16": "expected 8-bit RGB",
                "dot": "1x1 pixels", "huge": "400000000 pixels", "junk": "not a readable image"}
    for name, message in expected.items():
        for flags in (["--frame", str(images[name]), "--goal", str(images["good"])],
                      ["--frame", str(images["good"]), "--goal", str(images[name])]):
            proc = _run(*single, *flags, cwd=tmp_path)
            assert proc.returncode != 0 and "Traceback" not in proc.stderr, (name, proc.stderr[-800:])
            assert message in proc.stderr.strip().splitlines()[-1], (name, proc.stderr[-400:])
    _nan_model(model, "predictor")
    proc = _run(*single, "--frame", str(images["good"]), "--goal", str(images["good"]), cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert "contains NaN or inf" in proc.stderr
    assert not (tmp_path / "out" / "plan.json").exists()  # nothing written that looks like a plan
    _edit_config(model, "encoder", use_rope="no")
    proc = _run(*single, "--frame", str(images["good"]), "--goal", str(images["good"]), cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert "use_rope must be a bool" in proc.stderr


def test_every_cli_turns_package_errors_into_one_line(tmp_path):
    missing = str(tmp_path / "no_such_checkpoint")
    for argv in (
        ["-m", "jepa_ac.plan", "--checkpoint", missing],
        ["-m", "jepa_ac.evaluate", "--checkpoint", missing, "--episodes", "1"],
        ["-m", "jepa_ac.serve", "--checkpoint", missing],
        ["-m", "jepa_ac.convert", "--checkpoint", missing, "--out", str(tmp_path / "out")],
        ["-m", "jepa_ac.energy_landscape", "--checkpoint", missing, "--traj", str(REPO / "tests/fixtures/franka_example_traj.npz")],
    ):
        proc = _run(*argv, cwd=tmp_path)
        assert proc.returncode != 0, argv
        assert "Traceback" not in proc.stderr, (argv, proc.stderr[-1200:])
        assert "checkpoint not found" in proc.stderr.strip().splitlines()[-1] or "no_such_checkpoint" in proc.stderr, \
            (argv, proc.stderr[-400:])


class _Payload:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # what a crafted checkpoint does: call exec while being unpickled
        return (exec, (f"open({str(self.target)!r}, 'w').write('ran')",))


@pytest.mark.parametrize("where", ["top", "state_dict"])
def test_pickle_payload_in_an_upstream_file_never_runs(tmp_path, where):
    import torch

    import jepa_ac
    from jepa_ac.world_model.checkpoints import CheckpointError

    blob = torch.load(REPO / "tests/fixtures/vjepa2_ac_tiny.pt", weights_only=True)
    target = tmp_path / "PWNED"
    if where == "top":
        blob["extra"] = _Payload(target)
    else:
        blob["encoder"]["module.backbone.extra"] = _Payload(target)
    torch.save(blob, tmp_path / "evil.pt")
    arch = json.loads((REPO / "tests/fixtures/vjepa2_ac_tiny.json").read_text())
    with pytest.raises(CheckpointError, match="refused: the file holds Python objects"):
        jepa_ac.load_world_model(tmp_path / "evil.pt", encoder=arch["encoder"], predictor=arch["predictor"])
    assert not target.exists()
