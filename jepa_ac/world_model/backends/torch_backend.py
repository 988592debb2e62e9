"""PyTorch backend: builds the torch encoder/predictor, loads checked weights, runs them.

A backend turns configs + name->array dicts into runnable models and exposes `encode`,
`predict` and `ops` (the `ArrayOps` the shared rollout/planning code uses). `WorldModel`
holds one; nothing outside `jepa_ac/world_model/backends/` and `jepa_ac/model/nn_torch/` imports torch directly.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from jepa_ac.model import pose
from jepa_ac.model.nn_torch.ops import TorchOps
from jepa_ac.model.config import EncoderConfig, PredictorConfig
from jepa_ac.model.nn_torch.encoder import VisionTransformer
from jepa_ac.model.nn_torch.predictor import ACPredictor

CPU_CHUNK_TOKENS = 4096
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchBackend:
    """Frozen torch encoder and/or predictor on one device, in inference mode."""

    name = "torch"

    def __init__(
        self,
        encoder_config: EncoderConfig | None,
        predictor_config: PredictorConfig | None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        compile: bool = False,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        if isinstance(dtype, str):
            if dtype not in DTYPES:
                raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
            dtype = DTYPES[dtype]
        self.dtype = dtype or torch.float32
        self.ops = TorchOps(self.device, torch.float32)
        self.modules: dict[str, torch.nn.Module] = {}
        if encoder_config is not None:
            self.modules["encoder"] = VisionTransformer(encoder_config)
        if predictor_config is not None:
            self.modules["predictor"] = ACPredictor(predictor_config)
        for module in self.modules.values():
            module.to(self.device, self.dtype).eval().requires_grad_(False)
        self._frame_step: Any = None
        self.rollout_chunk: int | None = None  # samples per predictor call in `rollout` (None: auto)
        self.set_compile(compile)

    def set_compile(self, flag: bool) -> None:
        """Run the planning rollout's predictor step through `torch.compile` (one graph per frame index)."""
        self.compiled = bool(flag)
        if "predictor" in self.modules:
            step = self.predictor.frame_step
            self._frame_step = torch.compile(step, dynamic=False) if self.compiled else step

    @property
    def encoder(self) -> VisionTransformer:
        return self.modules["encoder"]  # type: ignore[return-value]

    @property
    def predictor(self) -> ACPredictor:
        return self.modules["predictor"]  # type: ignore[return-value]

    def parameter_shapes(self, part: str) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every tensor `part` ("encoder"/"predictor") expects, in torch layout."""
        return {k: tuple(v.shape) for k, v in self.modules[part].state_dict().items()}

    def load_arrays(self, part: str, arrays: Mapping[str, Any]) -> None:
        """Load already-checked tensors (torch layout; numpy or torch values)."""
        state = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v for k, v in arrays.items()}
        self.modules[part].load_state_dict(state, strict=True)

    def state_arrays(self, part: str) -> dict[str, np.ndarray]:
        """The part's weights as float32 numpy arrays (torch layout), for saving."""
        return {k: self.ops.to_numpy(v) for k, v in self.modules[part].state_dict().items()}

    @torch.inference_mode()
    def encode(self, clip: np.ndarray | torch.Tensor, hierarchical: bool = False, masks: Any = None) -> torch.Tensor:
        """clip [B, 3, T, H, W] float32 -> tokens [B, N, D] (encoder norm applied, no extra layer norm);
        `hierarchical` (V-JEPA 2.1): the concatenated `norms_block` outputs [B, N, 4*D]; `masks`:
        [B, K] indices of the tokens to keep -> [B, K, ...]."""
        x = torch.as_tensor(clip, device=self.device).to(self.dtype)
        keep = None if masks is None else torch.as_tensor(np.asarray(masks), device=self.device)
        return self.encoder(x, masks=keep, hierarchical=hierarchical).float()

    @torch.inference_mode()
    def predict(self, z: Any, actions: Any, states: Any, extrinsics: Any = None) -> torch.Tensor:
        """Upstream predictor call: [B, T*N, D], [B, T, 7], [B, T, 7] -> [B, T*N, D] (float32)."""
        cast = lambda x: None if x is None else self.ops.asarray(x).to(self.dtype)  # noqa: E731
        return self.predictor(cast(z), cast(actions), cast(states), cast(extrinsics)).float()

    @torch.inference_mode()
    def rollout(self, z_context: Any, state: Any, actions: Any, normalize_eps: float | None) -> torch.Tensor:
        """Planning rollout with a key/value cache (block-causal predictors only).

        z_context [1, N, D], state [1, 7], actions [S, H, 7] -> latents [S, H, N, D] (float32), the
        same as `WorldModel.rollout_uncached`: the context is embedded once for all samples, each
        step runs only the new frame's tokens against the cached keys/values of earlier frames (no
        mask needed), poses advance vectorised on the device, and nothing syncs with the host.
        `normalize_eps`: layer-norm each predicted frame with this eps (None: leave it raw).
        """
        pred = self.predictor
        if not pred.config.is_frame_causal:
            raise ValueError("the cached rollout needs a block-causal predictor (is_frame_causal=True)")
        actions = self.ops.asarray(actions)  # [S, H, 7]
        S, H, _ = actions.shape
        chunk = self.rollout_chunk
        if chunk is None:  # CPU: ~4k tokens per call keep activations cache-sized (measured faster)
            chunk = S if self.device.type != "cpu" else max(1, CPU_CHUNK_TOKENS // (pred.config.cond_tokens + z_context.shape[-2]))
        if chunk < S:  # samples are independent: run them in cache-sized chunks
            parts = [self.rollout(z_context, state, actions[i : i + chunk], normalize_eps) for i in range(0, S, chunk)]
            return torch.cat(parts, dim=0)  # [S, H, N, D]
        N, D = z_context.shape[-2:]
        x = pred.embed_context(self.ops.asarray(z_context).reshape(1, N, D).to(self.dtype))  # [1, N, W]
        states = self.ops.asarray(state).reshape(1, 7).expand(S, 7)  # [S, 7]
        cache, predicted = None, []
        for h in range(H):
            out, cache = self._frame_step(x, actions[:, h].to(self.dtype), states.to(self.dtype), h, cache)
            z_next = out.float()  # [S, N, D]
            if normalize_eps is not None:
                z_next = torch.nn.functional.layer_norm(z_next, (D,), eps=normalize_eps)
            predicted.append(z_next)
            if h + 1 < H:
                x = pred.embed_context(z_next.to(self.dtype))  # [S, N, W]
                # in float64 like upstream's scipy pose math: tied costs make CEM sensitive to 1 ulp
                states = pose.apply_action(states.double(), actions[:, h].double()).float()  # [S, 7]
        return torch.stack(predicted, dim=1)  # [S, H, N, D]
