"""Train a V-JEPA 2-AC predictor on clips of frozen-encoder latents.

The loop: seeded data order that is a pure function of the step (exact resume, DDP sharding),
AdamW with a warmup -> constant -> decay schedule, gradient clipping, bf16 autocast on CUDA and on
CPUs with bf16 dot products, atomic checkpoints in our folder format (weights + the trainer state as
safetensors and JSON, never pickle), a stop at the first non-finite loss or gradient, validation against the
copy-last-frame baseline, JSONL metrics and a loss plot. Latents from a cache must come from the
run's frozen encoder (its weights' sha256 and config are checked).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jepa_ac.world_model.precision import PRECISIONS, choose_training_dtype
from jepa_ac.world_model.checkpoints import CONFIG_FILE, CheckpointError, match_arrays, parse_config, read_checkpoint, save_checkpoint
from jepa_ac.model.config import PredictorConfig, resolve_predictor_config
from jepa_ac.model.nn_torch.predictor import ACPredictor
from jepa_ac.model.pose import StateRanges
from jepa_ac.training.clips import collate, data_report, empty_data_message, latent_caches, parse_state_ranges
from jepa_ac.training.common import (
    DistInfo,
    MetricsLog,
    WarmupConstantDecay,
    all_reduce_mean,
    autocast,
    barrier,
    batch_indices,
    init_distributed,
    param_groups,
    rng_state,
    seed_everything,
)
from jepa_ac.training.loop import (CHECKPOINT_DIR, TrainingLoop, commit_checkpoint, load_trainer_state, resumable,
                                   resumable_checkpoint)
from jepa_ac.training.trainer_state import restore_trainer_state, trainer_state_files
from jepa_ac.training.predictor_loss import copy_last_frame_loss, predictor_losses


@dataclass(frozen=True)
class TrainPredictorConfig:
    """Everything a predictor training run needs; saved into every checkpoint."""

    data: str = ""  # latent cache (.zarr), episode folder / list file, or clips .npz
    val_data: str = ""  # held-out data; empty = hold out `val_fraction` of episodes
    val_fraction: float = 0.1
    frames: int = 8  # frames per clip (V-JEPA 2-AC: 8 frames at 4 fps)
    fps: float = 4.0
    encoder_checkpoint: str = ""  # frozen encoder; also copied into the output checkpoints
    encoder: str = ""  # encoder preset, for upstream .pt files
    predictor: dict[str, Any] | str = field(default_factory=lambda: {"predictor_embed_dim": 192, "depth": 4,
                                                                     "num_heads": 4})
    init_predictor: str = ""  # fine-tune from a checkpoint (upstream .pt or our folder); not read on resume
    batch_size: int = 8  # global batch (split across processes)
    steps: int = 1000
    lr: float = 4.25e-4
    start_lr: float = 7.5e-5
    final_lr: float = 0.0
    warmup_steps: int = 50
    decay_steps: int = 100
    weight_decay: float = 0.04
    grad_clip: float = 1.0
    auto_steps: int = 2
    loss_exp: float = 1.0
    # forward passes' autocast dtype: auto = bfloat16 on CUDA and on CPUs with bf16 dot products, else
    # float32 (jepa_ac.world_model.precision.choose_training_dtype); weights and optimizer stay float32
    dtype: str = "auto"
    activation_checkpointing: bool = False
    seed: int = 0
    out: str = "runs/predictor"
    save_every: int = 200
    keep_every: int = 0  # also keep a snapshot folder step_NNNNNN every this many steps; 0 = none
    eval_every: int = 100
    log_every: int = 10
    val_batches: int = 8
    num_workers: int = 0
    device: str = ""
    # torch CPU threads; 0: torch's default (one per physical core). The CLI lets idle OpenMP threads
    # sleep (OMP_WAIT_POLICY=PASSIVE unless OMP_* is set): experiments/latency/training_threads
    threads: int = 0
    stop_after: int = 0  # stop (with a checkpoint) after this many steps in this process; 0 = run to the end
    resume: bool = False
    # overrides of jepa_ac.model.pose.StateRanges (max_position, max_angle, gripper_min, gripper_max), e.g.
    # {"max_position": 10.0} for a large robot; episodes with a state outside are skipped
    state_ranges: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ranges  # validates state_ranges
        for name in ("frames", "batch_size", "steps", "auto_steps", "save_every", "eval_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainPredictorConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.keep_every < 0:
            raise ValueError(f"TrainPredictorConfig.keep_every must be >= 0 (0: no snapshots), got {self.keep_every}")
        if self.threads < 0:
            raise ValueError(f"TrainPredictorConfig.threads must be >= 0 (0: torch's default), got {self.threads}")
        if self.frames < 2:
            raise ValueError("TrainPredictorConfig.frames must be >= 2 (a clip needs a next frame)")
        if self.dtype not in PRECISIONS:
            raise ValueError(f"TrainPredictorConfig.dtype must be one of {PRECISIONS}, got {self.dtype!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"TrainPredictorConfig.val_fraction must be in [0, 1), got {self.val_fraction}")

    @property
    def ranges(self) -> StateRanges:
        return parse_state_ranges(self.state_ranges, "TrainPredictorConfig.state_ranges")


class FrozenEncoder:
    """The frozen encoder that defines the latent space (and encodes frames when training on video)."""

    def __init__(self, config: TrainPredictorConfig, device: torch.device) -> None:
        from jepa_ac.world_model import load_world_model

        if not config.encoder_checkpoint:
            raise ValueError("encoder_checkpoint is required: the predictor is trained in that encoder's latent space")
        self.wm = load_world_model(config.encoder_checkpoint, encoder=config.encoder or None,
                                   load_predictor=False, device=device)
        self.config = self.wm.encoder_config
        self.checkpoint = config.encoder_checkpoint
        self.device = device

    def check_latents(self, *datasets: Any) -> None:
        """Refuse latent caches made by another encoder (weights sha256 and config; the error names both)."""
        from jepa_ac.data.latent_cache import check_same_encoder

        caches = [cache for data in datasets for cache in latent_caches(data)]
        if caches:
            digest = self.wm.encoder_hash()
            for cache in caches:
                check_same_encoder(cache, digest, self.config.to_dict(), self.checkpoint)

    def latents(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Batch -> layer-normed latents [B, T*N, D] (from the cache, or encoding frames now)."""
        if "latents" in batch:
            z = batch["latents"].to(self.device, torch.float32)  # [B, T, N, D]
        else:
            frames = batch["frames"].numpy()  # [B, T, H, W, 3]
            z = torch.stack([torch.as_tensor(np.asarray(self.wm.encode_frames(clip)), device=self.device)
                             for clip in frames])  # each frame on its own
        z = torch.nn.functional.layer_norm(z, (z.shape[-1],))  # idempotent on cached (normed) latents
        return z.flatten(1, 2)  # [B, T*N, D]


