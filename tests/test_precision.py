"""Planning precision: the dtype rule, the --dtype / --threads flags, and bf16 planning the fp32 plan."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from jepa_ac.cli import args as cli_args
from jepa_ac.world_model.precision import choose_planning_dtype, cpu_flags, dtype_name, host_isa

from conftest import TINY_PT
from planning_helpers import restore_torch_threads  # noqa: F401  (the CLI flags set torch's threads)

REPO = TINY_PT.parents[2]
AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_BF16 = AVX2 | {"avx512f", "avx512bw", "avx512_bf16"}  # e.g. AMD Zen 4: no AMX
AMX = AVX512_BF16 | {"amx_tile", "amx_bf16", "amx_int8"}  # e.g. Intel Sapphire Rapids


# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags, capability, expected", [
    (AVX2, "AVX2", "float32"),
    (AVX512_BF16 - {"avx512_bf16"}, "AVX512", "float32"),  # AVX-512 without bf16 dot products
    (AVX512_BF16, "AVX512", "bfloat16"),
    (AMX, "AVX512", "bfloat16"),
    (AMX, "AVX2", "float32"),  # torch's kernels capped below AVX-512 (ATEN_CPU_CAPABILITY=avx2)
    (frozenset(), "DEFAULT", "float32"),  # not Linux / unknown CPU
])
def test_auto_on_cpu_follows_the_isa(flags, capability, expected):
    assert choose_planning_dtype("cpu", "auto", flags=flags, capability=capability) == expected


def test_an_explicit_dtype_wins_and_bad_names_are_refused():
    assert choose_planning_dtype("cpu", "float32", flags=AMX, capability="AVX512") == "float32"
    assert choose_planning_dtype("cpu", "float16", flags=AVX2, capability="AVX2") == "float16"
    assert choose_planning_dtype(None, "bfloat16", backend="mlx") == "bfloat16"
    with pytest.raises(ValueError, match="float8"):
        choose_planning_dtype("cpu", "float8")


def test_auto_on_cuda_mlx_and_other_devices(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_planning_dtype("cuda", "auto") == "bfloat16"
    assert choose_planning_dtype("cuda:1", "auto") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_planning_dtype("cuda", "auto") == "float32"
    assert choose_planning_dtype("mps", "auto", flags=AMX, capability="AVX512") == "float32"
    assert choose_planning_dtype("gpu", "auto", backend="mlx", flags=AMX, capability="AVX512") == "float32"


def test_cpu_flags_and_isa_label():
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\nflags : other\n"
    flags = cpu_flags(cpuinfo)
    assert flags == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"} and cpu_flags("") == frozenset()
    isa = host_isa(flags)
    assert isa["label"] == "avx512_bf16" and isa["cpu_flags"] == ["avx512_bf16", "avx512f", "avx2"]
    assert isa["row"] == f"avx512_bf16/{torch.backends.cpu.get_cpu_capability()}"
    assert host_isa(AMX)["label"] == "amx_bf16" and host_isa(AVX2)["label"] == "avx2"
    assert dtype_name(torch.bfloat16) == "bfloat16" and dtype_name("float32") == "float32"


# -- threads -------------------------------------------------------------------------------------


def test_default_threads_avoid_spinning_and_respect_the_environment():
    # before OpenMP loads: torch's default threads, sleeping at barriers
    assert cli_args.default_threads({}, cpus=2, openmp_started=False) == (None, {"OMP_WAIT_POLICY": "PASSIVE"})
    assert cli_args.default_threads({"OMP_WAIT_POLICY": "ACTIVE"}, cpus=2, openmp_started=False) == (None, {})
    # after: its policy is fixed, so half the CPUs
    assert cli_args.default_threads({}, cpus=2, openmp_started=True) == (1, {})
    assert cli_args.default_threads({}, cpus=1, openmp_started=True) == (1, {})
    assert cli_args.default_threads({}, cpus=16, openmp_started=True) == (8, {})
    # OMP_NUM_THREADS is the user's choice, which torch honours itself
    assert cli_args.default_threads({"OMP_NUM_THREADS": "3"}, cpus=16, openmp_started=False) == (None, {})
    assert cli_args.openmp_loaded()  # torch is imported here


def fresh_python(code: str, **environ: str) -> str:
    """stdout of `code` in a new interpreter with no OMP_* variables but `environ`'s."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(environ, PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout


