#!/usr/bin/env bash
# Issue 4's short real run: train the AC predictor on cached latents of data/sim128 (all of it or a subset),
# validate on held-out whole episodes against the copy-last-frame baseline, record the numbers.
#   nice -n 5 bash experiments/predictor_training/sim_run.sh        # ~15 min on 2 shared CPU cores
# ENC = frozen encoder (default: runs/pretrain_default/final, else the benchmark's random-init
# encoder). CACHE = an existing latent cache of ENC to train on (e.g. runs/default/latents.zarr,
# all of sim128, from experiments/default_model/train.sh); without it, PER_FOLDER episodes of
# each data/sim128/<task>_n<noise> folder (evenly spread) are encoded into a new cache first.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
WORK=runs/predictor_training
NAME=${NAME:-sim_run}  # run folder $WORK/$NAME and results folder experiments/predictor_training/$NAME
RESULTS=experiments/predictor_training/$NAME
PER_FOLDER=${PER_FOLDER:-10}
if [ -z "${ENC:-}" ]; then
  if [ -f runs/pretrain_default/final/config.json ]; then ENC=runs/pretrain_default/final
  else
    ENC=runs/bench_train_throughput/encoder_random
    [ -f "$ENC/config.json" ] || { echo "no encoder: run python -m jepa_ac.bench train_throughput first or set ENC"; exit 1; }
  fi
fi
mkdir -p "$WORK" "$RESULTS"
rm -rf "${WORK:?}/$NAME"
if [ -n "${CACHE:-}" ]; then
  "$PY" - "$CACHE" "$ENC" <<'PYEOF'
import sys
from jepa_ac.data.latent_cache import LatentCache
from jepa_ac.world_model import load_world_model
cache, enc = LatentCache.open(sys.argv[1]), load_world_model(sys.argv[2], load_predictor=False, device="cpu")
if cache.encoder_hash != enc.encoder_hash():
    sys.exit(f"{sys.argv[1]} holds latents of another encoder than {sys.argv[2]}")
print(f"reusing {sys.argv[1]}: {len(cache.episode_names())} episodes of encoder {cache.encoder_hash[:12]}")
PYEOF
else
  CACHE=$WORK/latents.zarr
  "$PY" - "$PER_FOLDER" "$WORK/episodes.txt" <<'PYEOF'
import sys
from pathlib import Path
import numpy as np
from jepa_ac.data.reader import find_episodes, write_trajectory_list
per, out = int(sys.argv[1]), Path(sys.argv[2])
picked = []
for folder in sorted(p for p in Path("data/sim128").iterdir() if p.is_dir()):
    eps = find_episodes(folder)
    picked += [eps[int(i)] for i in np.linspace(0, len(eps) - 1, min(per, len(eps))).round().astype(int)]
write_trajectory_list(out, [p.resolve() for p in picked], header=f"{per} episodes of each data/sim128 folder")
print(f"{len(picked)} episodes -> {out}")
PYEOF
  rm -rf "$CACHE"
  "$PY" -m jepa_ac.encode_dataset --data "$WORK/episodes.txt" --checkpoint "$ENC" --out "$CACHE" --no-progress
fi
t1=$(date +%s)
"$PY" -m jepa_ac.train_predictor --config experiments/predictor_training/sim_run.yaml --encoder-checkpoint "$ENC" \
  --data "$CACHE" --out "$WORK/$NAME" "$@"  # extra arguments override the config
t2=$(date +%s)
cp "$WORK/$NAME/metrics.jsonl" "$WORK/$NAME/loss_curves.png" "$WORK/$NAME/train_config.json" "$RESULTS/"
"$PY" - "$WORK/$NAME" "$RESULTS" "$ENC" "$((t2 - t1))" "$*" <<'PYEOF'
import json, sys
from pathlib import Path
import zarr
from jepa_ac.training.clips import open_clips, split_by_episode
run, results, enc, t_train, extra = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
cfg = json.loads((run / "train_config.json").read_text())
summary = json.loads((run / "summary.json").read_text())
store = zarr.open_group(cfg["data"], mode="r")
clips = open_clips(cfg["data"], cfg["frames"], cfg["fps"])
train, val = split_by_episode(clips, cfg["val_fraction"], cfg["seed"])
val_eps = sorted({clips.names[int(clips.windows[i][0])] for i in val.indices})
vals = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "val_loss_tf" in l]
steps = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"step_time"' in l]
record = {
    "encoder": enc, "encoder_provenance": {k: v for k, v in json.loads((Path(enc) / "config.json").read_text())
                                           .get("provenance", {}).items() if k in ("trained_by", "step", "note")},
    "episodes": len(clips.names), "frames_cached": sum(r["frames"] for r in store.attrs["runs"]),
    "train_clips": len(train), "val_clips": len(val), "val_episodes": val_eps,
    "steps": summary["step"], "batch_size": cfg["batch_size"], "frames_per_clip": cfg["frames"],
    "val_loss_tf": summary.get("val_loss_tf"), "val_loss_rollout": summary.get("val_loss_rollout"),
    "val_copy_last_baseline": summary.get("val_copy_last_baseline"),
    "val_tf_vs_baseline": summary.get("val_tf_vs_baseline"),
    "cache": cfg["data"], "cache_seconds": round(sum(r["seconds"] for r in store.attrs["runs"])),
    "train_seconds": t_train, "validation_curve": vals,
}
(results / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
rows = "\n".join(f"| {v['step']} | {v['val_loss_tf']:.4f} | {v['val_loss_rollout']:.4f} | {v['val_copy_last_baseline']:.4f} | "
                 f"{v['val_tf_vs_baseline']:.3f} |" for v in vals)
beats = "beats" if record["val_tf_vs_baseline"] < 1 else "does NOT beat"
(results / "sim_run.md").write_text(f"""# Predictor training on sim128: validation vs the copy-last-frame baseline

`CACHE={cfg['data']} NAME={run.name} nice -n 5 bash experiments/predictor_training/sim_run.sh {extra}`
(config `experiments/predictor_training/sim_run.yaml`, overridden by the arguments shown).
Encoder (frozen): `{enc}`. Data: {record['episodes']} episodes of `data/sim128` ({record['frames_cached']} frames,
cached as float16 latents in `{cfg['data']}`), {len(val_eps)} whole episodes held out ({record['val_clips']} clips; validation uses
128 clips spread over them), {record['train_clips']} training clips of {cfg['frames']} frames at 4 Hz.
Predictor {cfg['predictor']}, batch {cfg['batch_size']}, {record['steps']} steps. Wall time on the shared
2-core CPU (shared with other jobs): {record['cache_seconds']} s to build the cache (`encode_dataset`), {t_train} s to
train (including validation and checkpoints).

| step | val_loss_tf | val_loss_rollout | val_copy_last_baseline | tf / baseline |
|---|---|---|---|---|
{rows}

Final: teacher-forcing L1 **{record['val_loss_tf']:.4f}** vs copy-last **{record['val_copy_last_baseline']:.4f}**
(ratio {record['val_tf_vs_baseline']:.3f}): the predictor {beats} the baseline on held-out episodes.

![loss curves](loss_curves.png)
""")
print((results / "sim_run.md").read_text())
PYEOF