# fields build_predictor sets from the encoder and the run, whatever a checkpoint says
_RUN_FIELDS = ("img_size", "patch_size", "tubelet_size", "num_frames", "embed_dim", "use_activation_checkpointing")


def predictor_architecture(spec: dict[str, Any] | str, stated: PredictorConfig | None, source: str) -> PredictorConfig:
    """The predictor to build: `spec` (--predictor), or, when it is left at its default, the
    architecture `stated` by the checkpoint the run starts from (`source`); a given spec that
    disagrees with the checkpoint is an error naming the field."""
    default = TrainPredictorConfig.__dataclass_fields__["predictor"].default_factory()
    if stated is None:
        return resolve_predictor_config(spec)
    if spec == default:
        return stated
    given = resolve_predictor_config(spec)
    for f in dataclasses.fields(PredictorConfig):
        if f.name not in _RUN_FIELDS and getattr(given, f.name) != getattr(stated, f.name):
            raise ValueError(f"--predictor {f.name}={getattr(given, f.name)!r} disagrees with {source}, whose predictor "
                             f"has {f.name}={getattr(stated, f.name)!r}; leave --predictor out to use its architecture")
    return given


def build_predictor(config: TrainPredictorConfig, encoder: FrozenEncoder) -> tuple[ACPredictor, PredictorConfig]:
    enc = encoder.config
    resuming = resumable(config.out, config.resume)
    ckpt = read_checkpoint(config.init_predictor) if config.init_predictor and not resuming else None
    if resuming:  # the run's own checkpoint decides, as it did when the run began
        own = resumable_checkpoint(config.out)
        stated = parse_config(PredictorConfig, json.loads((own / CONFIG_FILE).read_text()).get("predictor"),
                              own / CONFIG_FILE, "predictor")
        pred = predictor_architecture(config.predictor, stated, str(own))
    else:
        pred = predictor_architecture(config.predictor, ckpt and ckpt.predictor_config, config.init_predictor)
    if pred.use_extrinsics:
        raise ValueError("training with extrinsics is not supported yet (use_extrinsics=False)")
    pred = dataclasses.replace(pred, img_size=enc.img_size, patch_size=enc.patch_size, tubelet_size=enc.tubelet_size,
                               num_frames=max(pred.num_frames, 2 * config.frames), embed_dim=enc.embed_dim,
                               use_activation_checkpointing=config.activation_checkpointing)
    model = ACPredictor(pred)
    model.extrinsics_encoder.requires_grad_(False)  # unused without extrinsics (and DDP needs every trained param used)
    if ckpt is not None:  # else the run's own checkpoint, loaded by resume()
        if "predictor" not in ckpt.arrays:
            raise ValueError(f"init_predictor {config.init_predictor} holds no predictor")
        from jepa_ac.world_model.checkpoints import match_arrays

        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        arrays = match_arrays("predictor", ckpt.arrays["predictor"], expected, ckpt.source)
        model.load_state_dict({k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
                               for k, v in arrays.items()})
    return model, pred


