#!/usr/bin/env bash
# The shipped model's data recipe (experiments/default_model/collect.sh with VIEW=front: the same tasks,
# noise levels, episode counts and seeds, so the same episodes) recorded with the wrist camera too
# (DROID's wrist_mp4_path) -> data/sim128_wrist. Resumable. (Session 25 collected pick-and-place
# first, with the same settings; the episodes do not depend on the order.)
set -euo pipefail
cd "$(dirname "$0")/../.."
VIEW=front OUT=${OUT:-data/sim128_wrist} EXTRA=--wrist-camera bash experiments/default_model/collect.sh
