"""V-JEPA self-supervised pretraining of a small video encoder.

One step: a batch of random-resized-cropped clips; the target encoder (EMA, no gradient) encodes
the full clips and its layer-normed features are the targets; for each mask generator
(short-range, long-range) the context encoder sees only the visible tokens and the mask predictor
fills in the masked ones; the loss is L1 on the target tokens, averaged over generators. AdamW
with warmup + cosine LR and a cosine weight-decay schedule, gradient clipping, EMA momentum ramp,
bf16 autocast on CUDA and on CPUs with bf16 dot products, atomic checkpoints with exact resume (no
pickle), a stop at the first non-finite loss or gradient, DDP by rank, collapse monitoring.
The output folder holds the target encoder in our checkpoint format (`load_world_model` loads it).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from jepa_ac.world_model.precision import PRECISIONS, choose_training_dtype
from jepa_ac.world_model.checkpoints import CheckpointError, match_arrays, save_checkpoint
from jepa_ac.model.config import EncoderConfig, MaskPredictorConfig
from jepa_ac.model.nn_torch.encoder import VisionTransformer
from jepa_ac.model.nn_torch.mask_predictor import MaskPredictor
from jepa_ac.pretraining.ema import ema_momentum, ema_update, make_target_encoder, weight_decay_at
from jepa_ac.pretraining.masks import LONG_RANGE, SHORT_RANGE, BlockMaskSpec, sample_batch_masks
from jepa_ac.pretraining.video_data import CropSpec, random_resized_crop
from jepa_ac.model.pose import StateRanges
from jepa_ac.pretraining.warm_start import warm_start
from jepa_ac.training.clips import data_report, empty_data_message, parse_state_ranges
from jepa_ac.training.common import (
    DistInfo,
    MetricsLog,
    WarmupCosine,
    all_reduce_mean,
    autocast,
    barrier,
    batch_indices,
    init_distributed,
    param_groups,
    rng_state,
    seed_everything,
)
from jepa_ac.training.loop import CHECKPOINT_DIR, TrainingLoop, commit_checkpoint, load_trainer_state, resumable
from jepa_ac.training.trainer_state import restore_trainer_state, trainer_state_files

logger = logging.getLogger(__name__)

MASK_SETS: dict[str, tuple[BlockMaskSpec, ...]] = {
    "vjepa": (SHORT_RANGE, LONG_RANGE),
    "short": (SHORT_RANGE,),
    "long": (LONG_RANGE,),
}


@dataclass(frozen=True)
class PretrainEncoderConfig:
    """Everything a pretraining run needs; saved into every checkpoint."""

    data: str = ""  # DROID-layout episode folder or trajectory list
    val_fraction: float = 0.05  # held-out episodes for the validation loss
    frames: int = 4  # frames per clip (the encoder's num_frames)
    fps: float = 4.0
    preload: bool = True  # decode every episode into memory once (small datasets)
    encoder: dict[str, Any] = field(default_factory=lambda: {
        "img_size": 64, "patch_size": 8, "embed_dim": 192, "depth": 6, "num_heads": 6})
    predictor: dict[str, Any] = field(default_factory=lambda: {
        "predictor_embed_dim": 96, "depth": 4, "num_heads": 4})
    masks: str = "vjepa"  # mask generators: vjepa (short + long range), short, long
    crop_scale_min: float = 0.3
    crop_scale_max: float = 1.0
    crop_ratio_min: float = 0.75
    crop_ratio_max: float = 1.35
    repeat_frame_prob: float = 0.0
    batch_size: int = 16  # global batch
    steps: int = 1000
    lr: float = 5e-4
    start_lr: float = 1e-4
    final_lr: float = 1e-6
    warmup_steps: int = 100
    weight_decay: float = 0.04
    final_weight_decay: float = 0.4
    ema_start: float = 0.998
    ema_end: float = 1.0
    grad_clip: float = 1.0
    loss_exp: float = 1.0
    # forward passes' autocast dtype: auto = bfloat16 on CUDA and on CPUs with bf16 dot products, else
    # float32 (jepa_ac.world_model.precision.choose_training_dtype); weights and optimizer stay float32
    dtype: str = "auto"
    collapse_std: float = 0.05  # warn when the target features' mean per-dim std falls below this
    seed: int = 0
    out: str = "runs/pretrain"
    save_every: int = 200
    keep_every: int = 0  # also keep a snapshot folder step_NNNNNN every this many steps; 0 = none
    log_every: int = 10
    eval_every: int = 100
    val_batches: int = 4
    device: str = ""
    # torch CPU threads; 0: torch's default (one per physical core). The CLI lets idle OpenMP threads
    # sleep (OMP_WAIT_POLICY=PASSIVE unless OMP_* is set): experiments/latency/training_threads
    threads: int = 0
    stop_after: int = 0  # stop (with a checkpoint) after this many steps in this process; 0 = run to the end
    resume: bool = False
    # start from another run's weights (an encoder folder or a pretraining checkpoint/; image and
    # patch size may differ, see pretraining/warm_start.py); not read when the run resumes from its
    # own checkpoint (as with the predictor's init_predictor)
    init_from: str = ""
    # overrides of jepa_ac.model.pose.StateRanges (max_position, max_angle, gripper_min, gripper_max), e.g.
    # {"max_position": 10.0}; episodes with a state outside are skipped
    state_ranges: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ranges  # validates state_ranges
        for name in ("frames", "batch_size", "steps", "save_every", "log_every", "eval_every", "val_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"PretrainEncoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.keep_every < 0:
            raise ValueError(f"PretrainEncoderConfig.keep_every must be >= 0 (0: no snapshots), got {self.keep_every}")
        if self.threads < 0:
            raise ValueError(f"PretrainEncoderConfig.threads must be >= 0 (0: torch's default), got {self.threads}")
        if self.masks not in MASK_SETS:
            raise ValueError(f"PretrainEncoderConfig.masks must be one of {sorted(MASK_SETS)}, got {self.masks!r}")
        if self.dtype not in PRECISIONS:
            raise ValueError(f"PretrainEncoderConfig.dtype must be one of {PRECISIONS}, got {self.dtype!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"PretrainEncoderConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 < self.ema_start <= self.ema_end <= 1:
            raise ValueError(f"PretrainEncoderConfig: need 0 < ema_start <= ema_end <= 1, got "
                             f"{self.ema_start}, {self.ema_end}")
        self.crop  # validates the crop fields
        self.encoder_config  # validates the architecture

    @property
    def ranges(self) -> StateRanges:
        return parse_state_ranges(self.state_ranges, "PretrainEncoderConfig.state_ranges")

    @property
    def crop(self) -> CropSpec:
        return CropSpec((self.crop_scale_min, self.crop_scale_max), (self.crop_ratio_min, self.crop_ratio_max),
                        self.repeat_frame_prob)

    @property
    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig.from_dict({"tubelet_size": 2, **self.encoder, "num_frames": self.frames})

    @property
    def predictor_config(self) -> MaskPredictorConfig:
        return MaskPredictorConfig(**{**self.predictor, "embed_dim": self.encoder_config.embed_dim,
                                      "num_mask_tokens": len(MASK_SETS[self.masks])})


class JEPAModel(nn.Module):
    """Context encoder + mask predictor (the trained parts; one module so DDP syncs both)."""

    def __init__(self, encoder: VisionTransformer, predictor: MaskPredictor) -> None:
        super().__init__()
        self.encoder = encoder
        self.predictor = predictor

    def forward(self, clips: torch.Tensor, targets: torch.Tensor, masks: list[tuple[torch.Tensor, torch.Tensor]],
                loss_exp: float) -> torch.Tensor:
        """clips [B, 3, T, H, W], target features [B, N, D], (context ids, target ids) per generator -> loss."""
        _, grid_h, grid_w = self.encoder.token_grid(clips)
        losses = []
        for index, (context_ids, target_ids) in enumerate(masks):
            context = self.encoder(clips, context_ids)  # [B, Kc, D]
            predicted = self.predictor(context, context_ids, target_ids, (grid_h, grid_w), index)  # [B, Kt, D]
            wanted = torch.gather(targets, 1, target_ids[..., None].expand(-1, -1, targets.shape[-1]))
            losses.append((predicted.float() - wanted).abs().pow(loss_exp).mean() / loss_exp)
        return torch.stack(losses).mean()


def target_features(target_encoder: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Layer-normed (no affine) target-encoder features of the full clips [B, N, D], no gradient."""
    with torch.no_grad():
        h = target_encoder(clips)
        return F.layer_norm(h.float(), (h.shape[-1],))


