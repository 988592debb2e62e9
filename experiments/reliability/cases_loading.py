"""Adversarial cases for loading: crafted checkpoints (code, types, sizes), images, states and
non-finite models, through `python -m jepa_ac.plan` as a user runs it."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from harness import REPO, Case

sys.path.insert(0, str(REPO / "tests"))
from planning_helpers import IMAGE_SIZE, write_tiny_model  # noqa: E402  (the tests' tiny random model)

STATE = ["0.5", "0", "0.3", "3.1", "0", "0", "0"]
PLAN = ["{python}", "-m", "jepa_ac.plan", "--threads", "1", "--samples", "8", "--iterations", "1", "--out", "out"]


def single_step(checkpoint: str = "model", frame: str = "frame.png", goal: str = "goal.png",
                state: list[str] = STATE) -> list[str]:
    return [*PLAN, "--checkpoint", checkpoint, "--frame", frame, "--goal", goal, "--state", *state]


def images(folder: Path) -> None:
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "frame.png")
    Image.fromarray(rgb[::-1]).save(folder / "goal.png")


def model(folder: Path) -> None:
    write_tiny_model(folder / "model")
    images(folder)


def edit_config(part: str, **changes):
    def prepare(folder: Path) -> None:
        model(folder)
        config = json.loads((folder / "model/config.json").read_text())
        config[part].update(changes)
        (folder / "model/config.json").write_text(json.dumps(config))
    return prepare


def write_config(text: str | bytes):
    def prepare(folder: Path) -> None:
        model(folder)
        path = folder / "model/config.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return prepare


def edit_weights(change):
    """`change(weights: dict) -> dict` applied to the tiny model's safetensors."""
    def prepare(folder: Path) -> None:
        from safetensors.numpy import load_file, save_file

        model(folder)
        path = folder / "model/model.safetensors"
        save_file(change(load_file(str(path))), str(path), metadata={"format": "jepa_ac"})
    return prepare


def fill_first(part: str, value: float):
    def change(weights: dict) -> dict:
        key = next(k for k in sorted(weights) if k.startswith(part + ".") and weights[k].ndim == 2)
        weights[key] = np.full_like(weights[key], value)
        return weights
    return change


def truncate_weights(folder: Path) -> None:
    model(folder)
    path = folder / "model/model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


class _Payload:
    """Unpickling this runs `open(<case folder>/PWNED, "w").write(...)`: what a crafted .pt would do."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __reduce__(self):
        return (exec, (f"open({str(self.folder / 'PWNED')!r}, 'w').write('code ran while loading')",))


def pickled_pt(where: str):
    """An upstream-looking .pt whose pickle runs code: at the top, or inside the encoder's state dict."""
    def prepare(folder: Path) -> None:
        import torch

        images(folder)
        blob = torch.load(REPO / "tests/fixtures/vjepa2_ac_tiny.pt", weights_only=True)
        if where == "top":
            blob["extra"] = _Payload(folder)
        else:
            blob["encoder"]["module.backbone.evil"] = _Payload(folder)
        torch.save(blob, folder / "evil.pt")
    return prepare


def upstream_args() -> list[str]:
    """The tiny upstream model's architecture (its JSON holds 'encoder' and 'predictor' constructor args)."""
    return ["--arch", str(REPO / "tests/fixtures/vjepa2_ac_tiny.json")]


def image_case(name: str, make) -> list[Case]:
    """The same bad image as the current frame and as the goal."""
    def prepare(folder: Path) -> None:
        model(folder)
        make(folder / "bad.png")
    return [Case(f"loading-image-{name}-as-{role}", "cli", single_step(**{role: "bad.png"}), prepare)
            for role in ("frame", "goal")]


def png_header(width: int, height: int):
    def make(path: Path) -> None:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return make


def pil_image(array_fn, mode: str | None = None):
    def make(path: Path) -> None:
        from PIL import Image

        Image.fromarray(array_fn(), mode).save(path) if mode else Image.fromarray(array_fn()).save(path)
    return make


