"""MLX backend: parity with upstream golden data and the torch backend, loading from every
checkpoint format (our folders without torch), conversion, and CEM planning through the
shared code. Tolerances (fp32): cosine >= 0.99999, max abs error <= 1e-4."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

import jepa_ac  # noqa: E402
from jepa_ac.model.array_ops import NUMPY_OPS  # noqa: E402
from jepa_ac.model.nn_mlx.ops import MLX_OPS  # noqa: E402
from jepa_ac.world_model.backends.mlx_backend import MLXBackend  # noqa: E402
from jepa_ac.bench.parity import compare  # noqa: E402
from jepa_ac.model.config import EncoderConfig, PredictorConfig  # noqa: E402
from jepa_ac.planning import ActionSpec, CEMConfig, CEMPlanner, cem, sample_noise  # noqa: E402
from jepa_ac.model.preprocess import frames_to_clip, frames_to_tubelets  # noqa: E402

from conftest import TINY_PT  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COS, TOL = 0.99999, 1e-4


def assert_parity(reference, output, cos=COS, tol=TOL):
    stats = compare(reference, output)
    assert stats["cosine"] >= cos and stats["max_abs"] <= tol, stats


@pytest.fixture(scope="module")
def tiny_mlx(tiny_arch):
    return jepa_ac.load_world_model(TINY_PT, encoder=tiny_arch["encoder"], predictor=tiny_arch["predictor"],
                                    backend="mlx", device="cpu")


def twin(torch_wm, dtype="float32", compile=True):
    """An MLX world model with the torch model's weights."""
    from jepa_ac.world_model import WorldModel

    backend = MLXBackend(torch_wm.encoder_config, torch_wm.predictor_config, device="cpu", dtype=dtype, compile=compile)
    for part in torch_wm.parts:
        backend.load_arrays(part, torch_wm.backend.state_arrays(part))
    return WorldModel(backend, torch_wm.encoder_config, torch_wm.predictor_config)


def random_torch_wm(enc, pred, seed=0):
    """A torch world model with random weights (LayerNorm gains/biases perturbed too)."""
    import torch

    from jepa_ac.world_model.backends.torch_backend import TorchBackend
    from jepa_ac.world_model import WorldModel

    torch.manual_seed(seed)
    pred = pred.with_encoder(enc) if pred is not None else None
    backend = TorchBackend(enc, pred, device="cpu")
    with torch.no_grad():
        for module in backend.modules.values():
            for p in module.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return WorldModel(backend, enc, pred)


# -- parity with upstream golden outputs and torch --------------------------------------------


def test_encoder_on_images_matches_upstream_and_torch(tiny_mlx, tiny_wm, golden):
    z = tiny_mlx.encode(golden["frames_uint8"])
    assert isinstance(z, mx.array) and z.shape == (3, 16, 192) and z.dtype == mx.float32
    assert_parity(golden["pred_x"], np.asarray(z).reshape(1, -1, 192))
    assert_parity(np.asarray(tiny_wm.encode(golden["frames_uint8"])), np.asarray(z))
    raw = tiny_mlx.backend.encode(frames_to_tubelets(golden["frames_uint8"], 64))
    assert_parity(golden["enc_frames_raw"][0], np.asarray(raw))


def test_encoder_on_video_matches_upstream(tiny_mlx, golden):
    out = tiny_mlx.backend.encode(frames_to_clip(golden["video_uint8"], 64))
    assert out.shape == golden["enc_video"].shape
    assert_parity(golden["enc_video"], np.asarray(out))


def test_predictor_matches_upstream_and_torch(tiny_mlx, tiny_wm, golden):
    args = golden["pred_x"], golden["actions"], golden["states"]
    out = np.asarray(tiny_mlx.predict(*args))
    assert_parity(golden["pred_out"], out)
    assert_parity(np.asarray(tiny_wm.predict(*args)), out)


