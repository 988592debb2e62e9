"""The run loop every trainer shares: resume, steps with a progress bar, logging / validation /
checkpoint cadence, the final checkpoint, the loss plot and `summary.json`.

A trainer subclasses `TrainingLoop` and provides `config` (with steps, stop_after, resume,
log_every, eval_every, save_every, keep_every), `info` (DistInfo), `out`, `metrics` (MetricsLog), `step`, and
the methods `train_step()`, `validate()`, `save(name)`, `resume()`; plus the class attributes
below that name the run in its progress bar and plot.

Checkpoint folders are replaced so that a complete one exists at every instant, wherever the
process is killed (see `commit_checkpoint`): the next run finishes or undoes the interrupted save.
`--resume true` continues from `checkpoint/`; in an output folder without any run it starts at
step 0, and in one that holds a run but no checkpoint to continue it refuses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
from pathlib import Path
from typing import Any, Callable

from jepa_ac.files import fsync_path, write_json_atomic
from jepa_ac.training.common import DistInfo, barrier, plot_curves, read_metrics
from jepa_ac.training.trainer_state import has_trainer_state, read_trainer_state

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"  # latest, replaced atomically
FINAL_DIR = "final"
METRICS_FILE = "metrics.jsonl"
# What a save leaves while it runs: `.<name>.new` (complete, about to replace <name>), `.<name>.old`
# (the replaced one, about to be removed), temp folders of `save_checkpoint` (`.<name>.tmp-*`, here
# `..<name>.new.tmp-*`), and `.<name>.old-<pid>` from jepa_ac versions before this scheme.
_STAGED = re.compile(r"^\.\.?(?P<name>[^.][^/]*?)\.(new|old|old-\d+|tmp-[^/]*|new\.tmp-[^/]*)$")


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite values, nothing to resume); the message says why and what to do."""


class NonFiniteError(TrainingError):
    """The loss or the gradient norm of a step is NaN or infinite."""


def snapshot_dir(step: int) -> str:
    """The folder of the snapshot kept at `step` (config.keep_every), e.g. step_001000."""
    return f"step_{step:06d}"


# -- checkpoint folders that survive a kill at any instant ---------------------------------------