def test_a_fresh_command_sets_the_passive_wait_policy_before_torch_loads():
    code = ("import os, sys; from jepa_ac.cli.args import set_threads; set_threads(None); "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    assert fresh_python(code).split() == ["PASSIVE", "True"]


def test_the_training_commands_let_idle_threads_sleep_and_take_threads():
    import torch

    from jepa_ac.training.common import init_distributed
    from jepa_ac.training.predictor_trainer import TrainPredictorConfig
    from jepa_ac.pretraining.trainer import PretrainEncoderConfig

    # a fresh `python -m jepa_ac.train_predictor` / `pretrain_encoder`: the policy is set before torch loads
    for command in ("train_predictor", "pretrain_encoder"):
        code = (f"import os, sys, jepa_ac.{command} as c\n"
                "try:\n    c.main(['--data', 'no/such/data', '--steps', '1'])\nexcept SystemExit:\n    pass\n"
                "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
        assert fresh_python(code).split()[-2:] == ["PASSIVE", "True"], command
        assert fresh_python(code, OMP_NUM_THREADS="1").split()[-2:] == ["None", "True"], command  # the user's choice
    # --threads N
    before = torch.get_num_threads()
    try:
        init_distributed("cpu", threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    for config in (TrainPredictorConfig, PretrainEncoderConfig):
        with pytest.raises(ValueError, match="threads must be >= 0"):
            config(threads=-1)


# -- the flags reach the world model ---------------------------------------------------------------


def tiny_args(*flags: str):
    from jepa_ac.plan import build_parser

    return build_parser().parse_args(["--checkpoint", str(TINY_PT), "--arch", str(TINY_PT.with_suffix(".json")),
                                      "--device", "cpu", "--threads", "1", *flags])


def test_dtype_flag_parses_and_reaches_the_world_model(monkeypatch):
    assert tiny_args().dtype == "auto"
    wm = cli_args.load_model_from_args(tiny_args("--dtype", "bfloat16"))
    assert wm.backend.dtype == torch.bfloat16 and torch.get_num_threads() == 1
    # auto asks the rule with the host's backend and device
    seen = []
    monkeypatch.setattr(cli_args, "choose_planning_dtype", lambda *a: seen.append(a) or "float16")
    wm = cli_args.load_model_from_args(tiny_args())
    assert seen == [("cpu", "auto", "torch")] and wm.backend.dtype == torch.float16
    with pytest.raises(SystemExit):
        tiny_args("--dtype", "int8")


@pytest.mark.parametrize("module", ["plan", "evaluate", "serve", "bench.action_inference"])
def test_planning_commands_take_the_dtype_flag(module):
    import importlib

    parser = importlib.import_module(f"jepa_ac.{module}").build_parser()
    assert parser.parse_args(["--dtype", "float32"]).dtype == "float32"


# -- bf16 plans what fp32 plans --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fp32_and_bf16():
    """A small random world model in fp32 and the same weights in bf16."""
    from jepa_ac.bench.parity import torch_twin
    from jepa_ac.model.config import EncoderConfig, PredictorConfig
    from jepa_ac.world_model import WorldModel
    from jepa_ac.world_model.backends.torch_backend import TorchBackend

    torch.manual_seed(0)
    enc = EncoderConfig(img_size=32, patch_size=16, num_frames=4, tubelet_size=2, embed_dim=64, depth=1, num_heads=2)
    pred = PredictorConfig(img_size=32, patch_size=16, num_frames=4, tubelet_size=2, predictor_embed_dim=64,
                           depth=2, num_heads=2).with_encoder(enc)
    wm32 = WorldModel(TorchBackend(enc, pred, device="cpu"), enc, pred)
    return wm32, torch_twin(wm32, "bfloat16")


def test_bf16_and_fp32_pick_the_same_action_when_the_goal_is_clear(fp32_and_bf16):
    """The goal is the fp32 model's imagined frame after a known move: both precisions must find that move."""
    from jepa_ac.planning import ActionSpec, CEMConfig, cem, sample_noise

    wm32, wm16 = fp32_and_bf16
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    state = np.array([[0.45, -0.05, 0.30, 3.0, 0.15, -0.4, 0.2]], np.float32)
    target = np.array([0.03, -0.02, 0.01, 0, 0, 0, 0], np.float32)
    z32 = wm32.encode(frame)
    goal = wm32.rollout(z32, wm32.ops.asarray(state), wm32.ops.asarray(target[None, None]))[:, -1]  # [1, N, D]
    # well separated: the move against 8 others 3 cm around it, same argmin in both precisions
    ring = [target + 0.03 * np.array([np.cos(t), np.sin(t), 0, 0, 0, 0, 0], np.float32)
            for t in np.linspace(0, 2 * np.pi, 8, endpoint=False)]
    candidates = np.stack([target, *ring])[:, None]  # [9, 1, 7]
    spec = ActionSpec(frozen={"droll": 0.0, "dpitch": 0.0, "dyaw": 0.0, "dgripper": 0.0})
    config = CEMConfig(samples=64, iterations=4, topk=8)
    noise = sample_noise(config, spec, np.random.default_rng(0))
    chosen = {}
    for name, wm in (("fp32", wm32), ("bf16", wm16)):
        z, state_x = wm.encode(frame), wm.ops.asarray(state)
        energies = wm.rollout_energy(z, state_x, wm.ops.asarray(candidates), goal)
        assert energies.dtype == torch.float32 and int(torch.argmin(energies)) == 0, name
        result = cem(lambda a: wm.rollout_energy(z, state_x, a, goal), config, spec, noise, wm.ops)
        chosen[name] = result.actions[0]
    assert np.abs(chosen["fp32"] - target).max() < 5e-3
    assert np.abs(chosen["bf16"] - chosen["fp32"]).max() < 5e-3


def test_bf16_networks_hand_float32_to_the_energy(fp32_and_bf16):
    """Only the networks run in bf16: latents, rollouts and energies come back float32."""
    _, wm16 = fp32_and_bf16
    frame = np.zeros((32, 32, 3), np.uint8)
    z = wm16.encode(frame)
    actions = wm16.ops.asarray(np.zeros((3, 2, 7), np.float32))
    state = wm16.ops.asarray(np.array([[0.45, -0.05, 0.30, 3.0, 0.15, -0.4, 0.2]], np.float32))
    assert z.dtype == torch.float32 and wm16.backend.predictor.predictor_embed.weight.dtype == torch.bfloat16
    assert wm16.rollout(z, state, actions).dtype == torch.float32
    assert wm16.rollout_uncached(z, state, actions).dtype == torch.float32
    assert wm16.rollout_energy(z, state, actions, z).dtype == torch.float32


def test_rope_on_the_joint_query_key_layout_is_upstreams_rotation_bit_for_bit():
    """apply_rope rotates q and k together with a signed sine; it must give exactly upstream's
    x * cos + (-x1, x0) * sin on each of them (float32: the planning records stay the same)."""
    from jepa_ac.model.nn_torch.layers import _axis_angles, apply_rope, rope_tables

    torch.manual_seed(0)
    qk = torch.randn(3, 10, 2, 4, 24)  # [B, N, q/k, heads, hd]
    pos = [torch.arange(10.0), torch.arange(10.0) % 3, torch.arange(10.0) % 5]
    cos, sin = rope_tables(*pos, head_dim=24)
    angles = torch.cat([_axis_angles(p, 8) for p in pos], dim=-1)  # [N, 24]
    x = qk.permute(2, 0, 3, 1, 4)  # [2, B, heads, N, hd], as upstream rotates q and k
    pairs = x.unflatten(-1, (-1, 2))
    upstream = x * angles.cos() + torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2) * angles.sin()
    assert torch.equal(apply_rope(qk, cos, sin).permute(2, 0, 3, 1, 4), upstream)


@pytest.mark.parametrize("masked", [False, True])
def test_low_precision_cpu_attention_matches_the_fused_kernel(masked):
    """bf16 on the CPU takes the plain softmax(q k^T / sqrt(d)) v (faster there); it must agree with
    torch's fused kernel to bf16 accuracy, and float32 must still be the fused kernel itself."""
    from jepa_ac.model.nn_torch.layers import attention

    torch.manual_seed(1)
    q, k, v = torch.randn(3, 2, 4, 9, 24).unbind(0)  # [B, heads, N, hd] each
    mask = torch.ones(9, 9, dtype=torch.bool).tril() if masked else None
    exact = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.equal(attention(q, k, v, mask), exact)
    low = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask)
    assert low.dtype == torch.bfloat16
    assert (low.float() - exact).abs().max().item() < 0.05
    assert (low.float() - exact).abs().mean().item() < 0.01
    if masked:  # an additive float mask means the same as the boolean one
        additive = torch.zeros(9, 9).masked_fill(~mask, float("-inf")).bfloat16()
        assert torch.equal(attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), additive), low)


def test_training_dtype_rule():
    from jepa_ac.world_model.precision import choose_training_dtype

    bf16_cpu = dict(flags=frozenset({"avx512_bf16", "avx512f", "avx2"}), capability="AVX512")
    assert choose_training_dtype("cpu", "auto", **bf16_cpu) == "bfloat16"
    assert choose_training_dtype("cpu", "auto", flags=frozenset({"avx2"}), capability="AVX2") == "float32"
    assert choose_training_dtype("cpu", "auto", flags=frozenset({"avx512_bf16"}), capability="AVX2") == "float32"
    assert choose_training_dtype("cuda", "auto") == "bfloat16"
    assert choose_training_dtype("mps", "auto") == "float32"
    assert choose_training_dtype("cpu", "float32", **bf16_cpu) == "float32"
    assert choose_training_dtype("cpu", "bfloat16", flags=frozenset(), capability="AVX2") == "bfloat16"
    with pytest.raises(ValueError, match="dtype must be one of"):
        choose_training_dtype("cpu", "half")