def feature_std(h: torch.Tensor) -> float:
    """Mean over dims of the per-dim std across all tokens of the batch (0 means collapse)."""
    return float(h.reshape(-1, h.shape[-1]).std(dim=0).mean())


class PretrainTrainer(TrainingLoop):
    """Owns the encoders, predictor, optimizer, data and bookkeeping of one run (one DDP process)."""

    run_name = "pretrain_encoder"
    plot_keys = ("loss", "val_loss")
    plot_title = "V-JEPA pretraining"

    def progress_fields(self, record: dict[str, float]) -> dict[str, str]:
        return {**super().progress_fields(record), "std": f"{record['target_std']:.3f}"}

    def summary_fields(self, record: dict[str, float]) -> dict[str, Any]:
        return {"loss": record["loss"], "target_std": record["target_std"]}

    def __init__(self, config: PretrainEncoderConfig, train_data: Any, val_data: Any | None = None,
                 dist_info: DistInfo | None = None) -> None:
        self.config = config
        self.info = dist_info or init_distributed(config.device or None, config.threads)
        self.out = Path(config.out)
        seed_everything(config.seed)
        self.enc_config, self.pred_config = config.encoder_config, config.predictor_config
        self.model = JEPAModel(VisionTransformer(self.enc_config), MaskPredictor(self.pred_config))
        self.model.to(self.info.device).train()
        self.target_encoder = make_target_encoder(self.model.encoder)
        self.init_sources = {}
        if config.init_from and not resumable(self.out, config.resume):  # resuming: restored in resume()
            self.init_sources = warm_start(config.init_from, self.model.encoder, self.target_encoder,
                                           self.model.predictor, self.enc_config)
        self.ddp = None
        if self.info.world_size > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.info.device.index] if self.info.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(param_groups(self.model, config.weight_decay), lr=config.lr,
                                           betas=(0.9, 0.999), eps=1e-8)
        self.schedule = WarmupCosine(config.lr, config.start_lr, config.final_lr, config.warmup_steps, config.steps)
        self.mask_specs = MASK_SETS[config.masks]
        if len(train_data) == 0:
            raise ValueError(empty_data_message(train_data, config.data))
        self.train_data, self.val_data = train_data, val_data
        self.step = 0
        self.metrics = MetricsLog(self.out / "metrics.jsonl", enabled=self.info.is_main)
        self.dtype = choose_training_dtype(self.info.device, config.dtype)  # "auto" resolved for this device
        self.initial_std: float | None = None

    def data_report(self) -> dict[str, Any]:
        return data_report(self.train_data, self.val_data)

    # -- checkpoints -------------------------------------------------------------------------
    def save(self, name: str = CHECKPOINT_DIR) -> Path:
        """The target (EMA) encoder as a world-model checkpoint, plus everything needed to resume."""
        path = self.out / name
        if self.info.is_main:
            state = trainer_state_files(step=self.step, world_size=self.info.world_size,
                                        optimizer=self.optimizer.state_dict(), rng=rng_state(),
                                        config=dataclasses.asdict(self.config),
                                        modules={"model": self.model.state_dict()},
                                        extra={"initial_std": self.initial_std})
            arrays = {"encoder": {k: v.detach().float().cpu().numpy()
                                  for k, v in self.target_encoder.state_dict().items()}}
            provenance = {"trained_by": "jepa_ac.pretrain_encoder", "step": self.step,
                          "encoder_weights": "target (EMA) encoder",
                          "mask_predictor": self.pred_config.to_dict(),
                          "initialised_from": self.init_sources,
                          "train_config": dataclasses.asdict(self.config), "train_dtype": self.dtype}
            commit_checkpoint(self.out, name, lambda folder: save_checkpoint(
                folder, arrays, self.enc_config, None, provenance, extra_files=state))
        if name == CHECKPOINT_DIR:
            self.saved_step = self.step
        barrier(self.info)
        return path

    def resume(self) -> bool:
        """Continue from `out/checkpoint` if it exists: weights, EMA, optimizer, RNG and step."""
        from jepa_ac.world_model.checkpoints import read_checkpoint

        path = self.out / CHECKPOINT_DIR
        state = load_trainer_state(path, self.info)
        if state is None:
            return False
        if "model" not in state["modules"]:
            raise CheckpointError(f"{path}: the trainer state holds no context encoder and mask predictor ('model')")
        self.model.load_state_dict(match_arrays("context encoder and mask predictor", state["modules"]["model"],
                                                {k: tuple(v.shape) for k, v in self.model.state_dict().items()},
                                                str(path)))
        ckpt = read_checkpoint(path)
        target = match_arrays("encoder", ckpt.arrays.get("encoder", {}),
                              {k: tuple(v.shape) for k, v in self.target_encoder.state_dict().items()}, str(path))
        self.target_encoder.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in target.items()})
        restore_trainer_state(state, self.optimizer, str(path))
        self.step = int(state["step"])
        self.initial_std = state["extra"].get("initial_std")
        self.init_sources = ckpt.provenance.get("initialised_from", {})
        self.metrics.truncate_after(self.step)
        return True

    # -- steps ---------------------------------------------------------------------------------
    def _clips(self, data: Any, indices: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        clips = np.stack([data[int(i)] for i in indices])  # [B, T, H, W, 3] uint8
        return random_resized_crop(clips, self.enc_config.img_size, self.config.crop, rng).to(self.info.device)

    def _masks(self, batch: int, grid: tuple[int, int, int], rng: np.random.Generator):
        dev = self.info.device
        out = []
        for spec in self.mask_specs:
            context, target = sample_batch_masks(spec, grid, batch, rng)  # [B, Kc], [B, Kt]
            out.append((torch.as_tensor(context, device=dev), torch.as_tensor(target, device=dev)))
        return out

    def _loss(self, model: nn.Module, clips: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        grid = self.model.encoder.token_grid(clips)
        with autocast(self.info.device, self.dtype):
            targets = target_features(self.target_encoder, clips)  # [B, N, D]
            loss = model(clips, targets, self._masks(clips.shape[0], grid, rng), self.config.loss_exp)
        return loss, feature_std(targets)

    def train_step(self) -> dict[str, float]:
        c = self.config
        start = time.perf_counter()
        lr = self.schedule(self.step)
        wd = weight_decay_at(self.step, c.steps, c.weight_decay, c.final_weight_decay)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
            if group["weight_decay"] > 0:
                group["weight_decay"] = wd
        # every random choice of a step is a function of (seed, step, rank): exact resume and sharding
        rng = np.random.default_rng([c.seed, self.step, self.info.rank])
        idx = batch_indices(self.step, len(self.train_data), c.batch_size, c.seed, self.info.rank, self.info.world_size)
        clips = self._clips(self.train_data, idx, rng)
        loss, target_std = self._loss(self.ddp or self.model, clips, rng)
        # the mean over processes (and the synchronised gradients): every process stops at the same step
        mean_loss = all_reduce_mean(loss.detach(), self.info)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.check_finite(loss=float(mean_loss), grad_norm=float(grad_norm))  # before the update and the EMA
        self.optimizer.step()
        momentum = ema_momentum(self.step, c.steps, c.ema_start, c.ema_end)
        ema_update(self.target_encoder, self.model.encoder, momentum)
        self.step += 1
        self._check_collapse(target_std)
        return {"step": self.step, "loss": float(mean_loss), "lr": lr, "weight_decay": wd, "ema_momentum": momentum,
                "grad_norm": float(grad_norm), "target_std": target_std, "step_time": time.perf_counter() - start}

    def _check_collapse(self, target_std: float) -> None:
        if self.initial_std is None:
            self.initial_std = target_std
        if target_std < self.config.collapse_std or target_std < 0.1 * self.initial_std:
            logger.warning("step %d: target features' per-dim std fell to %.4f (started at %.4f): the "
                           "representation may be collapsing", self.step, target_std, self.initial_std)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss on held-out episodes with fixed masks and centre crops (comparable across steps)."""
        if not self.val_data or len(self.val_data) == 0:
            return {}
        self.model.eval()
        c = self.config
        losses, stds = [], []
        count = min(len(self.val_data), c.val_batches * c.batch_size)
        center = dataclasses.replace(c.crop, scale=(1.0, 1.0), ratio=(1.0, 1.0), repeat_frame_prob=0.0)
        rng = np.random.default_rng([c.seed, 2**31 - 1])  # the same masks at every validation
        for begin in range(0, count, c.batch_size):
            idx = np.arange(begin, min(count, begin + c.batch_size))
            clips = np.stack([self.val_data[int(i)] for i in idx])
            x = random_resized_crop(clips, self.enc_config.img_size, center, rng).to(self.info.device)
            loss, std = self._loss(self.model, x, rng)
            losses.append(float(loss) * len(idx))
            stds.append(std)
        self.model.train()
        return {"step": self.step, "val_loss": sum(losses) / count, "val_target_std": float(np.mean(stds))}