class PredictorTrainer(TrainingLoop):
    """Owns the model, optimizer, data and bookkeeping of one run (one process of a DDP job)."""

    run_name = "train_predictor"
    plot_keys = ("loss_tf", "loss_rollout", "val_loss_tf", "val_copy_last_baseline")
    plot_title = "predictor training"

    def __init__(self, config: TrainPredictorConfig, train_data: Any, val_data: Any | None,
                 dist_info: DistInfo | None = None, control: Any = None) -> None:
        self.config = config
        self.control = control  # CheckpointControl of the training data, saved as control.json with the weights
        self.info = dist_info or init_distributed(config.device or None, config.threads)
        self.out = Path(config.out)
        seed_everything(config.seed)
        self.encoder = FrozenEncoder(config, self.info.device)
        self.model, self.pred_config = build_predictor(config, self.encoder)
        self.model.to(self.info.device).train()
        self.ddp = None
        if self.info.world_size > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.info.device.index] if self.info.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, config.weight_decay), lr=config.lr,
                                           betas=(0.9, 0.999), eps=1e-8)
        self.schedule = WarmupConstantDecay(config.lr, config.start_lr, config.final_lr, config.warmup_steps,
                                            config.decay_steps, config.steps)
        self.train_data, self.val_data = train_data, val_data
        if len(train_data) == 0:
            raise ValueError(empty_data_message(train_data, config.data))
        self.encoder.check_latents(train_data, val_data)
        self.step = 0
        self.metrics = MetricsLog(self.out / "metrics.jsonl", enabled=self.info.is_main)
        self.dtype = choose_training_dtype(self.info.device, config.dtype)  # "auto" resolved for this device

    def data_report(self) -> dict[str, Any]:
        return data_report(self.train_data, self.val_data)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, name: str = CHECKPOINT_DIR) -> Path:
        """Weights (encoder copied, so the folder is a complete world model) + trainer state."""
        path = self.out / name
        if self.info.is_main:
            state = trainer_state_files(step=self.step, world_size=self.info.world_size,
                                        optimizer=self.optimizer.state_dict(), rng=rng_state(),
                                        config=dataclasses.asdict(self.config))
            arrays = {"encoder": self.encoder.wm.backend.state_arrays("encoder"),
                      "predictor": {k: v.detach().float().cpu().numpy() for k, v in self.model.state_dict().items()}}
            provenance = {"trained_by": "jepa_ac.train_predictor", "step": self.step,
                          "train_config": dataclasses.asdict(self.config), "train_dtype": self.dtype,
                          "encoder_source": self.encoder.wm.provenance}
            if self.control is not None:
                from jepa_ac.planning.checkpoint_control import CONTROL_FILE

                state = {**state, CONTROL_FILE: self.control.write}
            commit_checkpoint(self.out, name, lambda folder: save_checkpoint(
                folder, arrays, self.encoder.config, self.pred_config, provenance, extra_files=state))
        if name == CHECKPOINT_DIR:
            self.saved_step = self.step
        barrier(self.info)
        return path

    def resume(self) -> bool:
        """Continue from `out/checkpoint` if it exists: weights, optimizer, RNG and step."""
        path = self.out / CHECKPOINT_DIR
        state = load_trainer_state(path, self.info)
        if state is None:
            return False
        ckpt = read_checkpoint(path)
        if "predictor" not in ckpt.arrays:
            raise CheckpointError(f"{path} holds no predictor weights to resume from")
        expected = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        arrays = match_arrays("predictor", ckpt.arrays["predictor"], expected, str(path))
        self.model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in arrays.items()})
        restore_trainer_state(state, self.optimizer, str(path))
        self.step = int(state["step"])
        self.metrics.truncate_after(self.step)
        return True

    # -- steps ---------------------------------------------------------------------------------
    def _batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = batch_indices(step, len(self.train_data), self.config.batch_size, self.config.seed,
                            self.info.rank, self.info.world_size)
        return collate([self.train_data[int(i)] for i in idx])

    def _losses(self, batch: dict[str, torch.Tensor], model: torch.nn.Module):
        dev = self.info.device
        h = self.encoder.latents(batch)
        actions, states = batch["actions"].to(dev, torch.float32), batch["states"].to(dev, torch.float32)
        with autocast(dev, self.dtype):
            losses = predictor_losses(model, h, actions, states, self.encoder.config.tokens_per_frame,
                                      self.config.auto_steps, self.config.loss_exp)
        return h, losses

    def train_step(self) -> dict[str, float]:
        start = time.perf_counter()
        lr = self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self._batch(self.step)
        _, losses = self._losses(batch, self.ddp or self.model)
        # the mean over processes (and the synchronised gradients): every process stops at the same step
        loss = all_reduce_mean(losses.total.detach(), self.info)
        self.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.check_finite(loss=float(loss), grad_norm=float(grad_norm))  # before the update: weights stay finite
        self.optimizer.step()
        self.step += 1
        return {"step": self.step, "loss": float(loss), "loss_tf": float(losses.teacher_forcing.detach()),
                "loss_rollout": float(losses.rollout.detach()), "lr": lr, "grad_norm": float(grad_norm),
                "step_time": time.perf_counter() - start}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        if not self.val_data or len(self.val_data) == 0:
            return {}
        self.model.eval()
        sums = np.zeros(3)
        count = min(len(self.val_data), self.config.val_batches * self.config.batch_size)
        # clips spread evenly over the held-out set (its first clips would all come from one or two episodes)
        picks = np.linspace(0, len(self.val_data) - 1, count).round().astype(int)
        for start in range(0, count, self.config.batch_size):
            batch = collate([self.val_data[int(i)] for i in picks[start : start + self.config.batch_size]])
            h, losses = self._losses(batch, self.model)
            n = h.shape[0]
            sums += n * np.array([float(losses.teacher_forcing), float(losses.rollout),
                                  float(copy_last_frame_loss(h, self.encoder.config.tokens_per_frame,
                                                             self.config.loss_exp))])
        self.model.train()
        tf, ro, base = sums / count
        return {"step": self.step, "val_loss_tf": tf, "val_loss_rollout": ro, "val_copy_last_baseline": base,
                "val_tf_vs_baseline": tf / base}
