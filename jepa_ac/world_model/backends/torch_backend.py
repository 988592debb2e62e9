"""PyTorch backend: builds the torch encoder/predictor, loads checked weights, runs them.

A backend turns configs + name->array dicts into runnable models and exposes `encode`,
`predict` and `ops` (the `ArrayOps` the shared rollout/planning code uses). `WorldModel`
holds one; nothing outside `jepa_ac/world_model/backends/` and `jepa_ac/model/nn_torch/` imports torch directly.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

import numpy as np
import torch

from jepa_ac.model import pose
from jepa_ac.model.nn_torch.ops import TorchOps
from jepa_ac.model.config import EncoderConfig, PredictorConfig
from jepa_ac.model.nn_torch.encoder import VisionTransformer
from jepa_ac.model.nn_torch.predictor import ACPredictor

CPU_CHUNK_TOKENS = 4096
MIN_CHUNK_SAMPLES = 4
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
        # CPU: threads that run `rollout`'s sample chunks side by side, one torch thread each
        # (default: this thread's torch threads; 1 runs the chunks in turn on the caller's threads)
        self.rollout_workers = torch.get_num_threads() if self.device.type == "cpu" else 1
        self._pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (workers, process id, their pool)
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
        chunks = self._sample_chunks(actions.shape[0], pred.config.cond_tokens + z_context.shape[-2])
        if len(chunks) == 1:
            return self._rollout_chunk(z_context, state, actions, normalize_eps)
        run = lambda part: self._rollout_chunk(z_context, state, actions[part], normalize_eps)  # noqa: E731
        if self.rollout_workers > 1 and not self.compiled:  # compiled graphs stay on the caller's thread
            return torch.cat(list(self._worker_pool().map(run, chunks)), dim=0)  # [S, H, N, D]
        return torch.cat([run(part) for part in chunks], dim=0)  # [S, H, N, D]

    def _sample_chunks(self, samples: int, tokens_per_sample: int) -> list[slice]:
        """Split the samples into chunks of near-equal size: on the CPU about CPU_CHUNK_TOKENS tokens
        each (activations stay cache-sized) and a multiple of `rollout_workers` of them, but no chunk
        under MIN_CHUNK_SAMPLES where it can be helped; elsewhere one chunk. `rollout_chunk`, if set, fixes
        the chunk size instead. The split does not change the predictions: chunks of MIN_CHUNK_SAMPLES
        or more give the same bits as one call (tests/test_planning_reference.py); smaller ones can
        differ in the last bit (the BLAS picks other kernels for very short matrices)."""
        if self.rollout_chunk is not None:
            size = self.rollout_chunk
            return [slice(i, min(i + size, samples)) for i in range(0, samples, size)]
        if self.device.type != "cpu":
            return [slice(0, samples)]
        count = max(math.ceil(samples * tokens_per_sample / CPU_CHUNK_TOKENS), self.rollout_workers)
        count = math.ceil(count / self.rollout_workers) * self.rollout_workers
        count = min(count, max(1, samples // MIN_CHUNK_SAMPLES))
        bounds = [samples * i // count for i in range(count + 1)]
        return [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    def _worker_pool(self) -> ThreadPoolExecutor:
        """The rollout's worker threads, started on first use (again after a fork: a child process has
        none of its parent's threads); each runs torch on 1 thread of its own, so they never wait for
        each other inside an op (the caller's thread count is unchanged)."""
        key = (self.rollout_workers, os.getpid())
        if self._pool is None or self._pool[:2] != key:
            if self._pool is not None and self._pool[1] == key[1]:
                self._pool[2].shutdown(wait=False)
            pool = ThreadPoolExecutor(self.rollout_workers, thread_name_prefix="jepa_ac-rollout",
                                      initializer=torch.set_num_threads, initargs=(1,))
            self._pool = (*key, pool)
        return self._pool[2]

    @torch.inference_mode()
    def _rollout_chunk(
        self, z_context: Any, state: Any, actions: torch.Tensor, normalize_eps: float | None
    ) -> torch.Tensor:
        """`rollout` for one chunk of samples: actions [S', H, 7] -> latents [S', H, N, D] (float32)."""
        pred = self.predictor
        S, H, _ = actions.shape
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
