"""V-JEPA 2.1 encoders: config detection, golden parity (torch and MLX, fp32, max abs <= 1e-4),
loading the released checkpoint layouts strictly, conversion, the public encode options, and a
2.1 encoder as the frozen encoder of encode_dataset -> train_predictor -> plan.

Golden data: `tests/fixtures/vjepa2_1_tiny*` (upstream V-JEPA 2.1 code on a tiny seeded model; see
the reference README). Other shapes are checked against `reference_forward`, the upstream 2.1
computation written out directly here, which itself matches the golden data.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jepa_ac
from jepa_ac.world_model.checkpoints import CheckpointError
from jepa_ac.model.config import ENCODER_PRESETS, EncoderConfig

from conftest import FIXTURES

mx = pytest.importorskip("mlx.core")

REPO = Path(__file__).resolve().parents[1]
V21_PT = FIXTURES / "vjepa2_1_tiny.pt"
TOL = 1e-4
BACKENDS = ("torch", "mlx")


@pytest.fixture(scope="module")
def args() -> dict:
    """The upstream 2.1 `VisionTransformer` constructor arguments of the golden tiny model."""
    return json.loads((FIXTURES / "vjepa2_1_tiny.json").read_text())["constructor"]


@pytest.fixture(scope="module")
def gold() -> dict:
    with np.load(FIXTURES / "vjepa2_1_tiny_io.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def models(args) -> dict:
    """The golden tiny model through the public API on each backend (encoder only)."""
    return {b: jepa_ac.load_world_model(V21_PT, encoder=EncoderConfig(**args), predictor=None, backend=b, device="cpu")
            for b in BACKENDS}


def layer_norm_levels(x: np.ndarray, width: int) -> np.ndarray:
    """Layer-norm (no affine, eps 1e-5) each `width`-wide level of the last axis on its own."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    levels = t.reshape(*t.shape[:-1], -1, width)
    return F.layer_norm(levels, (width,)).reshape(t.shape).numpy()


def max_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


# -- an independent statement of the upstream 2.1 computation ----------------------------------