def test_predictor_compiled_equals_eager_and_is_block_causal(tiny_wm, golden):
    compiled, eager = twin(tiny_wm, compile=True), twin(tiny_wm, compile=False)
    x, a, s = (golden[k].copy() for k in ("pred_x", "actions", "states"))
    base = np.asarray(compiled.predict(x, a, s))
    np.testing.assert_allclose(np.asarray(eager.predict(x, a, s)), base, atol=1e-5)
    a[:, 2] += 0.5
    x[:, 32:] += 1.0
    moved = np.asarray(compiled.predict(x, a, s))
    assert np.abs(moved[:, :32] - base[:, :32]).max() < 1e-6
    assert np.abs(moved[:, 32:] - base[:, 32:]).max() > 1e-2


def test_weights_and_shapes_round_trip_in_torch_layout(tiny_mlx, tiny_wm):
    for part in ("encoder", "predictor"):
        assert tiny_mlx.backend.parameter_shapes(part) == tiny_wm.backend.parameter_shapes(part)
        ours, theirs = tiny_mlx.backend.state_arrays(part), tiny_wm.backend.state_arrays(part)
        assert ours.keys() == theirs.keys()
        for name in theirs:
            np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # the conv kernel is stored channels-last inside MLX
    assert tiny_mlx.backend.encoder.patch_embed.proj.weight.shape == (192, 2, 16, 16, 3)
    assert tiny_mlx.encoder_hash() == tiny_wm.encoder_hash()


def test_other_architecture_branches_match_torch():
    """SwiGLU MLP, extrinsics tokens, an odd head dim (RoPE pass-through dims), masked encoder
    tokens and the 2D (image) patch embedding: random weights, MLX vs torch."""
    import torch

    enc = EncoderConfig(img_size=48, patch_size=16, num_frames=4, embed_dim=80, depth=2, num_heads=2,
                        use_silu=True, wide_silu=True)  # head dim 40: 3*12 rotated + 4 pass-through
    pred = PredictorConfig(img_size=48, patch_size=16, num_frames=4, predictor_embed_dim=64, depth=2, num_heads=2,
                           use_silu=True, wide_silu=False, use_extrinsics=True)
    ref = random_torch_wm(enc, pred, seed=1)
    wm = twin(ref)
    rng = np.random.default_rng(0)
    clip = rng.normal(size=(2, 3, 4, 48, 48)).astype(np.float32)
    assert_parity(np.asarray(ref.backend.encode(clip)), np.asarray(wm.backend.encode(clip)))
    masks = np.stack([rng.permutation(18)[:7] for _ in range(2)])  # [B, K] kept token ids
    with torch.no_grad():
        ref_masked = ref.backend.encoder(torch.from_numpy(clip), torch.from_numpy(masks)).numpy()
    assert_parity(ref_masked, np.asarray(wm.backend.encoder(mx.array(clip), mx.array(masks))))
    z = rng.normal(size=(2, 2 * 9, 80)).astype(np.float32)
    a, s, e = (rng.normal(size=(2, 2, d)).astype(np.float32) for d in (7, 7, 6))
    assert_parity(np.asarray(ref.predict(z, a, s, e)), np.asarray(wm.predict(z, a, s, e)))
    with pytest.raises(ValueError, match="extrinsics"):
        wm.predict(z, a, s)

    image = EncoderConfig(img_size=32, patch_size=16, num_frames=1, embed_dim=48, depth=1, num_heads=2)
    ref_img = random_torch_wm(image, None, seed=2)
    wm_img = twin(ref_img)
    assert wm_img.backend.parameter_shapes("encoder")["patch_embed.proj.weight"] == (48, 3, 16, 16)
    x = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
    assert_parity(np.asarray(ref_img.backend.encode(x)), np.asarray(wm_img.backend.encode(x)))


@pytest.mark.parametrize("dtype, cos, tol", [("bfloat16", 0.9999, 0.1), ("float16", 0.99999, 0.02)])
def test_half_precision_error_is_bounded(tiny_wm, golden, dtype, cos, tol):
    """Measured on the tiny model: bf16 max abs ~5e-2 (cosine ~0.99998), fp16 ~5e-3 (cosine ~0.9999997)."""
    wm = twin(tiny_wm, dtype)
    assert wm.backend.encoder.blocks[0].attn.qkv.weight.dtype == getattr(mx, dtype)
    z = wm.encode(golden["frames_uint8"])
    assert z.dtype == mx.float32  # outputs come back as float32
    assert_parity(golden["pred_x"], np.asarray(z).reshape(1, -1, 192), cos, tol)
    assert_parity(golden["pred_out"], np.asarray(wm.predict(golden["pred_x"], golden["actions"], golden["states"])),
                  cos, tol)