def _staged(out: Path, name: str) -> tuple[Path, Path, Path]:
    return out / name, out / f".{name}.new", out / f".{name}.old"


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def recover_checkpoint(out: Path, name: str = CHECKPOINT_DIR) -> list[str]:
    """Finish or undo a save of `out/name` that was killed, and remove its temp folders.

    Afterwards `out/name` is the newest complete checkpoint (if any was ever committed) and nothing
    else of the save is left. Returns what was done, for a log line.
    """
    final, new, old = _staged(out, name)
    done = []
    if old.exists() and final.exists():  # killed after both renames: only the clean-up was left
        _remove(old)
    if new.exists():
        if _complete(new):  # killed before or between the renames: finish the commit
            if final.exists():
                final.rename(old)
            new.rename(final)
            done.append(f"finished an interrupted save of {name}/")
        else:
            _remove(new)
    if not final.exists() and old.exists():
        old.rename(final)
        done.append(f"restored {name}/ from {old.name}")
    legacy = sorted(out.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not final.exists() and legacy and _complete(legacy[-1]):
        legacy[-1].rename(final)
        done.append(f"restored {name}/ from {legacy[-1].name}")
    for leftover in [old, *out.glob(f".{name}.old-*"), *out.glob(f".{name}.tmp-*"), *out.glob(f"..{name}.new.tmp-*")]:
        if leftover.exists():
            _remove(leftover)
            done.append(f"removed the stale {leftover.name}")
    if done:
        fsync_path(out)
    return done


def recover_all(out: Path) -> list[str]:
    """`recover_checkpoint` for every checkpoint folder that has leftovers of a save in `out`."""
    if not out.is_dir():
        return []
    names = sorted({m.group("name") for p in out.iterdir() if (m := _STAGED.match(p.name))})
    return [line for name in names for line in recover_checkpoint(out, name)]


def commit_checkpoint(out: Path, name: str, write: Callable[[Path], Any]) -> Path:
    """Replace `out/name` by what `write(folder)` writes, so that a complete checkpoint exists at
    every instant: write `.name.new` (atomically: `save_checkpoint` renames its temp folder), rename
    `name` -> `.name.old`, `.name.new` -> `name`, remove `.name.old`. A kill at any point leaves
    either `name` or `.name.new` / `.name.old` complete, which `recover_checkpoint` puts back."""
    out.mkdir(parents=True, exist_ok=True)
    recover_checkpoint(out, name)
    final, new, old = _staged(out, name)
    write(new)
    if final.exists():
        final.rename(old)
    new.rename(final)
    fsync_path(out)
    _remove(old)
    return final


def resumable(out: str | Path, resume: bool) -> bool:
    """Whether a run writing to `out` will continue from its own checkpoint (so weights to start
    from, such as --init-from / --init-predictor, would be replaced and need not be read)."""
    return resume and resumable_checkpoint(out) is not None


def resumable_checkpoint(out: str | Path) -> Path | None:
    """The folder a resume of `out` continues from: its checkpoint, or the complete half of a save
    that was killed (before `recover_checkpoint` puts it back in place); None when there is none."""
    out = Path(out)
    if not out.is_dir():
        return None
    final, new, old = _staged(out, CHECKPOINT_DIR)
    return next((p for p in (final, new, old, *out.glob(f".{CHECKPOINT_DIR}.old-*")) if has_trainer_state(p)), None)


def load_trainer_state(path: Path, info: DistInfo) -> dict[str, Any] | None:
    """The trainer state saved in `path` (None if there is none), checked against this run's world size.

    Never unpickles anything (see `trainer_state.py`)."""
    state = read_trainer_state(path)
    if state is None:
        return None
    if state["world_size"] != info.world_size:
        raise TrainingError(f"{path} was written by {state['world_size']} processes; resume with the same number "
                            f"(now {info.world_size}) to keep the data order")
    return state


def previous_run(out: Path) -> list[str]:
    """What in `out` shows that a run already wrote there (metrics, checkpoints, summary), for messages."""
    if not out.is_dir():
        return []
    found = []
    metrics = out / METRICS_FILE
    if metrics.is_file() and metrics.stat().st_size:
        steps = [r.get("step", 0) for r in _safe_metrics(metrics)]
        found.append(f"{METRICS_FILE} up to step {max(steps)}" if steps else METRICS_FILE)
    for name in (CHECKPOINT_DIR, FINAL_DIR, "summary.json"):
        if (out / name).exists():
            found.append(name + ("/" if (out / name).is_dir() else ""))
    found += sorted(p.name + "/" for p in out.glob("step_*") if p.is_dir())
    return found


def _safe_metrics(path: Path) -> list[dict[str, Any]]:
    try:
        return [r for r in read_metrics(path) if isinstance(r, dict)]
    except (json.JSONDecodeError, UnicodeDecodeError):
        return []


class TrainingLoop:
    run_name: str = "train"  # progress bar label
    plot_keys: tuple[str, ...] = ("loss",)
    plot_title: str = "training"
    saved_step: int | None = None  # step of the latest checkpoint/ this process saved or resumed from

    def progress_fields(self, record: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{record['loss']:.4f}", "step_s": f"{record['step_time']:.2f}"}

    def summary_fields(self, record: dict[str, float]) -> dict[str, Any]:
        return {}

    def data_report(self) -> dict[str, Any]:
        """Counts of data problems met so far (skipped episodes, clips that failed to decode) for the summary."""
        return {}

    def check_finite(self, **values: float) -> None:
        """Stop with `NonFiniteError` before the update of step `self.step + 1` if any value is NaN/inf.

        One bad batch (a corrupt clip, an absurd state that slipped through, a too-high LR) would
        otherwise turn every weight into NaN, be checkpointed and end with exit code 0.
        """
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        what = ", ".join(f"{k} = {v}" for k, v in bad.items()) + (" is" if len(bad) == 1 else " are")
        kept = (f"{self.out / CHECKPOINT_DIR} holds step {self.saved_step}" if self.saved_step is not None
                else "no checkpoint was saved by this run")
        raise NonFiniteError(f"step {self.step + 1}: {what} not finite; training stopped before this update "
                             f"({kept}). Look for extreme values in the training data (states, actions, latents, "
                             f"frames) or lower --lr")

    def fit(self) -> dict[str, Any]:
        """Run to `steps` (or `stop_after` steps in this process); returns a summary."""
        from tqdm import tqdm

        c = self.config
        self._prepare_out()
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.out / "train_config.json", dataclasses.asdict(c))
        end = c.steps if not c.stop_after else min(c.steps, self.step + c.stop_after)
        bar = tqdm(total=c.steps, initial=self.step, disable=not self.info.is_main, desc=self.run_name,
                   dynamic_ncols=True, mininterval=2.0)
        last_val: dict[str, float] = {}
        record: dict[str, float] = {}
        try:
            while self.step < end:
                record = self.train_step()
                bar.update(1)
                bar.set_postfix(self.progress_fields(record), refresh=False)  # drawn at most every mininterval
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
        finally:
            bar.close()
            self.metrics.close()
        summary: dict[str, Any] = {"step": self.step, "finished": self.step >= c.steps,
                                   **(self.summary_fields(record) if record else {}), **last_val,
                                   **self.data_report()}
        if self.step >= c.steps:
            self.save(FINAL_DIR)
            if self.info.is_main and (self.out / METRICS_FILE).exists():
                plot_curves(self.out / METRICS_FILE, self.out / "loss_curves.png", self.plot_keys, self.plot_title)
        if self.info.is_main:
            write_json_atomic(self.out / "summary.json", summary)
        return summary

    def _prepare_out(self) -> None:
        """Put back checkpoints a killed save left half-replaced, then resume or start fresh.

        `--resume true` continues from `checkpoint/`; with no run in `out` yet it starts at step 0
        (so one command line serves the first run and every restart); with a run there but no
        checkpoint it refuses, as does a fresh run (`--resume false`) in a folder that holds one:
        starting over would mix two runs' metrics and checkpoints.
        """
        if self.info.is_main:
            for line in recover_all(self.out):
                logger.warning("%s: %s", self.out, line)
        barrier(self.info)
        if self.config.resume:
            if self.resume():
                self.saved_step = self.step
                return
            found = previous_run(self.out)
            if found:
                raise TrainingError(f"--resume true: {self.out} holds a run ({', '.join(found)}) but no "
                                    f"{CHECKPOINT_DIR}/ to continue from; use another --out, or delete the folder "
                                    f"to start over")
            logger.warning("--resume true: nothing to resume in %s (no %s/ yet); starting at step 0", self.out,
                           CHECKPOINT_DIR)
            return
        found = previous_run(self.out)
        if found:
            raise TrainingError(f"{self.out} already holds a run ({', '.join(found)}): pass --resume true to "
                                f"continue it, or use another --out (or delete the folder) to start over")
