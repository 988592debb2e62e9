"""The run loop every trainer shares: resume, steps with a progress bar, logging / validation /
checkpoint cadence, the final checkpoint, the loss plot and `summary.json`.

A trainer subclasses `TrainingLoop` and provides `config` (with steps, stop_after, resume,
log_every, eval_every, save_every, keep_every), `info` (DistInfo), `out`, `metrics` (MetricsLog), `step`, and
the methods `train_step()`, `validate()`, `save(name)`, `resume()`; plus the class attributes
below that name the run in its progress bar and plot.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from jepa_ac.training.common import DistInfo, plot_curves

TRAINER_STATE = "trainer_state.pt"
CHECKPOINT_DIR = "checkpoint"  # latest, replaced atomically
FINAL_DIR = "final"


def snapshot_dir(step: int) -> str:
    """The folder of the snapshot kept at `step` (config.keep_every), e.g. step_001000."""
    return f"step_{step:06d}"


def resumable(out: str | Path, resume: bool) -> bool:
    """Whether a run writing to `out` will continue from its own checkpoint (so weights to start
    from, such as --init-from / --init-predictor, would be replaced and need not be read)."""
    return resume and (Path(out) / CHECKPOINT_DIR / TRAINER_STATE).exists()


def load_trainer_state(path: Path, info: DistInfo) -> dict[str, Any] | None:
    """The trainer state saved in `path` (None if there is none), checked against this run's world size."""
    if not (path / TRAINER_STATE).exists():
        return None
    state = torch.load(path / TRAINER_STATE, map_location="cpu", weights_only=False)
    if state["world_size"] != info.world_size:
        raise ValueError(f"{path} was written by {state['world_size']} processes; resume with the same number "
                         f"(now {info.world_size}) to keep the data order")
    return state


class TrainingLoop:
    run_name: str = "train"  # progress bar label
    plot_keys: tuple[str, ...] = ("loss",)
    plot_title: str = "training"

    def progress_fields(self, record: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{record['loss']:.4f}", "step_s": f"{record['step_time']:.2f}"}

    def summary_fields(self, record: dict[str, float]) -> dict[str, Any]:
        return {}

    def fit(self) -> dict[str, Any]:
        """Run to `steps` (or `stop_after` steps in this process); returns a summary."""
        from tqdm import tqdm

        c = self.config
        if c.resume:
            self.resume()
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(json.dumps(dataclasses.asdict(c), indent=2) + "\n")
        end = c.steps if not c.stop_after else min(c.steps, self.step + c.stop_after)
        bar = tqdm(total=c.steps, initial=self.step, disable=not self.info.is_main, desc=self.run_name,
                   dynamic_ncols=True, mininterval=2.0)
        last_val: dict[str, float] = {}
        record: dict[str, float] = {}
        while self.step < end:
            record = self.train_step()
            bar.update(1)
            bar.set_postfix(**self.progress_fields(record))
            if self.step % c.log_every == 0 or self.step == end:
                self.metrics.log(record)
            if self.step % c.eval_every == 0 or self.step == c.steps:
                last_val = self.validate()
                if last_val:
                    self.metrics.log(last_val)
            if self.step % c.save_every == 0 or self.step == end:
                self.save()
            if c.keep_every and self.step % c.keep_every == 0 and self.step < c.steps:
                self.save(snapshot_dir(self.step))
        bar.close()
        summary: dict[str, Any] = {"step": self.step, "finished": self.step >= c.steps,
                                   **(self.summary_fields(record) if record else {}), **last_val}
        if self.step >= c.steps:
            self.save(FINAL_DIR)
            if self.info.is_main and (self.out / "metrics.jsonl").exists():
                plot_curves(self.out / "metrics.jsonl", self.out / "loss_curves.png", self.plot_keys, self.plot_title)
        if self.info.is_main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.metrics.close()
        return summary