def truncated_jpeg(path: Path) -> None:
    from PIL import Image

    rgb = np.random.default_rng(1).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path.with_suffix(".jpg"))
    data = path.with_suffix(".jpg").read_bytes()
    path.write_bytes(data[: len(data) // 3])


def traj_npz(kind: str):
    def prepare(folder: Path) -> None:
        model(folder)
        if kind == "object":
            np.savez(folder / "traj.npz", observations=np.array([{"a": 1}], dtype=object), states=np.zeros((1, 2, 7)))
        elif kind == "missing-key":
            np.savez(folder / "traj.npz", frames=np.zeros((1, 2, 64, 64, 3), np.uint8))
        elif kind == "nan-states":
            np.savez(folder / "traj.npz", observations=np.zeros((1, 2, 64, 64, 3), np.uint8),
                     states=np.full((1, 2, 7), np.nan, np.float32))
    return prepare


rng_rgb = lambda: np.random.default_rng(2).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)  # noqa: E731

CASES = [
    # -- code execution: a crafted torch file must not run code (weights_only=True) ------------------
    Case("loading-pickle-payload-top-level", "code execution",
         [*PLAN, "--checkpoint", "evil.pt", *upstream_args(), "--frame", "frame.png", "--goal", "goal.png",
          "--state", *STATE], pickled_pt("top")),
    Case("loading-pickle-payload-in-state-dict", "code execution",
         [*PLAN, "--checkpoint", "evil.pt", *upstream_args(), "--frame", "frame.png", "--goal", "goal.png",
          "--state", *STATE], pickled_pt("state")),
    # -- config.json: types, names, sizes, before anything is allocated ---------------------------
    Case("loading-config-bool-as-string", "config", single_step(), edit_config("encoder", use_rope="no")),
    Case("loading-config-int-as-string", "config", single_step(), edit_config("encoder", depth="1")),
    Case("loading-config-fractional-depth", "config", single_step(), edit_config("encoder", depth=1.5)),
    Case("loading-config-null-ratio", "config", single_step(), edit_config("predictor", mlp_ratio=None)),
    Case("loading-config-negative-width", "config", single_step(), edit_config("encoder", embed_dim=-48)),
    Case("loading-config-unknown-field", "config", single_step(), edit_config("encoder", use_SiLU=True)),
    Case("loading-config-above-cap", "config", single_step(), edit_config("encoder", embed_dim=10**9)),
    Case("loading-config-huge-within-caps", "config", single_step(),
         edit_config("encoder", embed_dim=16384, depth=64, num_heads=128), timeout=60),
    Case("loading-config-list", "config", single_step(), write_config("[1, 2, 3]")),
    Case("loading-config-not-json", "config", single_step(), write_config("{format: jepa_ac")),
    Case("loading-config-binary", "config", single_step(), write_config(bytes(range(256)) * 4)),
    Case("loading-config-deeply-nested", "config", single_step(), write_config("[" * 100000 + "]" * 100000)),
    Case("loading-config-20mb", "config", single_step(),
         write_config('{"format": "jepa_ac", "pad": "' + "x" * 20_000_000 + '"}'), timeout=60),
    Case("loading-config-format-version-string", "config", single_step(),
         write_config('{"format": "jepa_ac", "format_version": "1", "encoder": {}}')),
    Case("loading-config-part-not-mapping", "config", single_step(),
         write_config('{"format": "jepa_ac", "format_version": 1, "encoder": [1, 2]}')),
    Case("loading-config-provenance-list", "config", single_step(),
         write_config('{"format": "jepa_ac", "format_version": 1, "encoder": null, "predictor": null, "provenance": [1]}')),
    # -- weights: truncated, mis-shaped, another architecture ----------------------------------
    Case("loading-weights-truncated", "config", single_step(), truncate_weights),
    Case("loading-weights-missing-key", "config", single_step(),
         edit_weights(lambda w: {k: v for k, v in w.items() if not k.endswith("norm1.weight")})),
    Case("loading-weights-extra-key", "config", single_step(),
         edit_weights(lambda w: {**w, "encoder.evil": np.zeros(3, np.float32)})),
    Case("loading-weights-misshaped", "config", single_step(),
         edit_weights(lambda w: {k: (v[:-1] if k == "encoder.blocks.0.norm1.weight" else v) for k, v in w.items()})),
    Case("loading-weights-foreign-prefix", "config", single_step(),
         edit_weights(lambda w: {"decoder." + k: v for k, v in w.items()})),
    Case("loading-upstream-wrong-preset", "config",
         [*PLAN, "--checkpoint", str(REPO / "tests/fixtures/vjepa2_ac_tiny.pt"), "--encoder", "vit_giant",
          "--predictor", "vit_ac_giant", "--frame", "frame.png", "--goal", "goal.png", "--state", *STATE], images,
         timeout=60),
    # -- non-finite models never plan an action ------------------------------------------------
    Case("loading-nan-encoder-weights", "non-finite", single_step(), edit_weights(fill_first("encoder", np.nan))),
    Case("loading-nan-predictor-weights", "non-finite", single_step(), edit_weights(fill_first("predictor", np.nan))),
    Case("loading-inf-predictor-weights", "non-finite", single_step(), edit_weights(fill_first("predictor", np.inf))),
    Case("loading-overflowing-weights", "non-finite", single_step(), edit_weights(fill_first("encoder", 3e38))),
    Case("loading-nan-closed-loop", "non-finite",
         [*PLAN, "--checkpoint", "model", "--max-steps", "2", "--no-video"], edit_weights(fill_first("predictor", np.nan))),
    # -- images and states through the CLI ----------------------------------------------------------
    *image_case("grey", pil_image(lambda: rng_rgb()[..., 0])),
    *image_case("transparent", pil_image(lambda: np.concatenate([rng_rgb(), np.full((64, 64, 1), 9, np.uint8)], -1))),
    *image_case("16bit", pil_image(lambda: rng_rgb()[..., 0].astype(np.uint16) * 257)),
    *image_case("1x1", pil_image(lambda: np.zeros((1, 1, 3), np.uint8))),
    *image_case("20000x20000-header", png_header(20000, 20000)),
    *image_case("9000x9000-header", png_header(9000, 9000)),
    *image_case("not-an-image", lambda p: p.write_bytes(b"GIF89a" + bytes(100))),
    *image_case("truncated-jpeg", truncated_jpeg),
    *image_case("empty-file", lambda p: p.write_bytes(b"")),
    *image_case("a-folder", lambda p: p.mkdir()),
    Case("loading-state-gripper-in-mm", "cli", single_step(state=[*STATE[:6], "80"]), model),
    Case("loading-state-nan", "cli", single_step(state=[*STATE[:5], "nan", "0"]), model),
    Case("loading-state-1e30", "cli", single_step(state=["1e30", *STATE[1:]]), model),
    Case("loading-state-angle-degrees", "cli", single_step(state=[*STATE[:3], "180", "0", "0", "0"]), model),
    Case("loading-traj-object-array", "cli", [*PLAN, "--checkpoint", "model", "--traj", "traj.npz"], traj_npz("object")),
    Case("loading-traj-missing-key", "cli", [*PLAN, "--checkpoint", "model", "--traj", "traj.npz"],
         traj_npz("missing-key")),
    Case("loading-traj-nan-states", "cli", [*PLAN, "--checkpoint", "model", "--traj", "traj.npz"],
         traj_npz("nan-states")),
    Case("loading-goal-gripper-out-of-range", "cli",
         [*PLAN, "--checkpoint", "model", "--goal", "goal.png", "--goal-gripper", "7", "--max-steps", "1"], model),
    Case("loading-missing-checkpoint", "cli", single_step(checkpoint="nowhere"), images),
    Case("loading-checkpoint-is-a-text-file", "cli", single_step(checkpoint="notes.txt"),
         lambda f: (images(f), (f / "notes.txt").write_text("hello"))),
    Case("loading-unknown-env", "cli", [*PLAN, "--checkpoint", "model", "--env", "FrankaFly-v9"], model),
    Case("loading-planning-json-bad-field", "cli", [*PLAN, "--checkpoint", "model", "--cem", "samples=-3"], model),
]