# -- loading every format ---------------------------------------------------------------------


def test_loads_our_folder_without_torch(tmp_path, tiny_wm):
    """Our folder format loads into MLX in a process where `import torch` fails."""
    path = tiny_wm.save(tmp_path / "ckpt")
    script = f"""
import sys
sys.modules["torch"] = None  # any torch import now raises ImportError
import numpy as np, jepa_ac
g = np.load({str(REPO / 'tests/fixtures/vjepa2_ac_tiny_io.npz')!r})
wm = jepa_ac.load_world_model({str(path)!r}, backend="mlx")
z = np.asarray(wm.encode(g["frames_uint8"])).reshape(1, -1, 192)
out = np.asarray(wm.predict(g["pred_x"], g["actions"], g["states"]))
print(float(np.abs(z - g["pred_x"]).max()), float(np.abs(out - g["pred_out"]).max()))
assert not any(m == "torch" or m.startswith("torch.") for m, v in sys.modules.items() if v is not None)
try:
    jepa_ac.load_world_model({str(TINY_PT)!r}, encoder="vit_giant", backend="mlx")
except ImportError as err:
    print("upstream:", err)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    errors, upstream = done.stdout.strip().splitlines()
    assert max(map(float, errors.split())) <= TOL
    assert "needs torch" in upstream and "convert it once" in upstream


def test_loads_hf_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    import torch

    config = transformers.VJEPA2Config(
        crop_size=32, frames_per_clip=4, hidden_size=96, num_attention_heads=3, num_hidden_layers=2,
        mlp_ratio=4.0, pred_hidden_size=48, pred_num_attention_heads=3, pred_num_hidden_layers=1,
        num_pooler_layers=1)
    torch.manual_seed(0)
    model = transformers.VJEPA2Model(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    wm = jepa_ac.load_world_model(tmp_path / "hf", backend="mlx")
    assert wm.predictor_config is None and wm.encoder_config.embed_dim == 96
    video = torch.randn(1, 4, 3, 32, 32)  # HF layout [B, T, C, H, W]
    with torch.no_grad():
        ref = model(pixel_values_videos=video, skip_predictor=True).last_hidden_state.numpy()
    assert_parity(ref, np.asarray(wm.backend.encode(video.permute(0, 2, 1, 3, 4).numpy())))


def test_load_errors_are_clear(tiny_arch):
    with pytest.raises(jepa_ac.CheckpointError, match="first bad key"):
        jepa_ac.load_world_model(TINY_PT, encoder=dict(tiny_arch["encoder"], embed_dim=96), load_predictor=False,
                                 backend="mlx")
    enc = EncoderConfig(img_size=32, embed_dim=48, depth=1, num_heads=2, num_frames=4)
    with pytest.raises(ValueError, match="dtype must be one of"):
        MLXBackend(enc, None, dtype="float64")
    with pytest.raises(ValueError, match="device must be one of"):
        MLXBackend(enc, None, device="cuda")
    backend = MLXBackend(enc, None, device="cpu")
    with pytest.raises(ValueError, match="channels"):
        backend.encode(np.zeros((1, 4, 4, 32, 32), np.float32))
    with pytest.raises(ValueError, match="no predictor"):
        backend.parameter_shapes("predictor")


def test_predictor_shape_errors(tiny_mlx, golden):
    with pytest.raises(ValueError, match="disagree"):
        tiny_mlx.predict(golden["pred_x"][:, :40], golden["actions"], golden["states"])
    with pytest.raises(ValueError, match="NaN"):
        tiny_mlx.predict(golden["pred_x"], golden["actions"] * np.nan, golden["states"])


# -- conversion -------------------------------------------------------------------------------


def run_convert(*args):
    return subprocess.run([sys.executable, "-m", "jepa_ac.convert", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


@pytest.mark.parametrize("dtype, tol", [("float32", TOL), ("float16", 0.02)])
def test_convert_upstream_to_folder_loads_on_both_backends(tmp_path, golden, dtype, tol):
    arch = str(REPO / "tests/fixtures/vjepa2_ac_tiny.json")
    done = run_convert("--checkpoint", str(TINY_PT), "--encoder", arch, "--predictor", arch,
                       "--out", str(tmp_path / "out"), "--dtype", dtype)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["parameters"] == 1448448 and summary["parts"] == ["encoder", "predictor"]
    config = json.loads((tmp_path / "out/config.json").read_text())
    assert config["provenance"]["weights_dtype"] == dtype and config["provenance"]["source_format"] == "upstream"
    for backend in ("mlx", "torch"):
        wm = jepa_ac.load_world_model(tmp_path / "out", backend=backend, device="cpu")
        out = np.asarray(wm.ops.to_numpy(wm.predict(golden["pred_x"], golden["actions"], golden["states"])))
        assert_parity(golden["pred_out"], out, 0.99999, tol)


def test_convert_bfloat16_writes_real_bf16(tmp_path, tiny_wm):
    from jepa_ac.world_model.safetensors_io import read_safetensors

    src = tiny_wm.save(tmp_path / "src")
    done = run_convert("--checkpoint", str(src), "--out", str(tmp_path / "bf16"), "--dtype", "bfloat16")
    assert done.returncode == 0, done.stderr
    weights = tmp_path / "bf16/model.safetensors"
    header = json.loads(weights.read_bytes()[8 : 8 + int.from_bytes(weights.read_bytes()[:8], "little")])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    assert weights.stat().st_size < 0.51 * (src / "model.safetensors").stat().st_size
    # our widening reader and MLX's own reader agree with MLX's float32 -> bfloat16 rounding
    widened, native = read_safetensors(weights), mx.load(str(weights))
    fp32 = tiny_wm.backend.state_arrays("encoder")["blocks.0.attn.qkv.weight"]
    rounded = np.asarray(mx.array(fp32).astype(mx.bfloat16).astype(mx.float32))
    np.testing.assert_array_equal(widened["encoder.blocks.0.attn.qkv.weight"], rounded)
    np.testing.assert_array_equal(np.asarray(native["encoder.blocks.0.attn.qkv.weight"].astype(mx.float32)), rounded)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left


def test_bfloat16_folder_loads(tmp_path, tiny_wm, golden):
    from jepa_ac.world_model.conversion import convert

    convert(tiny_wm.save(tmp_path / "src"), tmp_path / "bf16", dtype="bfloat16")
    wm = jepa_ac.load_world_model(tmp_path / "bf16", backend="mlx", dtype="bfloat16")
    out = np.asarray(wm.predict(golden["pred_x"], golden["actions"], golden["states"]))
    assert_parity(golden["pred_out"], out, 0.9999, 0.1)


def test_convert_errors(tmp_path):
    done = run_convert("--checkpoint", str(TINY_PT), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "--encoder" in done.stderr
    done = run_convert("--checkpoint", str(TINY_PT), "--encoder", "vit_giant", "--no-predictor", "--out",
                       str(tmp_path / "x"))
    assert done.returncode == 2 and "first bad key" in done.stderr
    assert not (tmp_path / "x").exists()


# -- planning through the shared code ----------------------------------------------------------


TRUE_PLAN = np.array([[[0.04, -0.03, 0.02, 0, 0, 0, 0.5], [0.0, 0.03, -0.02, 0, 0, 0, 0]]], np.float32)  # [1, H, 7]


def goal_from_plan(wm, frame, state):
    """The latent the model predicts after TRUE_PLAN: a goal with well-separated costs (on the tiny
    model, costs towards an encoded image tie to ~1e-7 between samples, below the ~2e-6 backend gap)."""
    z, s = wm.encode(frame), wm.ops.asarray(state)
    return z, s, wm.rollout(z, s, wm.ops.asarray(TRUE_PLAN))[:, -1]  # [1, N, D]


def test_cem_step_matches_torch_with_identical_noise(tiny_mlx, tiny_wm, golden):
    config = CEMConfig(samples=64, iterations=3, topk=8, horizon=2)
    spec = ActionSpec()
    noise = sample_noise(config, spec, np.random.default_rng(0))
    results, costs = {}, {}
    for name, wm in (("torch", tiny_wm), ("mlx", tiny_mlx)):
        z, s, z_goal = goal_from_plan(wm, golden["frames_uint8"][0], golden["states"][0, :1])
        seen = costs.setdefault(name, [])

        def cost(actions, wm=wm, z=z, z_goal=z_goal, s=s, seen=seen):
            energy = wm.rollout_energy(z, s, actions, z_goal)  # [S]
            seen.append(wm.ops.to_numpy(energy))
            return energy

        results[name] = cem(cost, config, spec, noise, wm.ops)
    np.testing.assert_allclose(results["mlx"].actions, results["torch"].actions, atol=1e-5)
    np.testing.assert_allclose(results["mlx"].elite_costs, results["torch"].elite_costs, atol=1e-6)
    for ref, ours in zip(costs["torch"], costs["mlx"], strict=True):  # the same elites, in the same order
        elites = np.argsort(ref, kind="stable")[: config.topk + 1]
        np.testing.assert_array_equal(elites, np.argsort(ours, kind="stable")[: config.topk + 1])
        assert np.abs(ref - ours).max() < 0.1 * np.diff(ref[elites]).min()  # not decided by float noise


@pytest.mark.parametrize("compile", [True, False])
def test_cached_rollout_equals_uncached(tiny_wm, golden, compile, monkeypatch):
    """The KV-cached rollout (context embedded once, one frame per step) against the predictor re-run
    on every frame so far, at horizon 3; and `WorldModel.rollout` takes the cached path."""
    wm = twin(tiny_wm, compile=compile)
    z = wm.encode(golden["frames_uint8"][0])  # [1, N, D]
    state = wm.ops.asarray(golden["states"][0, :1])  # [1, 7]
    actions = wm.ops.asarray(np.random.default_rng(0).uniform(-0.05, 0.05, (6, 3, 7)).astype(np.float32))
    uncached = np.asarray(wm.rollout_uncached(z, state, actions))
    monkeypatch.setattr(wm.backend, "predict", None)  # the cached path never calls the full predictor
    cached = wm.rollout(z, state, actions)
    assert cached.shape == (6, 3, 16, 192) and cached.dtype == mx.float32
    np.testing.assert_allclose(np.asarray(cached), uncached, atol=1e-4)
    torch_cached = tiny_wm.rollout(tiny_wm.ops.asarray(np.asarray(z)), tiny_wm.ops.asarray(np.asarray(state)),
                                   tiny_wm.ops.asarray(np.asarray(actions)))
    np.testing.assert_allclose(np.asarray(cached), torch_cached.numpy(), atol=1e-4)


def test_workspace_clip_matches_numpy():
    spec = ActionSpec(workspace_min=(0.3, -0.2, 0.05), workspace_max=(0.7, 0.2, 0.4))
    free = np.random.default_rng(5).uniform(-0.05, 0.05, (64, 2, 4)).astype(np.float32)  # [S, H, dx dy dz dgrip]
    position = np.array([0.69, -0.19, 0.41])  # near two walls, above the ceiling
    ours = MLX_OPS.to_numpy(spec.constrain(MLX_OPS.asarray(free), MLX_OPS, position))
    np.testing.assert_allclose(ours, spec.constrain(free, NUMPY_OPS, position), atol=1e-7)


def test_planner_end_to_end_on_mlx(tiny_mlx, tiny_wm, golden):
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=48, iterations=3, topk=6, horizon=2, seed=3, warm_start=True)
    actions = {}
    for name, wm in (("torch", tiny_wm), ("mlx", tiny_mlx)):
        planner = CEMPlanner(wm, config)
        planner.set_goal(frames[2])
        assert planner.has_goal
        planner._goal_latent = goal_from_plan(wm, frames[0], state[None])[2]  # a goal latent, not an image
        actions[name] = planner.plan(frames[0], state)
    action = actions["mlx"]
    assert action.shape == (7,) and action.dtype == np.float32
    assert np.abs(action[:3]).max() <= 0.05 and np.all(action[3:6] == 0)
    np.testing.assert_allclose(action, actions["torch"], atol=1e-5)
    planner = CEMPlanner(tiny_mlx, config)
    first = planner.plan(frames[0], state, frames[2])  # from images, then warm-started
    second = planner.plan(frames[1], state)
    assert first.shape == second.shape == (7,) and planner.last_result.elite_costs.shape == (3, 6)


def test_mlx_ops():
    x = mx.array(np.array([5.0, -1.0, 3.0, 0.5, 2.0], np.float32))
    np.testing.assert_array_equal(np.asarray(MLX_OPS.smallest_k(x, 3)), [1, 3, 4])
    e = mx.array(np.random.default_rng(0).normal(size=(6, 2, 3)).astype(np.float32))
    np.testing.assert_allclose(np.asarray(MLX_OPS.std(e, 0)), np.asarray(e).std(0, ddof=1), rtol=1e-5)
    assert MLX_OPS.asarray(np.zeros(3, np.float64)).dtype == mx.float32
    half = MLX_OPS.asarray([1.5, 2.0], like=mx.zeros(1, dtype=mx.bfloat16))
    assert half.dtype == mx.bfloat16 and MLX_OPS.to_numpy(half).dtype == np.float32
    ln = MLX_OPS.layer_norm(e)
    np.testing.assert_allclose(np.asarray(ln).mean(-1), 0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(MLX_OPS.min(e, 1)), np.asarray(e).min(1))


def test_straight_line_plans_match_torch(tiny_mlx, tiny_wm, golden):
    """repeat_action + the min-over-horizon energy choose the same held action on both backends."""
    frames, state = golden["frames_uint8"], golden["states"][0, 0]
    config = CEMConfig(samples=48, iterations=3, topk=6, horizon=3, repeat_action=True, horizon_energy="min", seed=4)
    results = {}
    for name, wm in (("torch", tiny_wm), ("mlx", tiny_mlx)):
        planner = CEMPlanner(wm, config)
        planner._goal_latent = goal_from_plan(wm, frames[0], state[None])[2]
        results[name] = planner.plan_sequence(frames[0], state)
    assert results["mlx"].actions.shape == (3, 7)
    np.testing.assert_allclose(results["mlx"].actions, results["torch"].actions, atol=1e-5)
    np.testing.assert_allclose(results["mlx"].elite_costs, results["torch"].elite_costs, atol=1e-6)


def test_compare_metrics():
    ref = np.array([[1.0, 0.0], [0.0, 2.0]])
    assert compare(ref, ref)["cosine"] == pytest.approx(1.0) and compare(ref, ref)["max_abs"] == 0
    stats = compare(ref, ref + [[0.0, 0.5], [0.0, 0.0]])
    assert stats["max_abs"] == 0.5 and stats["mean_abs"] == 0.125 and stats["min_token_cosine"] < 0.95


# -- the benchmark CLI ----------------------------------------------------------------------------


def test_bench_lists_subcommands():
    done = subprocess.run([sys.executable, "-m", "jepa_ac.bench", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and "parity" in done.stdout
    done = subprocess.run([sys.executable, "-m", "jepa_ac.bench", "nope"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "unknown benchmark" in done.stderr


@pytest.mark.slow
def test_bench_parity_runs(tmp_path):
    done = subprocess.run([sys.executable, "-m", "jepa_ac.bench", "parity", "--sizes", "tiny", "--dtypes", "float32",
                           "--repeats", "1", "--samples", "16", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "parity.json").read_text())
    rows = report["sizes"][0]["parity"]
    assert all(r["max_abs"] <= TOL for r in rows if r["dtype"] == "float32")
    assert (tmp_path / "parity.md").read_text().startswith("# MLX") and (tmp_path / "latency.png").stat().st_size
