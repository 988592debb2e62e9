#!/usr/bin/env bash
# The wrist view's world model and the front+wrist folder (issue 31, session 25), on CPU:
# wrist-camera data (collect.sh) -> the shipped encoder's latents of the wrist video -> an AC predictor
# with the shipped recipe (predictor.yaml) -> fp16 export -> runs/front_wrist: a copy of the shipped
# folder's front model (and its ensemble) with the wrist model as its second view.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
[ -f data/sim128_wrist/all.txt ] || bash experiments/wrist_view/collect.sh
"$PY" -m jepa_ac.encode_dataset --data data/sim128_wrist/all.txt --checkpoint jepa_ac/assets/default_model \
  --camera-key wrist_mp4_path --out runs/wrist/latents.zarr --no-progress  # resumes; a finished cache is kept
"$PY" -m jepa_ac.train_predictor --config experiments/wrist_view/predictor.yaml --resume true
"$PY" -m jepa_ac.convert --checkpoint runs/predictor_wrist/final --out runs/wrist_export --dtype float16
rm -rf runs/front_wrist && mkdir -p runs/front_wrist
cp -r jepa_ac/assets/default_model/{config.json,model.safetensors,ensemble,planning.json} runs/front_wrist/
"$PY" -c "import jepa_ac; jepa_ac.add_view('runs/front_wrist', 'runs/wrist_export', 'wrist', first_view='front')"
echo "runs/front_wrist: views front + wrist"