def reference_forward(sd: dict, a: dict, x: torch.Tensor, hierarchical: bool = False) -> torch.Tensor:
    """Upstream V-JEPA 2.1 encoder (hub flags) on x [B, 3, T, H, W], written out with plain tensor ops
    from the upstream semantics: image path iff T == 1, modality embeddings, per-axis RoPE with
    pairwise frequencies on row/column positions scaled by 15 / (patches - 1), softmax attention,
    GELU MLP, `norms_block` taps."""
    D, depth, p = a["embed_dim"], a["depth"], a["patch_size"]
    heads = a["num_heads"]
    hd, eps = D // heads, a["norm_eps"]
    image = x.shape[2] == 1
    embed = "patch_embed_img" if image else "patch_embed"
    kernel = sd[f"{embed}.proj.weight"]
    y = F.conv3d(x, kernel, sd[f"{embed}.proj.bias"], stride=tuple(kernel.shape[2:]))  # [B, D, T', H', W']
    B, _, T, H, W = y.shape
    h = y.flatten(2).transpose(1, 2) + sd["img_mod_embed" if image else "video_mod_embed"]  # [B, N, D]
    ids = torch.arange(T * H * W)
    pos = [(ids // (H * W)).float(), ((ids % (H * W)) // W).float() * 15 / (H - 1), (ids % W).float() * 15 / (W - 1)]
    seg = 2 * ((hd // 3) // 2)

    def rotate(v, position):  # v [B, heads, N, seg]
        omega = 1.0 / 10000 ** (torch.arange(seg // 2, dtype=torch.float32) / (seg / 2))
        angle = position[:, None] * omega  # [N, seg/2]; dims 2i and 2i+1 share frequency i
        cos, sin = angle.cos().repeat_interleave(2, -1), angle.sin().repeat_interleave(2, -1)
        turned = torch.stack((-v[..., 1::2], v[..., 0::2]), dim=-1).flatten(-2)
        return v * cos + turned * sin

    def rope(v):
        parts = [rotate(v[..., i * seg : (i + 1) * seg], pos[i]) for i in range(3)]
        return torch.cat(parts + [v[..., 3 * seg :]], dim=-1)

    taps = {12: [2, 5, 8, 11], 24: [5, 11, 17, 23], 40: [9, 19, 29, 39], 48: [11, 23, 37, 47]}[depth]
    outs = []
    for i in range(depth):
        b = f"blocks.{i}."
        z = F.layer_norm(h, (D,), sd[b + "norm1.weight"], sd[b + "norm1.bias"], eps)
        q, k, v = F.linear(z, sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"]).reshape(B, -1, 3, heads, hd).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, heads, N, hd]
        att = torch.softmax(rope(q) @ rope(k).transpose(-1, -2) / hd**0.5, dim=-1) @ v
        h = h + F.linear(att.transpose(1, 2).reshape(B, -1, D), sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"])
        z = F.layer_norm(h, (D,), sd[b + "norm2.weight"], sd[b + "norm2.bias"], eps)
        z = F.linear(F.gelu(F.linear(z, sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"])), sd[b + "mlp.fc2.weight"],
                     sd[b + "mlp.fc2.bias"])
        h = h + z
        if i in taps:
            n = taps.index(i)
            outs.append(F.layer_norm(h, (D,), sd[f"norms_block.{n}.weight"], sd[f"norms_block.{n}.bias"], eps))
    return torch.cat(outs, dim=-1) if hierarchical else outs[-1]


def clean(state: dict) -> dict:
    return {k.replace("module.", "").replace("backbone.", ""): v for k, v in state.items()}


# -- config --------------------------------------------------------------------------------------


def test_config_is_2_1_from_the_2_1_arguments_alone(args):
    c = EncoderConfig(**args)
    assert c.is_v2_1 and c.hierarchical_layers == (2, 5, 8, 11) and c.image_frames == 1
    assert not EncoderConfig().is_v2_1 and EncoderConfig().image_frames == 2
    # any one 2.1-only argument selects 2.1; the others take the upstream 2.1 defaults
    one = EncoderConfig(img_size=64, embed_dim=64, depth=12, num_heads=2, interpolate_rope=True)
    assert one.is_v2_1 and one.modality_embedding and one.n_registers == 0 and one.n_output_distillation == 4
    assert one.img_temporal_dim_size is None and one.image_frames == 2  # no image path: images as tubelets
    # round trips; a V-JEPA 2 config.json keeps exactly its old keys
    assert EncoderConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    shipped = json.loads((REPO / "experiments/default_model/model/config.json").read_text())["encoder"]
    assert EncoderConfig(**shipped).to_dict() == shipped
    assert EncoderConfig.from_dict(one.to_dict()) == one


def test_unsupported_2_1_values_are_refused_by_name(args):
    for bad, pattern in [({"n_registers": 4}, "n_registers=4"), ({"has_cls_first": True}, "has_cls_first=True"),
                         ({"depth": 6}, "depth=6"), ({"n_output_distillation": 2}, "n_output_distillation=2"),
                         ({"img_temporal_dim_size": 2}, "img_temporal_dim_size=2"), ({"num_frames": 1}, "num_frames=1"),
                         ({"patch_size": 8}, "patch_size 14 or 16"), ({"is_causal": True}, "is_causal=True"),
                         ({"init_type": "xavier_uniform"}, "init_type")]:
        with pytest.raises(ValueError, match=pattern):
            EncoderConfig(**{**args, **bad})
    with pytest.raises(TypeError, match="n_register"):
        EncoderConfig(**{**args, "n_register": 0})  # a typo stays an error


def test_presets_have_the_released_2_1_shapes():
    from jepa_ac.model.nn_torch.layers import Block

    expected = {"vjepa2_1_vit_base_384": (768, 12, 12, 3072), "vjepa2_1_vit_large_384": (1024, 24, 16, 4096),
                "vjepa2_1_vit_giant_384": (1408, 40, 22, 6144), "vjepa2_1_vit_gigantic_384": (1664, 48, 26, 8192)}
    for name, (width, depth, heads, hidden) in expected.items():
        c = ENCODER_PRESETS[name]
        assert (c.embed_dim, c.depth, c.num_heads, c.head_dim, c.img_size, c.grid_size) == (width, depth, heads, 64,
                                                                                              384, 24)
        assert c.is_v2_1 and c.interpolate_rope and c.img_temporal_dim_size == 1 and c.modality_embedding
        assert Block(width, heads, c.mlp_ratio, True, False, True, 1e-6).mlp.fc1.out_features == hidden


# -- golden parity -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_raw_outputs_match_upstream(models, gold, backend):
    """image, video, non-square video, hierarchical, masked video and block-0 tokens vs the upstream code."""
    wm = models[backend]
    enc = wm.backend.encoder
    as_in = (lambda a: torch.from_numpy(a)) if backend == "torch" else mx.array
    for name in ("img", "video", "video_ns"):
        x = gold[f"{name}_input"]
        assert max_err(wm.backend.encode(x), gold[f"{name}_out"]) <= TOL, name
        assert max_err(wm.backend.encode(x, hierarchical=True), gold[f"{name}_hier"]) <= TOL, name
        with torch.no_grad():
            assert max_err(enc.embed(as_in(x)), gold[f"{name}_tokens0"]) <= TOL, name
    with torch.no_grad():
        masked = enc(as_in(gold["video_input"]), as_in(gold["mask_keep"]))
    assert max_err(masked, gold["video_masked_out"]) <= TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_public_encode_matches_upstream(models, gold, backend):
    """wm.encode from uint8: image path, video path, hierarchical, non-square at its own aspect; the
    latents are the upstream output layer-normed over D without affine (per level when hierarchical)."""
    wm = models[backend]
    D = 64
    image = wm.encode(gold["img_uint8"][0, 0])  # [H, W, 3]
    assert tuple(image.shape) == (1, 16, D)
    assert max_err(image, layer_norm_levels(gold["img_out"], D)) <= TOL
    assert max_err(wm.encode(gold["img_uint8"][0]), image) == 0.0  # a 1-frame clip is an image
    video = wm.encode(gold["video_uint8"][0])  # [4, H, W, 3] -> [2, 16, D]
    assert tuple(video.shape) == (2, 16, D)
    assert max_err(np.asarray(video).reshape(1, 32, D), layer_norm_levels(gold["video_out"], D)) <= TOL
    hier = wm.encode(gold["video_uint8"][0], hierarchical=True)
    assert max_err(np.asarray(hier).reshape(1, 32, 4 * D), layer_norm_levels(gold["video_hier"], D)) <= TOL
    assert max_err(np.asarray(hier)[..., -D:], video) == 0.0
    wide = wm.encode(gold["video_ns_uint8"][0], keep_aspect=True, size=48)  # 48 x 80: a 3 x 5 grid
    assert tuple(wide.shape) == (2, 15, D)
    assert max_err(np.asarray(wide).reshape(1, 30, D), layer_norm_levels(gold["video_ns_out"], D)) <= TOL
    frames = wm.encode_frames(gold["video_uint8"][0])  # each frame on the image path
    assert tuple(frames.shape) == (4, 16, D)
    one = wm.backend.encode(gold["video_input"][:, :, 2:3])
    assert max_err(np.asarray(frames)[2:3], layer_norm_levels(np.asarray(one), D)) <= TOL


def test_reference_forward_is_the_upstream_computation(args, gold):
    sd = clean(torch.load(V21_PT, weights_only=True)["ema_encoder"])
    with torch.no_grad():
        for name in ("img", "video", "video_ns"):
            x = torch.from_numpy(gold[f"{name}_input"])
            assert max_err(reference_forward(sd, args, x, hierarchical=True), gold[f"{name}_hier"]) <= TOL


def test_layout_and_flag_changes_are_visible(args, gold):
    """The 2.1 differences matter at the golden scale (README: ~1e-2 for RoPE, ~1 for modality embeddings)."""
    from jepa_ac.world_model.backends.torch_backend import TorchBackend

    sd = clean(torch.load(V21_PT, weights_only=True)["ema_encoder"])
    plain = TorchBackend(EncoderConfig(**{**args, "interpolate_rope": False}), None, device="cpu")
    plain.load_arrays("encoder", sd)
    assert max_err(plain.encode(gold["video_input"]), gold["video_out"]) > 1e-3


# -- checkpoints -------------------------------------------------------------------------------


def test_loading_is_strict_and_names_keys(tmp_path, args):
    blob = torch.load(V21_PT, weights_only=True)
    del blob["ema_encoder"]["module.backbone.norms_block.3.bias"]
    blob["ema_encoder"]["module.backbone.extra"] = torch.zeros(2)
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"missing norms_block\.3\.bias") as err:
        jepa_ac.load_world_model(tmp_path / "bad.pt", encoder=EncoderConfig(**args), predictor=None)
    assert "unexpected (1): extra" in str(err.value)
    v2 = {k: v for k, v in args.items() if k not in ("img_temporal_dim_size", "interpolate_rope", "modality_embedding",
                                                      "n_registers", "has_cls_first", "n_output_distillation")}
    with pytest.raises(CheckpointError, match="expected a dict with 'encoder'"):
        jepa_ac.load_world_model(V21_PT, encoder=v2)  # a V-JEPA 2 config looks for `encoder`
    with pytest.raises(CheckpointError, match="missing norm.weight"):
        jepa_ac.load_world_model(V21_PT, encoder=v2, encoder_key="ema_encoder")


def random_release(path: Path, a: dict, seed: int = 0, key: str = "target_encoder") -> dict:
    """A random 2.1 encoder saved in the released layout: {key: {"module.backbone.<name>"}, a decoy `encoder`
    (the online encoder, other weights), the 2.1 pretraining `predictor`, "epoch"}; returns its state dict."""
    from jepa_ac.model.nn_torch.encoder import VisionTransformer

    torch.manual_seed(seed)
    model = VisionTransformer(EncoderConfig(**a))
    with torch.no_grad():
        for p in model.parameters():  # every tensor non-trivial, LayerNorms and modality embeddings too
            p.add_(0.05 * torch.randn_like(p))
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    decoy = {f"module.backbone.{k}": v + 1.0 for k, v in sd.items()}
    predictor = {"module.mask_tokens.0": torch.zeros(1, 1, 8), "module.predictor_embed.weight": torch.zeros(8, 8)}
    torch.save({key: {f"module.backbone.{k}": v for k, v in sd.items()}, "encoder": decoy, "predictor": predictor,
                "epoch": 3}, path)
    return sd


def test_other_shape_in_released_layout_loads_on_both_backends(tmp_path, args):
    """Depth 24 (taps 5, 11, 17, 23), head dim 64 (3 x 20 rotated, 4 left, as released), 96 px (a 6 x 6 grid:
    positions x 3); image, clip, hierarchical and non-square agree with the reference on both backends."""
    a = {**args, "img_size": 96, "embed_dim": 128, "depth": 24, "num_heads": 2}
    sd = random_release(tmp_path / "vjepa2_1_vitg_like.pt", a)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    clip = rng.integers(0, 256, (4, 96, 160, 3), dtype=np.uint8)
    from jepa_ac.model.preprocess import frames_to_clip

    with torch.no_grad():
        ref_image = reference_forward(sd, a, torch.from_numpy(frames_to_clip(image[None], 96)), True).numpy()
        ref_clip = reference_forward(sd, a, torch.from_numpy(frames_to_clip(clip, 96, True, 16)), True).numpy()
    D = 128
    outputs = {}
    for backend in BACKENDS:
        wm = jepa_ac.load_world_model(tmp_path / "vjepa2_1_vitg_like.pt", encoder=EncoderConfig(**a), predictor=None,
                                      backend=backend, device="cpu")
        assert wm.predictor_config is None and wm.provenance["encoder_key"] == "target_encoder"
        z = np.asarray(wm.encode(image))
        assert z.shape == (1, 36, D) and max_err(z, layer_norm_levels(ref_image[..., -D:], D)) <= TOL
        h = np.asarray(wm.encode(clip, hierarchical=True, keep_aspect=True))  # 96 x 160: a 6 x 10 grid
        assert h.shape == (2, 60, 4 * D)
        assert max_err(h.reshape(1, 120, 4 * D), layer_norm_levels(ref_clip, D)) <= TOL
        outputs[backend] = (z, h)
    assert max_err(outputs["torch"][0], outputs["mlx"][0]) <= TOL
    assert max_err(outputs["torch"][1], outputs["mlx"][1]) <= TOL
    # the file's online `encoder` is a different model: the key matters
    online = jepa_ac.load_world_model(tmp_path / "vjepa2_1_vitg_like.pt", encoder=EncoderConfig(**a),
                                      encoder_key="encoder")
    assert max_err(online.encode(image), outputs["torch"][0]) > 0.1
    # its pretraining predictor is not an AC predictor: asking for one fails on its keys
    with pytest.raises(CheckpointError, match="first bad key"):
        jepa_ac.load_world_model(tmp_path / "vjepa2_1_vitg_like.pt", encoder=EncoderConfig(**a),
                                 predictor={"img_size": 96, "predictor_embed_dim": 64, "depth": 1, "num_heads": 2})


def test_presets_load_the_released_layout(tmp_path):
    """`ema_encoder` (ViT-B/L files) is found as the hub does; shapes come from the preset."""
    a = dataclasses.asdict(ENCODER_PRESETS["vjepa2_1_vit_base_384"])
    small = {**a, "embed_dim": 64, "num_heads": 1, "mlp_ratio": 1.0}  # the preset's flags, a cheap width
    random_release(tmp_path / "b.pt", small, key="ema_encoder")
    wm = jepa_ac.load_world_model(tmp_path / "b.pt", encoder=small)
    assert wm.provenance["encoder_key"] == "ema_encoder" and wm.tokens_per_frame == 576
    # the full preset is ~190x the file's weights: refused from the config before anything is allocated
    with pytest.raises(CheckpointError, match="needs about 86,237,184 parameters but the checkpoint holds 450,816"):
        jepa_ac.load_world_model(tmp_path / "b.pt", encoder="vjepa2_1_vit_base_384")
    with pytest.raises(CheckpointError, match=r"first bad key: img_mod_embed: checkpoint \(1, 1, 64\) vs model \(1, 1, 72\)"):
        jepa_ac.load_world_model(tmp_path / "b.pt", encoder={**small, "embed_dim": 72, "num_heads": 1})


@pytest.mark.parametrize("dtype, tol", [("float32", TOL), ("float16", 5e-3), ("bfloat16", 3e-2)])  # weight rounding only
def test_convert_and_load_in_mlx_without_torch(tmp_path, args, gold, dtype, tol):
    from jepa_ac.world_model.conversion import convert

    summary = convert(V21_PT, tmp_path / "v21", encoder=args, dtype=dtype)
    assert summary["parts"] == ["encoder"]
    config = json.loads((tmp_path / "v21/config.json").read_text())
    assert config["encoder"]["interpolate_rope"] is True and config["provenance"]["encoder_key"] == "ema_encoder"
    script = f"""
import sys
sys.modules["torch"] = None  # any torch import now raises ImportError
import numpy as np, jepa_ac
g = np.load({str(FIXTURES / 'vjepa2_1_tiny_io.npz')!r})
wm = jepa_ac.load_world_model({str(tmp_path / 'v21')!r}, backend="mlx")
assert wm.encoder_config.is_v2_1
np.save("image.npy", np.asarray(wm.backend.encode(g["img_input"])))
np.save("hier.npy", np.asarray(wm.backend.encode(g["video_ns_input"], hierarchical=True)))
assert not any(m == "torch" or m.startswith("torch.") for m, v in sys.modules.items() if v is not None)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert max_err(np.load(tmp_path / "image.npy"), gold["img_out"]) <= tol
    assert max_err(np.load(tmp_path / "hier.npy"), gold["video_ns_hier"]) <= tol
    if dtype == "float32":
        torch_wm = jepa_ac.load_world_model(tmp_path / "v21", backend="torch")
        assert max_err(torch_wm.backend.encode(gold["video_input"]), gold["video_out"]) <= TOL


def test_errors_for_v2_and_bad_inputs(models, gold):
    from conftest import TINY_PT

    v2 = jepa_ac.load_world_model(TINY_PT, encoder=json.loads((FIXTURES / "vjepa2_ac_tiny.json").read_text())["encoder"],
                                  load_predictor=False)
    with pytest.raises(ValueError, match="hierarchical features need a V-JEPA 2.1 encoder"):
        v2.encode(gold["img_uint8"][0, 0], hierarchical=True)
    wm = models["torch"]
    with pytest.raises(ValueError, match=r"pass an image as \[B, C, 1, H, W\]"):
        wm.backend.encode(gold["img_input"][:, :, 0])
    with pytest.raises(ValueError, match="not a multiple of tubelet_size"):
        wm.encode(gold["video_uint8"][0, :3])
    with pytest.raises(ValueError, match="at least 2 patches"):
        wm.encode(gold["img_uint8"][0, 0], size=16)


# -- a 2.1 encoder under the AC pipeline ----------------------------------------------------------


def test_encode_dataset_train_predictor_and_plan(tmp_path, args):
    """Convert the tiny 2.1 checkpoint, encode the shipped 2-episode sample, train 2 steps, plan one step."""
    from jepa_ac import CEMConfig, CEMPlanner, encode_dataset, train_predictor
    from jepa_ac.world_model.conversion import convert
    from jepa_ac.data.latent_cache import LatentCache
    from jepa_ac.data.reader import find_episodes, load_episode

    convert(V21_PT, tmp_path / "enc", encoder=args)
    sample = REPO / "datasets" / "samples"
    assert encode_dataset.main(["--data", str(sample), "--checkpoint", str(tmp_path / "enc"), "--out",
                                str(tmp_path / "cache.zarr"), "--no-progress", "--device", "cpu"]) == 0
    cache = LatentCache.open(tmp_path / "cache.zarr")
    episode = load_episode(find_episodes(sample)[0])
    latents = cache.episode(episode["metadata"]["uuid"])["latents"][:]
    assert latents.shape == (len(episode["states"]), 16, 64)  # one latent per frame (image path)
    summary = train_predictor.main([
        "--data", str(tmp_path / "cache.zarr"), "--encoder-checkpoint", str(tmp_path / "enc"), "--out",
        str(tmp_path / "run"), "--frames", "4", "--predictor", json.dumps({"predictor_embed_dim": 96, "depth": 2,
                                                                           "num_heads": 2}),
        "--batch-size", "4", "--val-fraction", "0", "--steps", "2", "--warmup-steps", "0", "--decay-steps", "0",
        "--device", "cpu"])
    assert summary["finished"]
    wm = jepa_ac.load_world_model(tmp_path / "run/final")
    assert wm.encoder_config.is_v2_1 and wm.predictor_config.embed_dim == 64
    np.testing.assert_allclose(np.asarray(wm.encode_frames(episode["frames"][:3])), latents[:3], atol=2e-3)  # fp16 cache
    planner = CEMPlanner(wm, CEMConfig(samples=16, iterations=2, topk=4, horizon=1))
    action = planner.plan(episode["frames"][0], episode["states"][0], episode["frames"][-1])
    assert action.shape == (7,) and np.all(np.isfinite(action))


# -- the parity benchmark -------------------------------------------------------------------------


def test_bench_parity_v2_1_rows_merge_into_earlier_results(tmp_path):
    """`bench parity --sizes v2_1_tiny --merge` adds golden 2.1 rows (fp32 within 1e-4) and latency rows,
    keeping the committed V-JEPA 2 rows with the run they came from."""
    from jepa_ac.bench import parity

    (tmp_path / "parity.json").write_text((REPO / "experiments/parity/parity.json").read_text())
    assert parity.main(["--sizes", "v2_1_tiny", "--dtypes", "float32", "--repeats", "1", "--out", str(tmp_path),
                        "--merge"]) == 0
    report = json.loads((tmp_path / "parity.json").read_text())
    sizes = [s["size"] for s in report["sizes"]]
    assert sizes[:2] == ["tiny", "mid"] and sizes.count("v2_1_tiny") == 1
    rerun = report["sizes"][sizes.index("v2_1_tiny")]
    rows = rerun["parity"]
    assert {r["what"] for r in rows if r["reference"] == "upstream"} == {
        "v2_1_image", "v2_1_image_hierarchical", "v2_1_video", "v2_1_video_hierarchical", "v2_1_video_nonsquare",
        "v2_1_video_masked"}
    assert all(r["max_abs"] <= TOL for r in rows if r["dtype"] == "float32")
    assert {(r["op"], r["backend"]) for r in rerun["latency"]} == {
        ("encode_image", "torch"), ("encode_video_16f", "torch"), ("encode_image", "mlx"), ("encode_video_16f", "mlx")}
    md = (tmp_path / "parity.md").read_text()
    assert "Rows of `tiny`, `mid` come from an earlier run" in md and "| v2_1_tiny | v2_1_video_masked | mlx |" in md
